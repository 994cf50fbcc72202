"""The anomaly pipeline (StandardScaler + IsolationForest) as one small ONNX graph.

skl2onnx's IsolationForest converter builds the path length of every tree from nodes of its
own (2,711 of them for 100 trees), and onnxruntime then takes about 1 ms for one sample. The
forest's score only needs, per tree, the leaf a sample reaches: its path length (depth plus the
average path length of the samples left in it, minus one, as sklearn computes it) is a leaf
value. So the graph is: the scaler in double, a round trip through float32 (sklearn casts the
scaled rows to float32 before its trees compare them with their float64 thresholds), one
`TreeEnsembleRegressor` over every tree (double thresholds; its SUM of the leaf values comes out
in float32, as the operator's output type is, about 1e-7 relative), and sklearn's
formula -2 ** (-depths / (trees * c(max_samples))) minus `offset_`: output "scores", the
decision function, as skl2onnx's graph names it. The parity check compares it with sklearn's
`score_samples`.
"""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.ensemble import IsolationForest
from sklearn.ensemble._iforest import _average_path_length
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

OPSET = [helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]


def _trees(forest: IsolationForest) -> dict[str, list[object]]:
    a: dict[str, list[object]] = {k: [] for k in ("fid", "mode", "nid", "tid", "true", "false", "value")}
    leaves: dict[str, list[object]] = {"nid": [], "tid": [], "weight": []}
    for t, (tree, features) in enumerate(zip(forest.estimators_, forest.estimators_features_, strict=True)):
        structure = tree.tree_
        lengths = forest._decision_path_lengths[t] + forest._average_path_length_per_tree[t] - 1.0
        for node in range(structure.node_count):
            leaf = structure.children_left[node] == -1
            a["tid"].append(t)
            a["nid"].append(node)
            a["mode"].append("LEAF" if leaf else "BRANCH_LEQ")
            a["fid"].append(0 if leaf else int(features[structure.feature[node]]))
            a["true"].append(0 if leaf else int(structure.children_left[node]))
            a["false"].append(0 if leaf else int(structure.children_right[node]))
            a["value"].append(0.0 if leaf else float(structure.threshold[node]))
            if leaf:
                leaves["tid"].append(t)
                leaves["nid"].append(node)
                leaves["weight"].append(float(lengths[node]))
    return a | {f"leaf_{k}": v for k, v in leaves.items()}


def forest_to_onnx(pipeline: Pipeline, features: int) -> onnx.ModelProto:
    scaler, forest = pipeline[0], pipeline[-1]
    if not (isinstance(scaler, StandardScaler) and isinstance(forest, IsolationForest)):
        raise TypeError("expected Pipeline([StandardScaler, IsolationForest])")
    t = _trees(forest)
    denominator = len(forest.estimators_) * float(_average_path_length([forest._max_samples])[0])

    def const(name: str, value: object) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(value, dtype=np.float64), name)

    nodes = [
        helper.make_node("Sub", ["input", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "scale"], ["scaled"]),
        helper.make_node("Cast", ["scaled"], ["as_float"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["as_float"], ["rows"], to=TensorProto.DOUBLE),
        helper.make_node(
            "TreeEnsembleRegressor",
            ["rows"],
            ["depths_float"],
            domain="ai.onnx.ml",
            n_targets=1,
            aggregate_function="SUM",
            nodes_featureids=t["fid"],
            nodes_modes=t["mode"],
            nodes_nodeids=t["nid"],
            nodes_treeids=t["tid"],
            nodes_truenodeids=t["true"],
            nodes_falsenodeids=t["false"],
            nodes_values_as_tensor=const("thresholds", t["value"]),
            target_ids=[0] * len(t["leaf_nid"]),
            target_nodeids=t["leaf_nid"],
            target_treeids=t["leaf_tid"],
            target_weights_as_tensor=const("weights", t["leaf_weight"]),
        ),
        helper.make_node("Cast", ["depths_float"], ["depths"], to=TensorProto.DOUBLE),
        helper.make_node("Div", ["depths", "denominator"], ["ratio"]),
        helper.make_node("Neg", ["ratio"], ["exponent"]),
        helper.make_node("Pow", ["two", "exponent"], ["power"]),
        helper.make_node("Neg", ["power"], ["score_samples"]),
        helper.make_node("Sub", ["score_samples", "offset"], ["scores"]),
    ]
    initializers = [
        const("mean", scaler.mean_),
        const("scale", scaler.scale_),
        const("denominator", denominator),
        const("two", 2.0),
        const("offset", float(forest.offset_)),
    ]
    graph = helper.make_graph(
        nodes,
        "helios_anomaly_forest",
        [helper.make_tensor_value_info("input", TensorProto.DOUBLE, [None, features])],
        [helper.make_tensor_value_info("scores", TensorProto.DOUBLE, [None, 1])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=OPSET, producer_name="helios")
    onnx.checker.check_model(model)
    return model
