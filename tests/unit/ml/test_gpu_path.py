"""The CUDA path's pieces that a CPU can check, and benchmarks/bench_gpu.py on a bare host."""

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import torch
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from helios_dagster.ml import export
from helios_dagster.ml.data import build_samples, chronological_split
from helios_dagster.ml.model import PRESETS, HeliosNet
from helios_dagster.ml.step import CUBLAS_WORKSPACE, precision_for, seed_everything
from helios_dagster.ml.train import TrainConfig, fit
from tests.ml_support import dataset

ROOT = Path(__file__).resolve().parents[3]
BARE = ("torch", "numpy", "onnx", "onnxruntime")  # what a GPU host is promised to have


def installed_closure(names: tuple[str, ...]) -> list[metadata.Distribution]:
    """The distributions `names` need, transitively (extras and other platforms left out)."""
    seen: dict[str, metadata.Distribution] = {}
    todo = list(names)
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        dist = metadata.distribution(name)
        seen[name] = dist
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return list(seen.values())


def bare_site(folder: Path) -> Path:
    """A site folder holding only BARE and what they need, linked from this environment's."""
    folder.mkdir()
    for dist in installed_closure(BARE):
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith(("..", "__pycache__"))}
        for top in tops:
            source = Path(str(dist.locate_file(top)))
            if source.exists() and not (folder / top).exists():
                (folder / top).symlink_to(source)
    return folder


def test_the_gpu_benchmark_runs_on_a_host_with_only_torch_numpy_and_onnx(tmp_path: Path) -> None:
    site = bare_site(tmp_path / "site")
    assert not (site / "pandas").exists() and not (site / "dagster").exists()
    bench = ROOT / "benchmarks" / "bench_gpu.py"
    runner = (
        f"import runpy, sys; sys.path.insert(0, {str(site)!r}); runpy.run_path({str(bench)!r}, run_name='__main__')"
    )
    args = ["--presets", "base", "--steps", "1", "--batch", "4", "--latency-runs", "2"]
    # -I -S: no site-packages, no PYTHONPATH, no user site: the interpreter, the linked site and the repository
    out = subprocess.run(  # noqa: S603 -- this interpreter, a command built here
        [sys.executable, "-I", "-S", "-c", runner, *args], capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "no CUDA device: the same steps on the CPU" in out.stdout
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["device"] == "cpu" and figures["cuda"] is False
    for key in ("base_bf16_samples_per_s", "base_fp32_samples_per_s", "large_bf16_samples_per_s"):
        assert key in figures
    assert figures["base_fp32_samples_per_s"] > 0 and figures["base_bf16_samples_per_s"] > 0
    assert figures["large_bf16_samples_per_s"] is None  # not asked for: absent, not invented
    assert 0 <= figures["onnx_parity_max_abs"] <= figures["onnx_parity_limit"] == 1e-5
    assert np.isfinite(figures["base_bf16"]["held_out_loss"])
    assert set(figures["inference"]) == {f"base_{p}_batch{b}" for p in ("fp32", "bf16") for b in (1, 256)}


def test_auto_precision_is_bf16_on_cuda_only_and_a_wrong_one_is_refused() -> None:
    assert precision_for(torch.device("cuda")) == "bf16"
    assert precision_for(torch.device("cpu")) == "fp32"
    assert precision_for(torch.device("cpu"), "bf16") == "bf16"
    with pytest.raises(ValueError, match="auto, fp32 or bf16"):
        precision_for(torch.device("cpu"), "fp16")


def test_seeding_for_cuda_fixes_the_cublas_workspace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    enabled, warn_only = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    try:
        seed_everything(1, torch.device("cuda"))
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == CUBLAS_WORKSPACE
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
        seed_everything(1, torch.device("cuda"))
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"  # the operator's choice stands
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


def test_parity_runs_onnx_on_the_cpu_even_where_cuda_is_offered(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    opened: list[list[str]] = []
    real = ort.InferenceSession

    def recording(path: str, options: ort.SessionOptions, providers: list[str]) -> ort.InferenceSession:
        opened.append(providers)
        return real(path, options, providers=["CPUExecutionProvider"])

    monkeypatch.setattr(export, "providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(export.ort, "InferenceSession", recording)
    torch.manual_seed(3)
    net = HeliosNet(PRESETS["small"]).eval()
    export.export_onnx(net, tmp_path / "m.onnx", 8)
    rng = np.random.default_rng(0)
    features = rng.normal(size=(4, 3, 8, 30)).astype(np.float32)
    assert export.parity_on(net, tmp_path / "m.onnx", features, np.ones_like(features)) <= export.PARITY_TOLERANCE
    assert opened == [["CPUExecutionProvider"]]
    assert export.on_cpu(net) is net  # a CPU net is exported as it is, not copied


def test_bf16_autocast_trains_on_the_cpu_and_is_recorded() -> None:
    frame = dataset(days=3)
    samples = build_samples([frame], 8, pd.Timedelta("1min"))
    split = chronological_split(samples, pd.Timedelta(hours=1))
    config = TrainConfig(preset="small", window=8, max_epochs=1, min_train_samples=200, precision="bf16")
    logs: list[str] = []
    fitted = fit(samples, split, config, logs.append)
    assert fitted.run["precision"] == "bf16" and fitted.run["device"] == "cpu"
    assert float(fitted.run["samples_per_s"]) > 0  # type: ignore[arg-type]
    assert all(np.isfinite(fitted.history[0][k]) for k in ("train_loss", "val_loss"))
    assert all(p.dtype == torch.float32 for p in fitted.net.parameters())  # autocast leaves the weights fp32
    assert any("in bf16" in line for line in logs)
