"""ONNX inference on the ACTIVE registry bundle: onnxruntime only, no torch.

A bundle is served only if its hash verifies (`Registry.get`) and it was trained on this
code's feature set. Features that were never valid in the bundle's training data are masked
here too, so the model sees live what it saw in training (book features, for one, exist live
but not in the lake yet). Its base timeframe (`base_timeframe` in `bundle.json`; 1m for
bundles from before it was recorded) is the candle the kernel decides on.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np
import onnxruntime as ort

from helios_core.decision import Prediction
from helios_core.features.spec import BLOCK, FEATURE_SET_VERSION, TIMEFRAMES, vector_names
from helios_core.labels import Label, LookaheadConfig
from helios_core.timeframes import Timeframe
from helios_live.models.registry import Bundle, Registry, RegistryError
from helios_live.models.sessions import providers, session_options

LABELS = tuple(label.name for label in Label)  # index order of the probabilities output
DEFAULT_BASE = "1m"


class Predictor:
    """One loaded bundle: `predict(features, mask)` on a (timeframes, window, 30) window."""

    def __init__(self, bundle: Bundle) -> None:
        meta = bundle.meta
        version = meta.get("feature_set_version")
        if version != FEATURE_SET_VERSION:
            raise RegistryError(
                f"model {bundle.version} was trained on feature set {version}; this service computes "
                f"{FEATURE_SET_VERSION}: refusing to serve it"
            )
        if tuple(meta.get("timeframes", ())) != TIMEFRAMES:
            raise RegistryError(f"model {bundle.version} expects timeframes {meta.get('timeframes')}, not {TIMEFRAMES}")
        self.bundle = bundle
        self.version = bundle.version
        self.base_timeframe = base_timeframe(bundle)
        self.step = Timeframe.parse(self.base_timeframe).seconds  # seconds of one base candle
        self.window = int(meta["window"])
        label = meta["label"]
        self.label = LookaheadConfig(
            label["timeframe"], int(label["candles"]), float(label["up"]), float(label["down"])
        )
        self.horizon_s = int(self.label.horizon.total_seconds())
        self.session = ort.InferenceSession(str(bundle.model_path), session_options(), providers=providers())
        self.trained_valid = _trained_valid(meta)
        self.masked = not bool(self.trained_valid.all())

    @property
    def provider(self) -> str:
        return str(self.session.get_providers()[0])

    def predict(self, features: np.ndarray, mask: np.ndarray) -> Prediction:
        """`features`, `mask`: float32 (timeframes, window, 30), invalid entries 0 in both."""
        return self.predict_many(features[None], mask[None])[0]

    def predict_many(self, features: np.ndarray, mask: np.ndarray) -> list[Prediction]:
        """One run for a batch (n, timeframes, window, 30): pairs closing together share it."""
        if self.masked:  # np.where, not a product: -0.0 would change the hash of equal inputs
            mask = np.where(self.trained_valid, mask, np.float32(0.0))
            features = np.where(self.trained_valid, features, np.float32(0.0))
        features = np.ascontiguousarray(features, dtype=np.float32)
        mask = np.ascontiguousarray(mask, dtype=np.float32)
        probabilities, confidence, _ = self.session.run(None, {"features": features, "mask": mask})
        out = []
        for i, p in enumerate(probabilities):
            digest = hashlib.sha256(features[i].tobytes() + mask[i].tobytes()).hexdigest()
            best = int(np.argmax(p))
            out.append(Prediction(LABELS[best], (float(p[0]), float(p[1]), float(p[2])), float(confidence[i]), digest))
        return out


class Batcher:
    """Collects the predictions asked for in one turn of the event loop and runs them as one batch.

    Pairs that close the same minute are decided in one onnxruntime call instead of one each
    (benchmarks/bench_stream.py); a lone request runs on the next loop turn, adding no wait.
    """

    def __init__(self) -> None:
        self._waiting: list[tuple[Predictor, np.ndarray, np.ndarray, asyncio.Future[Prediction]]] = []

    async def predict(self, predictor: Predictor, features: np.ndarray, mask: np.ndarray) -> Prediction:
        future: asyncio.Future[Prediction] = asyncio.get_running_loop().create_future()
        self._waiting.append((predictor, features, mask, future))
        if len(self._waiting) == 1:
            asyncio.get_running_loop().call_soon(self._run)
        return await future

    def _run(self) -> None:
        waiting, self._waiting = self._waiting, []
        for predictor in {id(w[0]): w[0] for w in waiting}.values():  # a hot reload can split a batch
            batch = [w for w in waiting if w[0] is predictor]
            try:
                results = predictor.predict_many(np.stack([w[1] for w in batch]), np.stack([w[2] for w in batch]))
            except Exception as exc:  # handed to every caller of this batch
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (*_, future), result in zip(batch, results, strict=True):
                if not future.done():  # the caller may have been cancelled meanwhile
                    future.set_result(result)


def _trained_valid(meta: dict[str, Any]) -> np.ndarray:
    coverage = meta.get("feature_coverage")
    valid = np.ones((len(TIMEFRAMES), 1, BLOCK), dtype=bool)
    if not coverage:  # bundles from before coverage was recorded: trust every feature
        return valid
    for i, name in enumerate(vector_names()):
        if not coverage.get(name, 0.0):
            valid[i // BLOCK, 0, i % BLOCK] = False
    return valid


def base_timeframe(bundle: Bundle) -> str:
    """The timeframe of the candles `bundle` was trained to decide on: one of the vector's."""
    base = str(bundle.meta.get("base_timeframe", DEFAULT_BASE))
    if base not in TIMEFRAMES:
        raise RegistryError(f"model {bundle.version} has base timeframe {base!r}, not one of {TIMEFRAMES}")
    return base


class SameBaseRegistry(Registry):
    """A view of `registry` for a running kernel to load models from: a bundle of another base
    timeframe than its pairs' candles (`step()` seconds; None: any, before the pairs have one)
    is refused like an incompatible one. The pairs' candles, features and windows are of one
    base; a model of another would be fed candles it was not trained on. What it reads, it
    reads through `registry`."""

    def __init__(self, registry: Registry, step: Callable[[], int | None]) -> None:
        super().__init__(registry.root)
        self._registry, self._step = registry, step

    def active(self) -> str | None:
        return self._registry.active()

    def get(self, version: str) -> Bundle:
        bundle = self._registry.get(version)
        step, base = self._step(), base_timeframe(bundle)
        if step is not None and Timeframe.parse(base).seconds != step:
            raise RegistryError(
                f"model {version} decides on {base} candles; this engine's pairs run on "
                f"{Timeframe(step)} candles: refusing to serve it (restart the service to change it)"
            )
        return bundle


def load(registry: Registry, version: str) -> Predictor:
    """Version `version` of the registry, verified and loaded."""
    return Predictor(registry.get(version))
