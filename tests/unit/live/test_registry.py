from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from helios_live.models.registry import Registry, RegistryError


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def staged(tmp_path: Path, name: str, payload: bytes) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "model.onnx").write_bytes(payload)
    return folder


def register(registry: Registry, tmp_path: Path, name: str, ok: bool = True) -> str:
    meta = {"checks": {"onnx_parity": ok, "leakage": True}, "feature_set_version": "1.0.0"}
    return registry.register(staged(tmp_path, name, name.encode()), meta).version


def test_promote_rollback_and_history(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "models", Clock())
    first, second = register(registry, tmp_path, "a"), register(registry, tmp_path, "b")
    assert registry.versions() == sorted([first, second]) and registry.active() is None
    registry.promote(first, "first")
    registry.promote(second, "better")
    assert registry.active() == second
    assert registry.rollback() == first and registry.active() == first
    actions = [e["action"] for e in registry.history()]
    assert actions == ["register", "register", "promote", "promote", "rollback"]
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        registry.rollback()  # first is the only promotion still in force
    registry.promote(second, "again")
    assert registry.rollback() == first


def test_active_never_points_at_a_bundle_that_failed_its_checks(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "models", Clock())
    bad = register(registry, tmp_path, "bad", ok=False)
    with pytest.raises(RegistryError, match="failed its checks"):
        registry.promote(bad, "try")
    assert registry.active() is None and registry.history()[-1]["action"] == "refused"


def test_a_corrupt_bundle_is_refused(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "models", Clock())
    version = register(registry, tmp_path, "a")
    (registry.root / version / "model.onnx").write_bytes(b"tampered")
    with pytest.raises(RegistryError, match="does not match the hash"):
        registry.promote(version, "try")
    (registry.root / version / "bundle.json").write_text("{not json")
    with pytest.raises(RegistryError, match="corrupt"):
        registry.get(version)


def test_versions_are_immutable(tmp_path: Path) -> None:
    frozen = datetime(2026, 1, 1, tzinfo=UTC)
    registry = Registry(tmp_path / "models", lambda: frozen)
    register(registry, tmp_path, "a")
    with pytest.raises(RegistryError, match="already exists"):
        registry.register(staged(tmp_path, "again", b"a"), {})


def test_a_registration_in_flight_is_not_a_version(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "models", Clock())
    version = register(registry, tmp_path, "a")
    in_flight = registry.root / ".staged-123"
    in_flight.mkdir()
    (in_flight / "bundle.json").write_text("{}")
    assert registry.versions() == [version]
