"""How Helios opens an ONNX model: the execution providers and the session settings.

onnxruntime only: the export's parity check and `benchmarks/bench_gpu.py` use these on hosts that
have nothing but torch, numpy, onnx and onnxruntime.
"""

from __future__ import annotations

import onnxruntime as ort


def providers() -> list[str]:
    """CUDA when this onnxruntime build has it, else the CPU."""
    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


def session_options() -> ort.SessionOptions:
    """The onnxruntime settings the service runs its model with; `benchmarks/bench_model.py`,
    `benchmarks/bench_gpu.py` and the export's parity check open their sessions with these too.

    Chosen on `base` single-sample latency on the 2-core CPU (docs/benchmarks.md, bench_model):
    one intra-op thread, sequential execution. A second intra-op thread (or the parallel
    executor, the three timeframe encoders on two inter-op threads) lowers p50 and p99 by about
    a fifth while the other core is idle, and multiplies the p99 by four to five as soon as
    anything else runs on it: the service shares these cores with its event loop, the ledger and
    the database. The graph optimisation levels measure alike (the LSTM/GRU kernels are over 80 % of
    the time); ALL is kept. A saved optimised model runs no faster.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return options
