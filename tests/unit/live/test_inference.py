"""The live predictor: serves only verified bundles of this feature set; masks what training never saw."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helios_core.features.spec import BLOCK, TIMEFRAMES, vector_names
from helios_live.models.inference import Predictor, load
from helios_live.models.registry import Registry, RegistryError
from tests.live_support import make_bundle


def _window(seed: int, window: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (len(TIMEFRAMES), window, BLOCK)
    return rng.normal(size=shape).astype(np.float32), np.ones(shape, dtype=np.float32)


def test_the_active_bundle_predicts_a_distribution(tmp_path: Path) -> None:
    make_bundle(tmp_path)
    registry = Registry(tmp_path)
    predictor = load(registry, str(registry.active()))

    prediction = predictor.predict(*_window(1))

    assert sum(prediction.probabilities) == pytest.approx(1.0, abs=1e-5)
    assert prediction.label == ("BUY", "SELL", "HOLD")[int(np.argmax(prediction.probabilities))]
    assert 0.0 <= prediction.confidence <= 1.0 and len(prediction.feature_hash) == 64


def test_a_bundle_of_another_feature_set_is_refused(tmp_path: Path) -> None:
    version = make_bundle(tmp_path, feature_set_version="0.9.0")

    with pytest.raises(RegistryError, match="feature set 0.9.0"):
        Predictor(Registry(tmp_path).get(version))


def test_a_tampered_model_file_is_refused(tmp_path: Path) -> None:
    version = make_bundle(tmp_path)
    model = tmp_path / version / "model.onnx"
    model.write_bytes(model.read_bytes() + b"\x00")

    with pytest.raises(RegistryError, match="does not match the hash"):
        load(Registry(tmp_path), version)


def test_features_never_valid_in_training_are_masked_live(tmp_path: Path) -> None:
    version = make_bundle(tmp_path)
    bundle_file = tmp_path / version / "bundle.json"
    meta = json.loads(bundle_file.read_text())
    names = list(vector_names())
    meta["feature_coverage"] = {name: 0.0 if name.endswith("spread") else 1.0 for name in names}
    bundle_file.write_text(json.dumps(meta))  # bundle.json is not hashed; model.onnx is
    predictor = Predictor(Registry(tmp_path).get(version))
    features, mask = _window(2)
    spread = [i for i, n in enumerate(names) if n.endswith("spread")]
    assert spread
    changed = features.copy()
    for i in spread:
        changed[i // BLOCK, :, i % BLOCK] += 100.0

    assert predictor.predict(features, mask) == predictor.predict(changed, mask)


def test_the_service_runs_its_model_with_the_measured_session_settings(tmp_path: Path) -> None:
    import onnxruntime as ort

    from helios_live.models.sessions import session_options

    options = session_options()
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    make_bundle(tmp_path)
    registry = Registry(tmp_path)
    predictor = load(registry, str(registry.active()))
    assert predictor.session.get_session_options().intra_op_num_threads == 1
