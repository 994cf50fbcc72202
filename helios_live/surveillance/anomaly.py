"""The anomaly detector, live: the IsolationForest trained by the `surveillance_anomaly_model`
asset, scored one sample at a time through ONNX, with the 3-sigma model stored beside it as the
fallback.

On disk: `<root>/<version>/model.onnx` + `model.json`, and `<root>/ACTIVE` naming the version
(`root` is `$HELIOS_HOME/surveillance/anomaly`). The ONNX graph's `scores` output is sklearn's
`decision_function` (`score_samples - offset_`); `offset` in model.json turns it back into
`score_samples`, the scale the threshold is calibrated on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from helios_core.surveillance.anomaly import FEATURES, Calibration, SigmaModel
from helios_core.surveillance.events import Severity
from helios_live.models.sessions import session_options

MODEL_FILE, META_FILE, ACTIVE_FILE = "model.onnx", "model.json", "ACTIVE"
Method = Literal["isolation_forest", "sigma", "none"]


class AnomalyModelError(ValueError):
    """A model directory whose files cannot be used (malformed metadata, other features)."""


@dataclass(frozen=True, slots=True)
class AnomalyScore:
    """One sample's verdict. `score` is None when nothing scored it (`reason` says why): no
    model at all (method "none") or a NaN in the sample. Isolation-forest scores are
    `score_samples` (lower = more anomalous); sigma scores are the largest |z|."""

    score: float | None
    anomalous: bool
    severity: Severity | None
    risk: float | None
    method: Method
    reason: str = ""


@dataclass(frozen=True, slots=True)
class AnomalyMeta:
    """model.json, typed."""

    version: str
    feature_names: tuple[str, ...]
    calibration: Calibration
    offset: float
    sigma: SigmaModel
    training_window: tuple[str, str]
    pairs: tuple[str, ...]
    rows: int
    parity_max_abs_difference: float
    anomaly_rate: float

    @classmethod
    def parse(cls, data: dict[str, Any]) -> AnomalyMeta:
        try:
            meta = cls(
                version=str(data["version"]),
                feature_names=tuple(data["feature_names"]),
                calibration=Calibration(float(data["threshold"]), float(data["spread"]), float(data["contamination"])),
                offset=float(data["offset"]),
                sigma=SigmaModel(tuple(map(float, data["sigma"]["mean"])), tuple(map(float, data["sigma"]["std"]))),
                training_window=(str(data["training_window"][0]), str(data["training_window"][1])),
                pairs=tuple(data["pairs"]),
                rows=int(data["rows"]),
                parity_max_abs_difference=float(data["parity_max_abs_difference"]),
                anomaly_rate=float(data["anomaly_rate"]),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise AnomalyModelError(f"malformed anomaly model metadata: {exc!r}") from exc
        if meta.feature_names != FEATURES:
            raise AnomalyModelError(f"model features {list(meta.feature_names)} are not this code's {list(FEATURES)}")
        if len(meta.sigma.mean) != len(FEATURES) or len(meta.sigma.std) != len(FEATURES):
            raise AnomalyModelError("the sigma fallback's statistics do not match the features")
        return meta

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "feature_names": list(self.feature_names),
            "threshold": self.calibration.threshold,
            "spread": self.calibration.spread,
            "contamination": self.calibration.contamination,
            "offset": self.offset,
            "sigma": {"mean": list(self.sigma.mean), "std": list(self.sigma.std)},
            "training_window": list(self.training_window),
            "pairs": list(self.pairs),
            "rows": self.rows,
            "parity_max_abs_difference": self.parity_max_abs_difference,
            "anomaly_rate": self.anomaly_rate,
        }


def read_meta(directory: Path) -> AnomalyMeta | None:
    """The metadata of a model directory; None when it has no model.json."""
    path = Path(directory) / META_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise AnomalyModelError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise AnomalyModelError(f"{path} is not a JSON object")
    return AnomalyMeta.parse(data)


def active_directory(root: Path) -> Path | None:
    """The directory ACTIVE names under `root`, if there is one."""
    active = Path(root) / ACTIVE_FILE
    if not active.is_file():
        return None
    version = active.read_text(encoding="utf-8").strip()
    return Path(root) / version if version else None


class AnomalyModel:
    """An exported IsolationForest and its calibration; each sample is scored on its own."""

    def __init__(self, session: ort.InferenceSession, meta: AnomalyMeta) -> None:
        self.session = session
        self.meta = meta
        self._input = session.get_inputs()[0].name
        if session.get_inputs()[0].type != "tensor(double)":
            raise AnomalyModelError(
                "the ONNX graph must take doubles (helios_dagster/defs/surveillance/forest_onnx.py)"
            )
        names = [o.name for o in session.get_outputs()]
        if "scores" not in names:
            raise AnomalyModelError(f"the ONNX graph has no 'scores' output (outputs: {names})")

    @classmethod
    def load(cls, directory: Path) -> AnomalyModel | None:
        """The model in `directory`; None when model.onnx or model.json is missing."""
        meta = read_meta(directory)
        path = Path(directory) / MODEL_FILE
        if meta is None or not path.is_file():
            return None
        session = ort.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])
        return cls(session, meta)

    def score_samples(self, matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """sklearn's `score_samples` for each row of (n, features); NaN for rows holding a NaN.
        A row's score depends on that row alone."""
        x = np.asarray(matrix, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(FEATURES):
            raise ValueError(f"expected (n, {len(FEATURES)}) features, got shape {x.shape}")
        out = np.full(len(x), np.nan)
        complete = np.all(np.isfinite(x), axis=1)
        if np.any(complete):
            (scores,) = self.session.run(["scores"], {self._input: x[complete]})
            out[complete] = np.asarray(scores, dtype=np.float64).reshape(-1) + self.meta.offset
        return out

    def score(self, vector: Sequence[float] | npt.NDArray[np.float64]) -> AnomalyScore:
        value = float(self.score_samples(np.asarray(vector, dtype=np.float64).reshape(1, -1))[0])
        if not np.isfinite(value):
            return AnomalyScore(None, False, None, None, "isolation_forest", "the sample holds a NaN")
        calibration = self.meta.calibration
        return AnomalyScore(
            value,
            calibration.anomalous(value),
            calibration.severity(value),
            calibration.risk(value),
            "isolation_forest",
        )


def sigma_score(sigma: SigmaModel, vector: Sequence[float] | npt.NDArray[np.float64]) -> AnomalyScore:
    """One sample through the 3-sigma fallback."""
    value = sigma.score(vector)
    if value is None:
        return AnomalyScore(None, False, None, None, "sigma", "the sample holds a NaN or no feature has a spread")
    return AnomalyScore(value, sigma.anomalous(value), sigma.severity(value), sigma.risk(value), "sigma")


class AnomalyScorer:
    """The ONNX model when there is one, else its stored sigma fallback, else "none"."""

    def __init__(self, model: AnomalyModel | None, sigma: SigmaModel | None = None, reason: str = "") -> None:
        self.model = model
        self.sigma = sigma if sigma is not None or model is None else model.meta.sigma
        self.reason = reason

    @classmethod
    def from_root(cls, root: Path) -> AnomalyScorer:
        """Load what ACTIVE names under `root`; an unusable ONNX file falls back to the sigma
        model in model.json, with the reason kept in `reason`."""
        directory = active_directory(root)
        if directory is None:
            return cls(None, None, f"no ACTIVE anomaly model under {root}")
        meta = read_meta(directory)
        if meta is None:
            return cls(None, None, f"{directory} has no {META_FILE}")
        try:
            model = AnomalyModel.load(directory)
        except Exception as exc:  # noqa: BLE001 -- onnxruntime's load errors share no base; any of them means fall back
            return cls(None, meta.sigma, f"ONNX model unusable, sigma fallback: {exc}")
        if model is None:
            return cls(None, meta.sigma, f"{directory} has no {MODEL_FILE}: sigma fallback")
        return cls(model)

    def score(self, vector: Sequence[float] | npt.NDArray[np.float64]) -> AnomalyScore:
        if self.model is not None:
            return self.model.score(vector)
        if self.sigma is not None:
            return sigma_score(self.sigma, vector)
        return AnomalyScore(None, False, None, None, "none", self.reason or "no anomaly model and no sigma fallback")
