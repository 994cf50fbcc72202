"""Training, ONNX export, the registry and the promotion gate, as Dagster assets."""
