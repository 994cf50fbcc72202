"""Training and inference on the GPU: the `base` and `large` presets, fp32 and bf16 autocast.

Runs with nothing but torch, numpy, onnx and onnxruntime and the repository on PYTHONPATH (a GPU
host may have its own Python and torch, no Dagster, no pandas, no package registry):

    PYTHONPATH=. python benchmarks/bench_gpu.py

The windows come from `benchmarks/data/gpu_windows.npz`, built from the committed BTC-PERP sample
(`data/sample`) by the batch feature path and look-ahead labels: `--prepare` rebuilds it (that needs
the full environment). Each run trains a preset from the same seed on the same batches with the
training loop's own step (`helios_dagster.ml.step`), timing the steps after a warm-up; then the
fp32 loss on held-out windows, the ONNX export of the trained weights and its parity against torch,
both on the CPU (limit 1e-5 for fp32-trained weights), and torch's inference latency on the device
(single sample and batch 256). On a machine without CUDA it runs the same steps on the CPU with fewer
steps and a smaller batch, and says so. Prints a table; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from helios_dagster.ml.export import PARITY_TOLERANCE, export_onnx, parity_on  # noqa: E402
from helios_dagster.ml.model import CLASSES, PRESETS, HeliosNet, parameter_count  # noqa: E402
from helios_dagster.ml.step import (  # noqa: E402
    Throughput,
    describe,
    device,
    objective,
    seed_everything,
    step,
    to_device,
    windows,
)

DATA = ROOT / "benchmarks" / "data" / "gpu_windows.npz"
SAMPLE = ROOT / "data" / "sample" / "BTC-PERP_1m_2021-12-31_2022-02-01.parquet"
WINDOW = 16
DAYS = 3  # of the sample: enough windows for a few hundred distinct batches, a small file
HELD_OUT = 256  # the last windows: evaluation loss and parity, never trained on
WARMUP = 3
GPU = {"steps": {"base": 200, "large": 100}, "batch": 256, "latency_runs": 300}
CPU = {"steps": {"base": 4, "large": 2}, "batch": 32, "latency_runs": 20}
SEED = 7


def prepare(path: Path = DATA, days: int = DAYS) -> None:
    """Rebuild the windows file from the sample: the features asset's batch path (resample,
    blocks, assemble) and look-ahead labels (0.5 % over 12 x 5m)."""
    import pandas as pd

    from helios_core.candles import resample, validate_candles
    from helios_core.features.batch import block_features
    from helios_core.features.multi import assemble
    from helios_core.features.spec import BLOCK, TIMEFRAMES, vector_names
    from helios_core.labels import LookaheadConfig, lookahead_labels
    from helios_core.timeframes import Timeframe
    from helios_dagster.ml.data import build_samples

    m1, m5, m15 = (Timeframe.parse(t) for t in ("1m", "5m", "15m"))
    candles = validate_candles(pd.read_parquet(SAMPLE), m1, SAMPLE.name)
    candles = candles.loc[candles["ts"] < candles["ts"].iloc[0] + pd.Timedelta(days=days)].reset_index(drop=True)
    end, start = candles["ts"].iloc[-1] + m1.duration, candles["ts"].iloc[0]
    frames = {"1m": candles, "5m": resample(candles, m1, m5, end, start), "15m": resample(candles, m1, m15, end, start)}
    blocks = {tf: (f["ts"], block_features(f, Timeframe.parse(tf))) for tf, f in frames.items()}
    vectors = assemble(blocks, candles["ts"] + m1.duration).reset_index(drop=True)
    labels = lookahead_labels(candles, m1, LookaheadConfig(up=0.005, down=0.005))
    frame = pd.concat([candles[["ts"]], labels, vectors], axis=1)
    frame["n_valid"] = frame[list(vector_names())].notna().sum(axis=1)
    samples = build_samples([frame], WINDOW, pd.Timedelta(m1.duration))
    shape = (len(samples.vectors), len(TIMEFRAMES), BLOCK)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        vectors=samples.vectors.reshape(shape),
        mask=samples.mask.reshape(shape).astype(np.uint8),
        ends=samples.ends.astype(np.int32),
        labels=samples.labels.astype(np.int8),
        source=np.array(f"{SAMPLE.name}, first {days} days, window {WINDOW}"),
    )
    print(f"wrote {path}: {len(samples)} windows over {len(samples.vectors)} rows")


class Windows:
    """The prepared windows: training batches drawn from all but the last HELD_OUT."""

    def __init__(self, path: Path = DATA) -> None:
        if not path.exists():
            raise SystemExit(f"{path} is missing: run `python benchmarks/bench_gpu.py --prepare` first")
        with np.load(path) as data:
            self.vectors = data["vectors"].astype(np.float32)
            self.mask = data["mask"].astype(np.float32)
            self.ends = data["ends"].astype(np.int64)
            self.labels = data["labels"].astype(np.int64)
            self.source = str(data["source"])
        if len(self.ends) <= HELD_OUT:
            raise SystemExit(f"{path} holds {len(self.ends)} windows; more than {HELD_OUT} are needed")
        self.train = np.arange(len(self.ends) - HELD_OUT)
        self.held_out = np.arange(len(self.ends) - HELD_OUT, len(self.ends))

    def batch(self, which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return windows(self.vectors, self.mask, self.ends[which], WINDOW)

    def batches(self, count: int, size: int) -> list[np.ndarray]:
        """The same `count` batches for every run: precision is the only difference."""
        rng = np.random.default_rng(SEED)
        return [rng.choice(self.train, size=size, replace=False) for _ in range(count)]


def synchronize(target: torch.device) -> None:
    if target.type == "cuda":
        torch.cuda.synchronize(target)


def train_run(
    data: Windows, preset: str, precision: str, steps: int, size: int, target: torch.device
) -> dict[str, Any]:
    seed_everything(SEED, target)
    net = HeliosNet(PRESETS[preset]).to(target)
    loss = objective(data.labels[data.train], CLASSES, target, 0.5)
    optimiser = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-2)
    labels = torch.from_numpy(data.labels)
    if target.type == "cuda":
        torch.cuda.reset_peak_memory_stats(target)
    throughput, last = Throughput(), float("nan")
    net.train()
    for i, which in enumerate(data.batches(WARMUP + steps, size)):
        synchronize(target)
        started = time.perf_counter()
        x, m = to_device(*data.batch(which), target)
        last = step(net, optimiser, loss, (x, m, labels[which].to(target)), precision)
        if i >= WARMUP:  # the first steps pick kernels and fill caches
            throughput.timed(len(which), started)
    net.eval()
    features, mask = data.batch(data.held_out)
    with torch.no_grad():  # fp32 for both precisions, so the two losses compare
        logits, _, _ = net(*to_device(features, mask, target))
        held_out = float(loss.class_loss(logits.float(), labels[data.held_out].to(target)).item())
    peak = torch.cuda.max_memory_allocated(target) / 2**20 if target.type == "cuda" else None
    return {
        "net": net,
        "samples_per_s": round(throughput.per_second, 1),
        "peak_memory_mib": None if peak is None else round(peak, 1),
        "loss": round(last, 5),
        "held_out_loss": round(held_out, 5),
        "parameters": parameter_count(net),
    }


def export_parity(net: HeliosNet, data: Windows, folder: Path, name: str) -> float:
    path = folder / f"{name}.onnx"
    export_onnx(net, path, WINDOW)
    return parity_on(net, path, *data.batch(data.held_out))


def latency(
    net: HeliosNet, data: Windows, size: int, runs: int, target: torch.device, precision: str
) -> dict[str, float]:
    """Milliseconds per call of torch on `target`, inputs already there (the model's own time)."""
    x, m = to_device(*data.batch(data.held_out[:size]), target)
    times = np.empty(runs)
    with torch.no_grad(), torch.autocast(target.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        for i in range(WARMUP + runs):
            synchronize(target)
            started = time.perf_counter()
            net(x, m)
            synchronize(target)
            if i >= WARMUP:
                times[i - WARMUP] = time.perf_counter() - started
    return {
        "p50_ms": round(float(np.percentile(times, 50)) * 1e3, 3),
        "p99_ms": round(float(np.percentile(times, 99)) * 1e3, 3),
    }


def tf32() -> dict[str, bool]:
    return {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepare", action="store_true", help="rebuild benchmarks/data/gpu_windows.npz and exit")
    parser.add_argument("--presets", default="base,large", help="comma-separated presets (default base,large)")
    parser.add_argument("--steps", type=int, help="timed steps per run (default: 200 base / 100 large on a GPU)")
    parser.add_argument("--batch", type=int, help="batch size (default 256 on a GPU, 32 on the CPU)")
    parser.add_argument("--latency-runs", type=int, help="timed inference calls per figure (default 300 GPU, 20 CPU)")
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args(argv)
    if args.prepare:
        prepare(args.data)
        return {}
    target = device()
    plan = GPU if target.type == "cuda" else CPU
    if target.type != "cuda":
        print(
            "no CUDA device: the same steps on the CPU, fewer of them and a smaller batch (figures are not the GPU's)"
        )
    size, runs = args.batch or plan["batch"], args.latency_runs or plan["latency_runs"]
    data = Windows(args.data)
    print(f"{describe(target)}; torch {torch.__version__}; {data.source}; batch {size}; tf32 {tf32()}")
    figures: dict[str, Any] = {"device": describe(target), "cuda": target.type == "cuda", "batch": size}
    latencies: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets.split(","):
            steps = args.steps or plan["steps"].get(preset, 10)
            for precision in ("fp32", "bf16"):
                run = train_run(data, preset, precision, steps, size, target)
                net = run.pop("net")
                parity = export_parity(net, data, Path(tmp), f"{preset}-{precision}")
                run |= {"steps": steps, "onnx_parity_max_abs": parity}
                figures[f"{preset}_{precision}"] = run
                figures[f"{preset}_{precision}_samples_per_s"] = run["samples_per_s"]
                print(
                    f"{preset:5} {precision}: {run['samples_per_s']:10.1f} samples/s, "
                    f"peak {run['peak_memory_mib']} MiB, "
                    f"loss {run['loss']:.4f}, held-out {run['held_out_loss']:.4f}, ONNX parity {parity:.2e}"
                )
                if preset == "base":
                    for batch in (1, 256):
                        key = f"base_{precision}_batch{batch}"
                        latencies[key] = latency(net, data, batch, runs, target, precision)
                        print(f"  inference batch {batch:3} ({precision}): {latencies[key]}")
                del net
                if target.type == "cuda":
                    torch.cuda.empty_cache()
    base = figures.get("base_fp32", {})
    figures |= {
        "onnx_parity_max_abs": base.get("onnx_parity_max_abs"),
        "onnx_parity_bf16_max_abs": figures.get("base_bf16", {}).get("onnx_parity_max_abs"),
        "onnx_parity_limit": PARITY_TOLERANCE,
        "inference": latencies,
        "torch": torch.__version__,
        "tf32": tf32(),
        "host": platform.node(),
    }
    for key in ("base_bf16_samples_per_s", "base_fp32_samples_per_s", "large_bf16_samples_per_s"):
        figures.setdefault(key, None)
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
