from pathlib import Path

import numpy as np
import pytest
import torch

from helios_dagster.ml.export import PARITY_TOLERANCE, export_onnx, parity, session
from helios_dagster.ml.model import PRESETS, Exported, HeliosNet, parameter_count


@pytest.mark.parametrize(("preset", "expected"), [("small", 63_748), ("base", 3_297_796)])
def test_preset_parameter_counts(preset: str, expected: int) -> None:
    assert parameter_count(HeliosNet(PRESETS[preset])) == expected


def test_the_large_preset_has_the_designs_40m_parameters() -> None:
    assert parameter_count(HeliosNet(PRESETS["large"])) >= 40_000_000


def test_outputs_and_attention_over_three_timeframe_tokens() -> None:
    torch.manual_seed(0)
    net = Exported(HeliosNet(PRESETS["small"]).eval())
    probabilities, confidence, attention = net(torch.randn(5, 3, 16, 30), torch.ones(5, 3, 16, 30))
    assert probabilities.shape == (5, 3) and confidence.shape == (5,) and attention.shape == (5, 3)
    assert torch.allclose(probabilities.sum(-1), torch.ones(5)) and torch.allclose(attention.sum(-1), torch.ones(5))
    assert ((confidence > 0) & (confidence < 1)).all()


def test_masked_values_do_not_reach_the_model() -> None:
    net = HeliosNet(PRESETS["small"]).eval()
    x, mask = torch.randn(2, 3, 16, 30), (torch.rand(2, 3, 16, 30) > 0.5).float()
    scrambled = torch.where(mask.bool(), x, torch.randn_like(x) * 1e6)
    with torch.no_grad():
        assert torch.equal(net(x, mask)[0], net(scrambled, mask)[0])


def test_onnx_export_carries_normalisation_and_matches_torch(tmp_path: Path) -> None:
    torch.manual_seed(1)
    mean, std = torch.randn(3, 1, 30) * 100, torch.rand(3, 1, 30) * 50 + 1
    net = HeliosNet(PRESETS["small"], mean, std).eval()
    export_onnx(net, tmp_path / "m.onnx", window=8)
    x = (torch.randn(300, 3, 8, 30) * 50 + mean.unsqueeze(0)).numpy().astype(np.float32)
    m = np.ones_like(x)
    onnx_probabilities = session(tmp_path / "m.onnx").run(["probabilities"], {"features": x, "mask": m})[0]
    with torch.no_grad():
        torch_probabilities = Exported(net)(torch.from_numpy(x), torch.from_numpy(m))[0].numpy()
    assert onnx_probabilities.shape == (300, 3)  # the batch axis is dynamic (exported with 2)
    assert np.abs(onnx_probabilities - torch_probabilities).max() <= PARITY_TOLERANCE


def test_parity_fails_for_a_different_model(tmp_path: Path) -> None:
    import pandas as pd

    from helios_dagster.ml.data import build_samples
    from tests.ml_support import dataset

    samples = build_samples([dataset(days=2)], 8, pd.Timedelta("1min"))
    torch.manual_seed(2)
    exported, other = HeliosNet(PRESETS["small"]).eval(), HeliosNet(PRESETS["small"]).eval()
    export_onnx(exported, tmp_path / "m.onnx", window=8)
    which = np.arange(min(1000, len(samples)))
    assert parity(exported, tmp_path / "m.onnx", samples, which) <= PARITY_TOLERANCE
    assert parity(other, tmp_path / "m.onnx", samples, which) > PARITY_TOLERANCE


def test_the_export_keeps_native_recurrences_and_omits_their_zero_initial_states(tmp_path: Path) -> None:
    import onnx

    torch.manual_seed(3)
    net = HeliosNet(PRESETS["small"]).eval()
    export_onnx(net, tmp_path / "m.onnx", window=8)
    nodes = onnx.load(str(tmp_path / "m.onnx")).graph.node
    ops = [n.op_type for n in nodes]
    assert ops.count("LSTM") == 3 and ops.count("GRU") == 3  # one encoder per timeframe, not unrolled
    assert not {"Loop", "Scan", "ConstantOfShape"} & set(ops)
    assert all(len(n.input) <= 5 for n in nodes if n.op_type in ("LSTM", "GRU"))  # X, W, R, B, lens only
    x, m = torch.randn(7, 3, 8, 30), (torch.rand(7, 3, 8, 30) > 0.3).float()
    onnx_out = session(tmp_path / "m.onnx").run(None, {"features": x.numpy(), "mask": m.numpy()})
    with torch.no_grad():
        torch_out = Exported(net)(x, m)
    assert max(float(np.abs(a - b.numpy()).max()) for a, b in zip(onnx_out, torch_out, strict=True)) <= PARITY_TOLERANCE


def test_a_nonzero_initial_state_is_kept() -> None:
    import onnx
    from onnx import TensorProto, helper

    from helios_dagster.ml.export import drop_zero_initial_states

    hidden, inputs = 2, 3
    weights = [
        helper.make_tensor(name, TensorProto.FLOAT, dims, np.full(int(np.prod(dims)), 0.1, dtype=np.float32))
        for name, dims in (("W", [1, 4 * hidden, inputs]), ("R", [1, 4 * hidden, hidden]), ("B", [1, 8 * hidden]))
    ]
    shape = helper.make_tensor("shape", TensorProto.INT64, [3], np.array([1, 1, hidden], dtype=np.int64))
    nodes = [
        helper.make_node("Constant", [], ["s"], value=shape),
        helper.make_node(
            "ConstantOfShape", ["s"], ["zeros"], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.0])
        ),
        helper.make_node(
            "ConstantOfShape", ["s"], ["ones"], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])
        ),
        helper.make_node("LSTM", ["X", "W", "R", "B", "", "ones", "zeros"], ["Y"], hidden_size=hidden),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [4, 1, inputs])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [4, 1, 1, hidden])],
        weights,
    )
    model = helper.make_model(graph)

    drop_zero_initial_states(model)

    lstm = [n for n in model.graph.node if n.op_type == "LSTM"][0]
    assert list(lstm.input) == ["X", "W", "R", "B", "", "ones"]  # the zero cell state goes, the ones stay
    assert [n.output[0] for n in model.graph.node if n.op_type == "ConstantOfShape"] == ["ones"]
    onnx.checker.check_model(model)
