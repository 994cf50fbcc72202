"""The body of the training loop on any device: placement, seeding, precision, one optimiser step.

`train.fit` and `benchmarks/bench_gpu.py` both run it, and a GPU host may have nothing but torch,
numpy, onnx and onnxruntime: this module imports torch and numpy only.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

PRECISIONS = ("fp32", "bf16")
# cuBLAS is deterministic only with a fixed workspace (CUDA's reproducibility notes); it is read
# when cuBLAS starts, so it is set before the first CUDA step.
CUBLAS_WORKSPACE = ":4096:8"


class NonFiniteLoss(ArithmeticError):
    """The loss became NaN or infinite; the step was not taken."""


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def describe(target: torch.device) -> str:
    """`cpu`, or `cuda (<GPU name>)`: what a bundle's metadata and a benchmark print."""
    if target.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(target)})"
    return target.type


def precision_for(target: torch.device, requested: str = "auto") -> str:
    """`auto` is bf16 autocast on CUDA and fp32 elsewhere (bf16 on a CPU is slower, not faster)."""
    if requested == "auto":
        return "bf16" if target.type == "cuda" else "fp32"
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be auto, fp32 or bf16, not {requested!r}")
    return requested


def seed_everything(seed: int, target: torch.device) -> None:
    """Seeds and deterministic kernels. On CUDA a kernel with no deterministic version warns
    instead of failing (the LSTM's backward has one; some scatter kernels do not)."""
    if target.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.manual_seed(seed)
    np.random.seed(seed)  # noqa: NPY002 -- torch and sklearn read the global generator
    torch.use_deterministic_algorithms(True, warn_only=target.type == "cuda")


def windows(vectors: np.ndarray, mask: np.ndarray, ends: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """The `window` rows up to each of `ends`, as the network takes them: (batch, timeframes,
    window, 30) from rows of (timeframes, 30)."""
    rows = ends[:, None] + np.arange(-window + 1, 1)
    return vectors[rows].transpose(0, 2, 1, 3), mask[rows].transpose(0, 2, 1, 3)


def to_device(features: np.ndarray, mask: np.ndarray, target: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch on `target`; through pinned memory on CUDA, so the copy runs asynchronously."""
    x, m = torch.from_numpy(np.ascontiguousarray(features)), torch.from_numpy(np.ascontiguousarray(mask))
    if target.type == "cuda":
        x, m = x.pin_memory(), m.pin_memory()
    return x.to(target, non_blocking=True), m.to(target, non_blocking=True)


@dataclass
class Objective:
    """Class-weighted cross-entropy plus the confidence head's loss (was the argmax right?)."""

    class_loss: nn.CrossEntropyLoss
    confidence_weight: float
    confidence_loss: nn.BCEWithLogitsLoss = field(default_factory=nn.BCEWithLogitsLoss)


def objective(train_labels: np.ndarray, classes: int, target: torch.device, confidence_weight: float) -> Objective:
    """Weights inverse to each class's share of the training labels (0 for an absent class)."""
    counts = np.bincount(train_labels, minlength=classes).astype(float)
    weights = np.where(counts > 0, counts.sum() / (classes * np.maximum(counts, 1)), 0.0)
    loss = nn.CrossEntropyLoss(weight=torch.tensor(weights, dtype=torch.float32, device=target))
    return Objective(loss, confidence_weight)


def step(
    net: nn.Module,
    optimiser: torch.optim.Optimizer,
    loss: Objective,
    batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    precision: str,
) -> float:
    """One optimiser step on (features, mask, labels); returns the batch's loss.

    Only the forward pass runs under autocast (PyTorch's recipe for bf16): the losses are taken
    in fp32, the weights and their gradients stay fp32, and bf16 needs no gradient scaler.
    """
    x, m, y = batch
    target = x.device
    with torch.autocast(device_type=target.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        logits, confidence, _ = net(x, m)
    logits, confidence = logits.float(), confidence.float()
    correct = (logits.argmax(dim=-1) == y).float()
    value = loss.class_loss(logits, y) + loss.confidence_weight * loss.confidence_loss(confidence, correct)
    if not torch.isfinite(value):
        raise NonFiniteLoss(f"loss became {value.item()}")
    optimiser.zero_grad()
    value.backward()
    nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    optimiser.step()
    return float(value.item())  # .item() waits for the device: a step's time is its real time


@dataclass
class Throughput:
    """Samples trained per second: batch assembly, the copy to the device and the step; the
    validation passes between epochs are left out."""

    samples: int = 0
    seconds: float = 0.0

    def timed(self, count: int, started: float) -> None:
        self.samples += count
        self.seconds += time.perf_counter() - started

    @property
    def per_second(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else 0.0
