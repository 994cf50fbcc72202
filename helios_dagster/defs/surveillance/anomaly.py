"""`surveillance_anomaly_model`: an IsolationForest on the market statistics of the lake's 1-minute
candles, exported to ONNX for the live scorer (helios_live.surveillance.anomaly), with its
calibration and the 3-sigma fallback, and the `anomaly_model_onnx_parity` check.

The export is Helios's own compact graph (forest_onnx.py: 18 us a sample, where skl2onnx's
converter took about 1 ms); its `scores` output is `decision_function`, so `offset_` is stored
to recover `score_samples`.
"""

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from pydantic import Field
from sklearn.ensemble import IsolationForest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from helios_core.surveillance.anomaly import FEATURES, Calibration, SigmaModel, market_stats_batch
from helios_dagster.defs.surveillance.forest_onnx import forest_to_onnx
from helios_dagster.resources import LakeResource
from helios_live.data.lake import Lake
from helios_live.models.sessions import session_options
from helios_live.settings import load_settings
from helios_live.surveillance.anomaly import ACTIVE_FILE, META_FILE, MODEL_FILE, AnomalyMeta, active_directory

ASSET = "surveillance_anomaly_model"
CANDLES, TIMEFRAME = "candles", "1m"
CONTAMINATION = 0.05
# The graph reproduces sklearn's float32 cast before the trees, so no row goes down another
# path; what is left is the float32 sum of the leaves (about 1e-8 on the score).
PARITY_TOLERANCE = 1e-6
RATE_TOLERANCE = 0.01  # the calibrated rate on the training rows must be 5 % +- 1 point


class AnomalyConfig(dg.Config):
    """Which candles train the detector. `pairs` empty: every HELIOS_PAIRS pair with 1-minute
    candles in the lake; `home` empty: HELIOS_HOME."""

    pairs: list[str] = Field(default_factory=list)
    days: int = Field(default=30, ge=1, le=3650)
    min_rows: int = Field(default=500, ge=10)
    home: str = ""


class AnomalyTrainingError(ValueError):
    """Not enough usable rows, or an export that does not reproduce the forest."""


@dataclass(frozen=True)
class TrainingData:
    matrix: npt.NDArray[np.float64]
    pairs: tuple[str, ...]
    window: tuple[date, date]


def anomaly_root(home: Path) -> Path:
    return home / "surveillance" / "anomaly"


def training_window(store: Lake, pairs: list[str], days: int) -> tuple[list[str], tuple[date, date]]:
    """The pairs that have 1-minute candles and the last `days` days up to the newest of them."""
    files = [f for f in store.files(CANDLES) if f.timeframe == TIMEFRAME and f.pair in pairs]
    if not files:
        raise AnomalyTrainingError(f"no {TIMEFRAME} candles in {store.root} for {sorted(pairs)}")
    last = max(f.day for f in files)
    return sorted({f.pair for f in files}), (last - timedelta(days=days - 1), last)


def load_matrix(store: Lake, pairs: list[str], window: tuple[date, date]) -> TrainingData:
    """Market statistics of each pair's candles in `window`, complete rows only."""
    blocks, used = [], []
    for pair in pairs:
        candles = store.read_range(CANDLES, pair, TIMEFRAME, *window)
        if candles.empty:
            continue
        stats = market_stats_batch(candles.sort_values("ts").reset_index(drop=True))
        complete = stats[np.all(np.isfinite(stats), axis=1)]
        if len(complete):
            blocks.append(complete)
            used.append(pair)
    matrix = np.vstack(blocks) if blocks else np.empty((0, len(FEATURES)))
    return TrainingData(matrix, tuple(used), window)


def fit_forest(matrix: npt.NDArray[np.float64]) -> Pipeline:
    forest = IsolationForest(contamination=CONTAMINATION, n_estimators=100, random_state=0)
    return Pipeline([("scale", StandardScaler()), ("forest", forest)]).fit(matrix)


def onnx_score_samples(path: Path, matrix: npt.NDArray[np.float64], offset: float) -> npt.NDArray[np.float64]:
    """`score_samples` through onnxruntime, as the live scorer computes it."""
    session = ort.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])
    (scores,) = session.run(["scores"], {session.get_inputs()[0].name: matrix.astype(np.float64)})
    return np.asarray(scores, dtype=np.float64).reshape(-1) + offset


def parity_problem(scores: npt.NDArray[np.float64], expected: npt.NDArray[np.float64], threshold: float) -> str:
    """Why the ONNX scores do not reproduce sklearn's `score_samples` ("" when they do): a row
    beyond PARITY_TOLERANCE, or a row the threshold would flag differently."""
    worst = float(np.max(np.abs(scores - expected), initial=0.0))
    if worst > PARITY_TOLERANCE:
        return f"ONNX parity {worst:.3g} exceeds {PARITY_TOLERANCE:g}"
    flips = int(np.sum((scores < threshold) != (expected < threshold)))
    if flips:
        return f"the anomaly flag differs on {flips} rows"
    return ""


