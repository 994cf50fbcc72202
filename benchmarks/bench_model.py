"""Model presets: parameters, single-sample and batch-256 inference (onnxruntime vs torch eager,
same run), and training throughput, on this machine's CPU (a GPU when one is present).

Inputs have the real shape (batch, 3 timeframes, window 16, 30 features) with random values:
the cost of these networks does not depend on the values. The onnxruntime session is opened
with the live service's settings (`helios_live.models.inference.session_options`) on the model
as `export_onnx` writes it, so the figures are what the service runs; `onnx_session` in the JSON
says which settings those were. `python benchmarks/bench_model.py base` runs one preset. Prints
a table; the last line is one JSON object.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from helios_dagster.ml.export import export_onnx, session
from helios_dagster.ml.model import PRESETS, Exported, HeliosNet, parameter_count
from helios_live.models.sessions import providers, session_options

WINDOW = 16
SINGLE_RUNS = {"small": 2000, "base": 3000, "large": 200}  # base: enough calls for a stable p99
TRAIN_STEPS = {"small": 30, "base": 10, "large": 3}


def inputs(batch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(size=(batch, 3, WINDOW, 30)).astype(np.float32)
    return x, (rng.random(size=x.shape) > 0.2).astype(np.float32)


def latencies(call, runs: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    for _ in range(50):
        call()
    out = np.empty(runs)
    for i in range(runs):
        t0 = time.perf_counter_ns()
        call()
        out[i] = time.perf_counter_ns() - t0
    return out / 1000.0


def preset_figures(name: str, folder: Path, rng: np.random.Generator) -> dict[str, Any]:
    torch.manual_seed(0)
    net = HeliosNet(PRESETS[name]).eval()
    model = Exported(net).eval()
    path = folder / f"{name}.onnx"
    export_onnx(net, path, WINDOW)
    ort_session = session(path)
    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    x1, m1 = inputs(1, rng)
    t1, tm1 = torch.from_numpy(x1), torch.from_numpy(m1)
    with torch.no_grad():
        ort_single = latencies(lambda: ort_session.run(None, {"features": x1, "mask": m1}), SINGLE_RUNS[name])
        torch_single = latencies(lambda: model(t1, tm1), SINGLE_RUNS[name])
        x256, m256 = inputs(256, rng)
        t256, tm256 = torch.from_numpy(x256), torch.from_numpy(m256)
        ort_batch = latencies(lambda: ort_session.run(None, {"features": x256, "mask": m256}), 10)
        torch_batch = latencies(lambda: model(t256, tm256), 10)
    net.train()
    optimiser = torch.optim.AdamW(net.parameters(), lr=1e-3)
    labels = torch.from_numpy(rng.integers(0, 3, 256))
    started = time.perf_counter()
    for _ in range(TRAIN_STEPS[name]):
        logits, _, _ = net(t256, tm256)
        loss = torch.nn.functional.cross_entropy(logits, labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    train_rate = 256 * TRAIN_STEPS[name] / (time.perf_counter() - started)
    p = np.percentile
    return {
        "parameters": parameter_count(net),
        "onnx_single_p50_us": round(float(p(ort_single, 50)), 1),
        "onnx_single_p99_us": round(float(p(ort_single, 99)), 1),
        "torch_single_p50_us": round(float(p(torch_single, 50)), 1),
        "torch_single_p99_us": round(float(p(torch_single, 99)), 1),
        "torch_over_onnx_p50": round(float(p(torch_single, 50) / p(ort_single, 50)), 2),
        "onnx_batch256_samples_per_s": round(256 / (float(np.median(ort_batch)) / 1e6)),
        "torch_batch256_samples_per_s": round(256 / (float(np.median(torch_batch)) / 1e6)),
        "train_samples_per_s": round(train_rate),
        "onnx_nodes": len(ops),  # native LSTM / GRU nodes, not an unrolled or Loop / Scan recurrence
        "onnx_recurrent_ops": sorted(set(ops) & {"LSTM", "GRU", "Loop", "Scan"}),
    }


def session_settings() -> dict[str, object]:
    """What the live service's onnxruntime session runs with: the option this bench measures."""
    options = session_options()
    return {
        "graph_optimization_level": str(options.graph_optimization_level).split(".")[-1],
        "execution_mode": str(options.execution_mode).split(".")[-1],
        "intra_op_num_threads": options.intra_op_num_threads,
        "inter_op_num_threads": options.inter_op_num_threads,
        "providers": providers(),
        "weights": "float32 (not quantised)",
        "zero_initial_states": "omitted from the LSTM/GRU nodes at export",
    }


def main() -> None:
    torch.set_num_threads(os.cpu_count() or 1)
    rng = np.random.default_rng(0)
    chosen = sys.argv[1:] or list(PRESETS)
    unknown = sorted(set(chosen) - set(PRESETS))
    if unknown:
        raise SystemExit(f"unknown preset(s) {unknown}; the presets are {list(PRESETS)}")
    settings = session_settings()
    figures: dict[str, object] = {"benchmark": "bench_model", "window": WINDOW, "onnx_session": settings}
    print("onnxruntime session: " + ", ".join(f"{k} {v}" for k, v in settings.items()))
    with tempfile.TemporaryDirectory() as tmp:
        for name in chosen:
            row = preset_figures(name, Path(tmp), rng)
            figures[name] = row
            print(
                f"{name:<6} {row['parameters']:>11,} params  onnx p50/p99 {row['onnx_single_p50_us']:.0f}/"
                f"{row['onnx_single_p99_us']:.0f} us  torch p50/p99 {row['torch_single_p50_us']:.0f}/"
                f"{row['torch_single_p99_us']:.0f} us  batch-256 onnx {row['onnx_batch256_samples_per_s']:,}/s  "
                f"train {row['train_samples_per_s']:,}/s"
            )
    figures["target_base_onnx_single_p99_us"] = 1000
    figures["device"] = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    figures["machine"] = (
        f"{platform.machine()} {os.cpu_count()} cores, Python {sys.version.split()[0]}, torch {torch.__version__}"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
