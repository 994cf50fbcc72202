"""The model registry: immutable bundles (model.onnx + bundle.json) and one ACTIVE pointer."""