def anomaly_rate(scores: npt.NDArray[np.float64], calibration: Calibration) -> float:
    return float(np.mean(scores < calibration.threshold))


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def train_and_write(data: TrainingData, root: Path, now: datetime) -> tuple[AnomalyMeta, Path]:
    """Fit, export, check parity, calibrate and write `<root>/<version>/` and ACTIVE."""
    pipeline = fit_forest(data.matrix)
    offset = float(pipeline[-1].offset_)
    expected = pipeline.score_samples(data.matrix)
    onnx_bytes = forest_to_onnx(pipeline, len(FEATURES)).SerializeToString()
    version = f"{now:%Y%m%dT%H%M%SZ}-{hashlib.sha256(onnx_bytes).hexdigest()[:8]}"
    root.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=".staged-", dir=root))
    try:
        (staged / MODEL_FILE).write_bytes(onnx_bytes)
        scores = onnx_score_samples(staged / MODEL_FILE, data.matrix, offset)
        parity = float(np.max(np.abs(scores - expected)))
        calibration = Calibration.fit(expected, CONTAMINATION)
        problem = parity_problem(scores, expected, calibration.threshold)
        if problem:
            raise AnomalyTrainingError(problem)
        meta = AnomalyMeta(
            version=version,
            feature_names=FEATURES,
            calibration=calibration,
            offset=offset,
            sigma=SigmaModel.fit(data.matrix),
            training_window=(data.window[0].isoformat(), data.window[1].isoformat()),
            pairs=data.pairs,
            rows=len(data.matrix),
            parity_max_abs_difference=parity,
            anomaly_rate=anomaly_rate(scores, calibration),
        )
        (staged / META_FILE).write_text(json.dumps(meta.to_json(), indent=2), encoding="utf-8")
        target = root / version
        if target.exists():  # same second, same model: rewriting it is idempotent
            shutil.rmtree(target)
        os.replace(staged, target)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    _write_atomically(root / ACTIVE_FILE, version + "\n")
    return meta, target


def _home(config: AnomalyConfig) -> Path:
    return Path(config.home) if config.home else load_settings().home


@dg.asset(
    name=ASSET,
    group_name="surveillance",
    kinds={"sklearn", "onnx"},
    deps=[dg.AssetKey(CANDLES)],
    description="IsolationForest (contamination 0.05, 100 trees) on the market statistics of the last `days` "
    "days of 1-minute candles, exported to ONNX with its threshold and 3-sigma fallback; made ACTIVE.",
)
def surveillance_anomaly_model(
    context: dg.AssetExecutionContext, config: AnomalyConfig, lake: LakeResource
) -> dg.MaterializeResult:
    store = lake.lake()
    wanted = config.pairs or list(load_settings().pairs)
    pairs, window = training_window(store, wanted, config.days)
    data = load_matrix(store, pairs, window)
    if len(data.matrix) < config.min_rows:
        raise AnomalyTrainingError(
            f"{len(data.matrix)} complete rows of market statistics for {pairs} in {window[0]} .. {window[1]}: "
            f"at least {config.min_rows} are needed (missing candles leave rows incomplete)"
        )
    meta, directory = train_and_write(data, anomaly_root(_home(config)), datetime.now(UTC))
    context.log.info(f"anomaly model {meta.version}: parity {meta.parity_max_abs_difference:.2e}")
    return dg.MaterializeResult(
        metadata={
            "version": meta.version,
            "directory": dg.MetadataValue.path(str(directory)),
            "rows": meta.rows,
            "pairs": list(meta.pairs),
            "window": f"{window[0]} .. {window[1]}",
            "threshold": meta.calibration.threshold,
            "parity_max_abs_difference": meta.parity_max_abs_difference,
            "anomaly_rate": meta.anomaly_rate,
        }
    )


@dg.asset_check(
    asset=surveillance_anomaly_model,
    blocking=True,
    description=f"Re-loads the written model.onnx and its training rows and refits the seeded forest: "
    f"onnxruntime vs sklearn score_samples within {PARITY_TOLERANCE:g} on every row, the same flags, "
    f"ACTIVE names the model, and the "
    f"calibrated anomaly rate on the training rows is {CONTAMINATION:.0%} +- {RATE_TOLERANCE:.0%}.",
)
def anomaly_model_onnx_parity(context: dg.AssetCheckExecutionContext, lake: LakeResource) -> dg.AssetCheckResult:
    event = context.instance.get_latest_materialization_event(dg.AssetKey(ASSET))
    materialization = event.asset_materialization if event is not None else None
    if materialization is None:
        return dg.AssetCheckResult(passed=False, metadata={"reason": "not materialised"})
    directory = Path(str(materialization.metadata["directory"].value))
    meta = AnomalyMeta.parse(json.loads((directory / META_FILE).read_text(encoding="utf-8")))
    window = (date.fromisoformat(meta.training_window[0]), date.fromisoformat(meta.training_window[1]))
    data = load_matrix(lake.lake(), list(meta.pairs), window)
    scores = onnx_score_samples(directory / MODEL_FILE, data.matrix, meta.offset)
    # random_state=0 makes the refit the exported forest, so sklearn's scores can be recomputed.
    expected = fit_forest(data.matrix).score_samples(data.matrix)
    parity = float(np.max(np.abs(scores - expected)))
    problem = parity_problem(scores, expected, meta.calibration.threshold)
    rate = anomaly_rate(scores, meta.calibration)
    active = active_directory(directory.parent)
    passed = (
        len(data.matrix) == meta.rows
        and not problem
        and abs(rate - CONTAMINATION) <= RATE_TOLERANCE
        and active == directory
    )
    return dg.AssetCheckResult(
        passed=passed,
        metadata={
            "version": meta.version,
            "rows": len(data.matrix),
            "parity_max_abs_difference": parity,
            "parity_problem": problem or "none",
            "anomaly_rate": rate,
            "active": str(active),
        },
    )


ANOMALY_ASSETS = [surveillance_anomaly_model]
ANOMALY_CHECKS = [anomaly_model_onnx_parity]
