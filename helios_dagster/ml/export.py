"""ONNX export (normalisation inside the graph) and the onnxruntime-vs-torch parity check.

The export keeps the native ONNX `LSTM` / `GRU` operators (onnxruntime runs each recurrence in
one kernel). The TorchScript exporter feeds every one of them a zero initial state built at run
time from the input's shape (`Shape` -> `Gather` -> `Concat` -> `ConstantOfShape` -> `Slice`);
an omitted initial state is zero by the ONNX definition, so `export_onnx` drops those inputs and
the nodes that only built them: the same outputs bit for bit, about 100 fewer nodes per call.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper

from helios_core.features.spec import BLOCK, TIMEFRAMES
from helios_dagster.ml.model import Exported, HeliosNet
from helios_live.models.sessions import providers, session_options

if TYPE_CHECKING:  # data.py needs pandas, which a bare GPU host (benchmarks/bench_gpu.py) may not have
    from helios_dagster.ml.data import Samples

OPSET = 17
INPUTS = ("features", "mask")
OUTPUTS = ("probabilities", "confidence", "attention")
PARITY_TOLERANCE = 1e-5
CPU = ["CPUExecutionProvider"]
RECURRENT = ("LSTM", "GRU")
FIRST_STATE_INPUT = 5  # LSTM / GRU inputs: X, W, R, B, sequence_lens, initial_h (, initial_c, P)
_STATE_PLUMBING = ("Slice", "Reshape", "Unsqueeze", "Squeeze", "Expand")


def export_onnx(net: HeliosNet, path: Path, window: int) -> None:
    """Write the model as ONNX with a dynamic batch axis; inputs (batch, 3, window, 30)."""
    # The wrapper itself in eval mode: the exporter restores the wrapper's mode afterwards,
    # and a wrapper left in train mode would switch the net's dropout back on.
    model = Exported(on_cpu(net)).eval()
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
    graph = onnx.load(str(path))
    drop_zero_initial_states(graph)
    onnx.checker.check_model(graph)
    onnx.save(graph, str(path))


def drop_zero_initial_states(model: onnx.ModelProto) -> None:
    """Omit the LSTM / GRU initial states that are all zeros (the operators' default), then
    remove the nodes no output depends on any more."""
    graph = model.graph
    producer = {output: node for node in graph.node for output in node.output}
    for node in graph.node:
        if node.op_type not in RECURRENT:
            continue
        names = list(node.input)
        for i in range(FIRST_STATE_INPUT, len(names)):
            if names[i] and _zeros(names[i], producer):
                names[i] = ""
        while names and not names[-1]:  # trailing optional inputs are left out, not ""
            names.pop()
        del node.input[:]
        node.input.extend(names)
    needed = {output.name for output in graph.output}
    kept = []
    for node in reversed(graph.node):  # the graph is topologically sorted
        if any(output in needed for output in node.output):
            kept.append(node)
            needed.update(name for name in node.input if name)
    del graph.node[:]
    graph.node.extend(reversed(kept))


def _zeros(name: str, producer: dict[str, onnx.NodeProto]) -> bool:
    """Whether tensor `name` is a zero `ConstantOfShape`, sliced or reshaped at most."""
    node = producer.get(name)
    while node is not None and node.op_type in _STATE_PLUMBING:
        node = producer.get(node.input[0])
    if node is None or node.op_type != "ConstantOfShape":
        return False
    values = [numpy_helper.to_array(a.t) for a in node.attribute if a.name == "value"]
    return not any(v.any() for v in values)  # no `value`: zeros by definition


def on_cpu(net: HeliosNet) -> HeliosNet:
    """The net itself when it is on the CPU, else a CPU copy: a GPU-trained net stays on its GPU."""
    if all(p.device.type == "cpu" for p in net.parameters()):
        return net
    return copy.deepcopy(net).cpu()


def session(path: Path, on: list[str] | None = None) -> ort.InferenceSession:
    """The model as the live service runs it (`helios_live.models.sessions`), on the providers
    `on` (default: CUDA when this onnxruntime has it, else the CPU)."""
    return ort.InferenceSession(str(path), session_options(), providers=on or providers())


def parity(net: HeliosNet, path: Path, samples: Samples, which: np.ndarray) -> float:
    """Largest absolute difference of any output between onnxruntime and torch on `which`."""
    features, mask = samples.batch(which)
    return parity_on(net, path, features, mask)


def parity_on(net: HeliosNet, path: Path, features: np.ndarray, mask: np.ndarray) -> float:
    """Both on the CPU, whatever device trained the net: the check is of the export, and a GPU's
    kernels (TF32 among them) differ from the CPU's by more than the limit on their own."""
    features, mask = np.ascontiguousarray(features, dtype=np.float32), np.ascontiguousarray(mask, dtype=np.float32)
    onnx_out = session(path, CPU).run(list(OUTPUTS), {"features": features, "mask": mask})
    model = Exported(on_cpu(net)).eval()
    with torch.no_grad():
        torch_out = model(torch.from_numpy(features), torch.from_numpy(mask))
    return max(float(np.abs(a - b.numpy()).max()) for a, b in zip(onnx_out, torch_out, strict=True))
