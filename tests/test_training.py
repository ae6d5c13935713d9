"""Training level (Li et al., Alg. 1 and 2): backward rules per family, the loss, the split."""

from __future__ import annotations

import json

import numpy as np
from conftest import make_model, weights
from onnx import TensorProto, helper

import onnx_energy
from onnx_energy.cli import main
from onnx_energy.graph import TensorInfo
from onnx_energy.ops.registry import BasicOps, OpRule
from onnx_energy.passes.training import backward_family, loss_bops

F = TensorProto.FLOAT


def bl(b: BasicOps | None) -> list[int]:
    assert b is not None
    return [b.add, b.sub, b.mul, b.div, b.root]


def fc_sigmoid():
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["h"], transB=1),
             helper.make_node("Sigmoid", ["h"], ["y"])]
    return make_model(nodes, [("x", [1, 4], F)], initializers={"w": weights(3, 4),
                                                               "b": weights(3)})


def node(a, op):
    return next(n for n in a.nodes if n.op_type == op)


def test_fc_sigmoid_training_by_hand():
    a = onnx_energy.analyze(fc_sigmoid(), phase="training", loss="ce")
    gemm, sig = node(a, "Gemm").lowered, node(a, "Sigmoid").lowered
    # Gemm: x is data (no dX); dW = x^T.dY: 12 products, each a single term (batch 1): no adds;
    # db = dY summed over a batch of 1: no adds.
    assert bl(gemm.backward) == [0, 0, 12, 0, 0]
    # Sigmoid: dY * y * (1 - y) per element: sub + 2 mul, 3 elements.
    assert bl(sig.backward) == [0, 3, 6, 0, 0]
    # CE over 3 logits, one row: max 2 sub; x-max 3 sub, exp 3 root; sum 2 add; log 1 root,
    # loss 1 sub; mean: 0 add, 1 div; gradient: softmax 3 div, -1 at the target 1 sub, /rows 3 mul.
    assert bl(sig.loss) == [2, 7, 3, 4, 4]
    assert bl(gemm.loss) == [0, 0, 0, 0, 0]
    t = a.totals.lowered
    assert bl(t.forward) == [15, 3, 12, 3, 3]
    assert bl(t.backward) == [0, 3, 18, 0, 0]
    assert bl(t.loss) == [2, 7, 3, 4, 4]
    assert bl(t.total) == [17, 13, 33, 7, 7]


def test_mse_loss_by_hand():
    a = onnx_energy.analyze(fc_sigmoid(), phase="training", loss="mse")
    # (y - t) 3 sub, squared 3 mul, summed 2 add, / n 1 div; gradient (2/n)(y - t) 3 mul.
    assert bl(a.totals.lowered.loss) == [2, 3, 6, 1, 0]
    assert bl(loss_bops(TensorInfo("y", (4, 5), "float32"), "mse")) == [19, 20, 40, 1, 0]


def test_ce_loss_on_a_batch_of_rows():
    # 2 rows of 5 classes: max 8 sub, x-max 10 sub, exp 10 root, sums 8 add, log 2 root,
    # loss 2 sub, mean 1 add + 1 div; gradient 10 div, 2 sub, 10 mul.
    assert bl(loss_bops(TensorInfo("y", (2, 5), "float32"), "ce")) == [9, 22, 10, 11, 12]


def mlp(batch=2):
    # x[2,4] -Gemm(3)-> h -Relu-> r -Gemm(2)-> y
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["y"], transB=1)]
    inits = {"w1": weights(3, 4), "b1": weights(3), "w2": weights(2, 3), "b2": weights(2)}
    return make_model(nodes, [("x", [batch, 4], F)], initializers=inits)


def test_dot_backward_is_two_products_of_the_forwards_size():
    a = onnx_energy.analyze(mlp(), phase="training")
    g1, relu, g2 = (n.lowered for n in a.nodes)
    # Gemm2: M=2, K=3, N=2, 12 MACs. dR = dY.W2: 12 mul, 12 - 6 adds; dW2 = R^T.dY: 12 mul,
    # 12 - 6 adds; db2: 4 outputs summed into 2: 2 adds.
    assert bl(g2.backward) == [6 + 6 + 2, 0, 24, 0, 0]
    assert bl(relu.backward) == [0, 6, 0, 0, 0]  # x > 0 selects dY
    # Gemm1: 24 MACs; the data input gets no gradient; dW1: 24 mul, 24 - 12 adds; db1: 6 - 3.
    assert bl(g1.backward) == [12 + 3, 0, 24, 0, 0]


