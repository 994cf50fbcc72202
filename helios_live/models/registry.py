"""The model registry on disk.

`<root>/<version>/` holds `model.onnx`, `bundle.json` (and whatever else training keeps) and
is never rewritten once registered. `<root>/ACTIVE` names the version the live service serves.
`<root>/history.jsonl` records every registration, promotion, rejection and rollback. ACTIVE
only ever points at a bundle whose checks passed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from helios_core.errors import HeliosError

BUNDLE = "bundle.json"
MODEL = "model.onnx"
REQUIRED_CHECKS = ("onnx_parity", "leakage")


WALK_FORWARD = "walk-forward"  # the role of a fold's model (helios_dagster.defs.model.training)


class RegistryError(HeliosError):
    """A bundle is missing, corrupt, incompatible or failed its checks."""


@dataclass(frozen=True)
class Bundle:
    version: str
    path: Path
    meta: dict[str, Any]

    @property
    def model_path(self) -> Path:
        return self.path / MODEL

    def checks_passed(self) -> bool:
        checks = self.meta.get("checks", {})
        return all(bool(checks.get(name)) for name in REQUIRED_CHECKS)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Registry:
    def __init__(self, root: Path, clock: Callable[[], datetime] = _utc_now) -> None:
        self.root = Path(root)
        self._clock = clock

    def register(self, staged: Path, meta: dict[str, Any]) -> Bundle:
        """Move a staged folder (holding model.onnx) in as a new immutable version."""
        model = staged / MODEL
        if not model.is_file():
            raise RegistryError(f"{staged}: no {MODEL} to register")
        digest = sha256(model)
        version = f"{self._clock():%Y%m%dT%H%M%SZ}-{digest[:8]}"
        target = self.root / version
        if target.exists():
            raise RegistryError(f"version {version} already exists; bundles are immutable")
        meta = {**meta, "version": version, "onnx_sha256": digest, "registered_at": self._clock().isoformat()}
        (staged / BUNDLE).write_text(json.dumps(meta, indent=2, default=str))
        self.root.mkdir(parents=True, exist_ok=True)
        os.replace(staged, target)
        self._record("register", version, checks=meta.get("checks", {}))
        return Bundle(version, target, meta)

    def get(self, version: str) -> Bundle:
        """Load a bundle and verify it: bundle.json readable, model.onnx matching its hash."""
        path = self.root / version
        try:
            meta = json.loads((path / BUNDLE).read_text())
        except FileNotFoundError as exc:
            raise RegistryError(f"no model version {version} in {self.root}") from exc
        except json.JSONDecodeError as exc:
            raise RegistryError(f"{path / BUNDLE} is corrupt: {exc}") from exc
        model = path / MODEL
        if not model.is_file() or sha256(model) != meta.get("onnx_sha256"):
            raise RegistryError(f"{model} is missing or does not match the hash in its bundle.json")
        return Bundle(version, path, meta)

    def versions(self) -> list[str]:
        if not self.root.exists():
            return []
        # Hidden folders are staging areas of registrations in flight, not versions.
        return sorted(p.name for p in self.root.iterdir() if not p.name.startswith(".") and (p / BUNDLE).is_file())

    def active(self) -> str | None:
        pointer = self.root / "ACTIVE"
        return pointer.read_text().strip() or None if pointer.exists() else None

    def promote(self, version: str, reason: str) -> Bundle:
        """Point ACTIVE at `version`; refused if its checks did not pass, it is corrupt, or it is a
        walk-forward fold's model (evidence for a candidate, never served)."""
        bundle = self.get(version)
        if bundle.meta.get("role") == WALK_FORWARD:
            raise RegistryError(f"{version} is a walk-forward fold's model: evidence for a candidate, never promoted")
        if not bundle.checks_passed():
            self._record("refused", version, reason=f"checks not passed: {bundle.meta.get('checks')}")
            raise RegistryError(f"{version} failed its checks {bundle.meta.get('checks')}; it cannot become ACTIVE")
        previous = self.active()
        self._point(version)
        self._record("promote", version, previous=previous, reason=reason)
        return bundle

    def reject(self, version: str, reason: str) -> None:
        self._record("reject", version, reason=reason)

    def rollback(self) -> str:
        """Undo the latest promotion still in force: ACTIVE goes back to what it was before it."""
        current = self.active()
        if current is None:
            raise RegistryError("no ACTIVE model to roll back from")
        stack: list[str] = []  # promotions in force, oldest first; a rollback undoes the newest
        for event in self.history():
            if event["action"] == "promote":
                stack.append(event["version"])
            elif event["action"] == "rollback" and stack:
                stack.pop()
        if len(stack) < 2:
            raise RegistryError(f"{current} is the only promotion in force; there is nothing to roll back to")
        target = stack[-2]
        self.get(target)
        self._point(target)
        self._record("rollback", target, previous=current, reason=f"rollback from {current}")
        return target

    def history(self) -> list[dict[str, Any]]:
        path = self.root / "history.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def _point(self, version: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".active-")
        with os.fdopen(fd, "w") as handle:
            handle.write(version)
        os.replace(tmp, self.root / "ACTIVE")

    def _record(self, action: str, version: str, **details: Any) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        event = {"at": self._clock().isoformat(), "action": action, "version": version, **details}
        with (self.root / "history.jsonl").open("a") as handle:
            handle.write(json.dumps(event, default=str) + "\n")


def discard(staged: Path) -> None:
    shutil.rmtree(staged, ignore_errors=True)
