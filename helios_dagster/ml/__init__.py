"""Model training, evaluation and ONNX export (torch lives only here, on the batch side)."""