def test_nodes_off_the_gradient_path_have_no_backward():
    # y = Relu(x) + w: the Relu sees only data; z = Exp(x) is a second output (no loss on it).
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("Add", ["r", "w"], ["y"]),
             helper.make_node("Exp", ["y"], ["z"])]
    model = make_model(nodes, [("x", [2, 3], F)],
                       outputs=[("z", [2, 3], F), ("y", [2, 3], F)],
                       initializers={"w": weights(2, 3)})
    a = onnx_energy.analyze(model, phase="training", loss="mse")
    relu, add, exp = (n.lowered for n in a.nodes)
    assert bl(relu.backward) == [0, 0, 0, 0, 0]
    assert bl(add.backward) == [0, 0, 0, 0, 0]  # dW = dY: free
    assert bl(exp.backward) == [0, 0, 6, 0, 0]  # dY * y
    assert bl(exp.loss) == [5, 6, 12, 1, 0]  # the first float output carries the loss
    assert bl(add.loss) == [0, 0, 0, 0, 0]


def test_broadcast_gradients_are_summed_back():
    # y = x * w with w[3] broadcast over [4,3]: dW = sum over 4 rows of dY*x: 12 mul, 9 adds.
    nodes = [helper.make_node("Mul", ["x", "w"], ["y"])]
    model = make_model(nodes, [("x", [4, 3], F)], initializers={"w": weights(3)})
    a = onnx_energy.analyze(model, phase="training", loss="mse")
    assert bl(a.nodes[0].lowered.backward) == [9, 0, 12, 0, 0]


def test_batch_norm_running_stats_get_no_gradient_and_use_batch_statistics():
    # BN over x[2,3,2,2] after a Conv (so x needs a gradient): 24 elements, 3 channels.
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]),
             helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["y"])]
    inits = {"w": weights(3, 1, 1, 1), "g": weights(3), "b": weights(3), "m": weights(3),
             "v": np.ones(3, np.float32)}
    model = make_model(nodes, [("x", [2, 1, 2, 2], F)], initializers=inits)
    a = onnx_energy.analyze(model, phase="training", loss="mse")
    bn = a.nodes[1].lowered
    # per element: xh (sub, mul), g = dY*gamma (mul), 2 sums, g*xh, xh*m2, 2 subs, *rstd
    # -> add 2, sub 3, mul 5; dGamma (mul, add), dBeta (add); per channel 2 div.
    assert bl(bn.backward) == [24 * 4, 24 * 3, 24 * 6, 3 * 2, 0]


def test_generic_family_is_twice_the_forward():
    def rule(_):
        raise AssertionError

    assert backward_family(OpRule("x.test", "NewOp", rule, "compute")) == "generic"
    assert backward_family(OpRule("x.test", "NewMove", rule, "movement")) == "movement"
    assert backward_family(OpRule("x.test", "Odd", rule, "no-such-kind")) is None
    # Softsign has an explicit rule; an op of another domain falls back to its kind.
    assert backward_family(OpRule("", "Softsign", rule, "compute")) == "unary"


