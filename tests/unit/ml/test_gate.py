from pathlib import Path

from helios_dagster.defs.model.training import gate
from helios_live.models.registry import Bundle
from helios_live.settings import HeliosSettings


def bundle(accuracy: float, ece: float, parity: bool = True, leakage: bool = True) -> Bundle:
    meta = {
        "checks": {"onnx_parity": parity, "leakage": leakage},
        "metrics": {"test": {"model": {"balanced_accuracy": accuracy, "ece": ece}}},
    }
    return Bundle("v", Path("."), meta)


def test_the_gate_lets_a_good_checked_model_through() -> None:
    assert gate(bundle(0.55, 0.05), HeliosSettings()) == []


def test_every_failed_condition_is_a_reason() -> None:
    reasons = gate(bundle(0.30, 0.40, parity=False, leakage=False), HeliosSettings())
    assert reasons == [
        "onnx_parity check failed",
        "leakage check failed",
        "balanced accuracy 0.300 < 0.4",
        "ECE 0.400 > 0.15",
    ]


def test_the_thresholds_are_configuration() -> None:
    strict = HeliosSettings(gate_min_balanced_accuracy=0.6, gate_max_ece=0.01)
    assert len(gate(bundle(0.55, 0.05), strict)) == 2
