"""ONNX export (normalisation inside the graph) and the onnxruntime-vs-torch parity check."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from helios_core.features.spec import BLOCK, TIMEFRAMES
from helios_dagster.ml.data import Samples
from helios_dagster.ml.model import Exported, HeliosNet
from helios_live.models.inference import providers

OPSET = 17
INPUTS = ("features", "mask")
OUTPUTS = ("probabilities", "confidence", "attention")
PARITY_TOLERANCE = 1e-5


def export_onnx(net: HeliosNet, path: Path, window: int) -> None:
    """Write the model as ONNX with a dynamic batch axis; inputs (batch, 3, window, 30)."""
    # The wrapper itself in eval mode: the exporter restores the wrapper's mode afterwards,
    # and a wrapper left in train mode would switch the net's dropout back on.
    model = Exported(net.cpu()).eval()
    example = torch.zeros(2, len(TIMEFRAMES), window, BLOCK), torch.ones(2, len(TIMEFRAMES), window, BLOCK)
    axes = {name: {0: "batch"} for name in (*INPUTS, *OUTPUTS)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            model,
            example,
            str(path),
            input_names=list(INPUTS),
            output_names=list(OUTPUTS),
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=providers())


def parity(net: HeliosNet, path: Path, samples: Samples, which: np.ndarray) -> float:
    """Largest absolute difference of any output between onnxruntime and torch on `which`."""
    features, mask = samples.batch(which)
    features, mask = np.ascontiguousarray(features, dtype=np.float32), np.ascontiguousarray(mask, dtype=np.float32)
    onnx_out = session(path).run(list(OUTPUTS), {"features": features, "mask": mask})
    model = Exported(net.cpu()).eval()
    with torch.no_grad():
        torch_out = model(torch.from_numpy(features), torch.from_numpy(mask))
    return max(float(np.abs(a - b.numpy()).max()) for a, b in zip(onnx_out, torch_out, strict=True))
