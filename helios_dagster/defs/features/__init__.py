"""Features, labels and the training dataset, computed from the lake's candles."""
