"""Classification metrics, calibration, and the two baselines trained on the same split."""

from __future__ import annotations

import numpy as np
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score, log_loss

from helios_dagster.ml.model import CLASSES


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by bin size."""
    if len(confidence) == 0:
        return float("nan")
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        inside = index == b
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total)


def classification_metrics(
    labels: np.ndarray, probabilities: np.ndarray, confidence: np.ndarray | None = None
) -> dict[str, object]:
    """Accuracy, balanced accuracy, macro-F1, log-loss, ECE (of the top class probability and,
    when given, of the trained confidence) and the confusion matrix (rows: true BUY/SELL/HOLD)."""
    predicted = probabilities.argmax(axis=1)
    correct = (predicted == labels).astype(float)
    out: dict[str, object] = {
        "samples": int(len(labels)),
        "accuracy": float(accuracy_score(labels, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(labels, predicted)),
        "macro_f1": float(f1_score(labels, predicted, average="macro", labels=list(range(CLASSES)), zero_division=0)),
        "log_loss": float(log_loss(labels, _clipped(probabilities), labels=list(range(CLASSES)))),
        "ece": expected_calibration_error(probabilities.max(axis=1), correct),
        "confusion_matrix": confusion_matrix(labels, predicted, labels=list(range(CLASSES))).tolist(),
    }
    if confidence is not None:
        out["confidence_ece"] = expected_calibration_error(confidence, correct)
    return out


def baselines(
    x_train: np.ndarray, y_train: np.ndarray, x_eval: np.ndarray, y_eval: np.ndarray, seed: int
) -> dict[str, dict[str, object]]:
    """Majority class and a class-weighted logistic regression on the decision-time vector."""
    majority = DummyClassifier(strategy="most_frequent").fit(x_train, y_train)
    logistic = LogisticRegression(max_iter=1000, class_weight="balanced", random_state=seed)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)  # constant columns (an always-valid mask) stay as they are
    logistic.fit((x_train - mean) / std, y_train)
    return {
        "majority": classification_metrics(y_eval, _all_classes(majority.predict_proba(x_eval), majority.classes_)),
        "logistic_regression": classification_metrics(
            y_eval, _all_classes(logistic.predict_proba((x_eval - mean) / std), logistic.classes_)
        ),
    }


def _clipped(probabilities: np.ndarray) -> np.ndarray:
    clipped: np.ndarray = np.clip(probabilities, 1e-7, 1.0)
    normalised: np.ndarray = clipped / clipped.sum(axis=1, keepdims=True)
    return normalised


def _all_classes(probabilities: np.ndarray, classes: np.ndarray) -> np.ndarray:
    out = np.zeros((len(probabilities), CLASSES))
    out[:, classes] = probabilities
    return out
