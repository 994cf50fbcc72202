"""The surveillance domain's batch side: the anomaly detector's training."""