def test_totals_and_by_op_type_split_by_phase_in_json(tmp_path, capsys):
    path = tmp_path / "mlp.onnx"
    path.write_bytes(mlp().SerializeToString())
    assert main(["analyze", str(path), "--format", "json", "--phase", "training",
                 "--loss", "mse"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["phase"] == "training" and d["loss"] == "mse"
    for rec in (d["totals"], d["by_op_type"]["Gemm"], d["nodes"][0]):
        assert set(rec["bops"]) == {"forward", "backward", "loss", "total"}
        assert set(rec["tos"]) == {"forward", "backward", "loss", "total"}
        for phase in ("forward", "backward", "loss", "total"):
            assert set(rec["tos"][phase]) == {"fp32", "fp16", "native"}
        total = {k: sum(rec["bops"][p][k] for p in ("forward", "backward", "loss"))
                 for k in rec["bops"]["total"]}
        assert rec["bops"]["total"] == total
        assert rec["tos"]["total"]["fp32"] == sum(
            rec["tos"][p]["fp32"] for p in ("forward", "backward", "loss"))
    assert d["by_op_type"]["Gemm"]["bops"]["backward"]["mul"] == 48
    assert d["totals"]["bops"]["forward"] == d["totals"]["bops"]["forward"] | {"mul": 36}


def test_training_csv_and_table(tmp_path, capsys):
    path = tmp_path / "mlp.onnx"
    path.write_bytes(mlp().SerializeToString())
    assert main(["analyze", str(path), "--format", "csv", "--phase", "training"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    cols = header.split(",")
    assert {"backward_mul", "loss_div", "total_add", "tos_fp32_backward", "tos_native_total",
            "native_dtype", "tos_fp16"} <= set(cols)
    g2 = dict(zip(cols, rows[2].split(","), strict=True))
    assert g2["backward_mul"] == "24" and g2["native_dtype"] == "fp32"
    assert main(["analyze", str(path), "--phase", "training", "--loss", "ce"]) == 0
    out = capsys.readouterr().out
    assert "backward" in out and "loss (ce)" in out


def test_training_macs_flops_and_bytes_follow_the_backward_rules(tmp_path, capsys):
    a = onnx_energy.analyze(mlp(), phase="training", loss="ce")
    g1, relu, g2 = a.nodes
    # Forward: Gemm1 2x4 @ 4x3 = 24 MACs, Gemm2 2x3 @ 3x2 = 12 MACs.
    assert (g1.macs, g2.macs) == (24, 12)
    # Backward MACs are the gradient products: Gemm1 dW1 only (x is data), Gemm2 dR and dW2.
    assert (g1.backward.macs, relu.backward.macs, g2.backward.macs) == (24, 0, 24)
    # FLOPs: 2 per MAC plus the bias-gradient adds (6 -> 3, 4 -> 2); Relu 6 compares.
    assert (g1.backward.flops, relu.backward.flops, g2.backward.flops) == (51, 6, 50)
    # Bytes: dY plus the saved inputs read, the input gradients written (float32).
    assert (g2.backward.bytes_read, g2.backward.bytes_written) == (16 + 24 + 24 + 8, 24 + 24 + 8)
    assert (relu.backward.bytes_read, relu.backward.bytes_written) == (24 + 24, 24)
    assert (g1.backward.bytes_read, g1.backward.bytes_written) == (24 + 32 + 48 + 12, 48 + 12)
    # The loss (CE on y[2,2]): no MACs, FLOPs = its 28 basic operations; reads y, writes dy.
    assert g2.loss == onnx_energy.analysis.Work(0, 28, 16, 16)
    t = a.totals
    assert t.backward == onnx_energy.analysis.Work(48, 107, 236, 140)
    assert t.loss == onnx_energy.analysis.Work(0, 28, 16, 16)
    path = tmp_path / "mlp.onnx"
    path.write_bytes(mlp().SerializeToString())
    assert main(["analyze", str(path), "--format", "json", "--phase", "training"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["totals"]["macs"] == {"forward": 36, "backward": 48, "loss": 0, "total": 84}
    assert d["totals"]["flops"]["total"] == d["totals"]["flops"]["forward"] + 107 + 28
    assert d["totals"]["bytes_written"]["backward"] == 140
    assert d["by_op_type"]["Gemm"]["macs"] == {"forward": 36, "backward": 48, "loss": 0,
                                              "total": 84}
    assert d["nodes"][2]["bytes_read"]["loss"] == 16
    assert main(["analyze", str(path), "--format", "csv", "--phase", "training"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    g2_row = dict(zip(header.split(","), rows[2].split(","), strict=True))
    assert (g2_row["macs"], g2_row["backward_macs"], g2_row["total_macs"]) == ("12", "24", "36")
    assert g2_row["loss_flops"] == "28" and g2_row["backward_bytes_written"] == "56"


def test_seed_convention_applies_to_the_backward_too():
    a = onnx_energy.analyze(mlp(), phase="training", convention="seed")
    g1, relu, g2 = a.nodes
    # (FLOPs + bias adds) / 2: Gemm1 (51 + 3) / 2, Relu 6 / 2.
    assert (g1.backward.macs, relu.backward.macs, g2.backward.macs) == (27, 3, 26)


def test_unknown_backward_shapes_make_a_lower_bound():
    model = mlp(batch="n")
    a = onnx_energy.analyze(model, phase="training", default_batch=None)
    assert not a.totals.complete
    assert a.nodes[0].backward.macs is None
    assert a.to_dict()["totals"]["lower_bound"] is True
