"""Control flow and functions: If (both branches), Loop and Scan (body x trips), model-local
functions inlined, nested subgraphs reading outer-scope names. Every count is hand-computed."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from conftest import make_model, weights
from onnx import TensorProto, helper

import onnx_energy
from onnx_energy.cli import main
from onnx_energy.errors import BindingError, InvalidGraphError
from onnx_energy.passes.control_flow import MAX_SUBGRAPH_DEPTH

F = TensorProto.FLOAT
B = TensorProto.BOOL
I64 = TensorProto.INT64


def vi(name: str, shape, elem: int = F) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


def graph(nodes, inputs, outputs, name="g") -> onnx.GraphProto:
    return helper.make_graph(nodes, name, inputs, outputs)


# ------------------------------------------------------------------------------------ If


def if_model() -> onnx.ModelProto:
    # then: x[2,3] @ A[3,4] -> 2*4*3 = 24 MACs
    # else: x @ B[3,4] -> 24, then [2,4] @ C[4,4] -> 2*4*4 = 32: 56 MACs
    # x, A, B, C are read from the outer scope.
    then = graph([helper.make_node("MatMul", ["x", "A"], ["t"])], [], [vi("t", [2, 4])], "then")
    other = graph([helper.make_node("MatMul", ["x", "B"], ["e1"]),
                   helper.make_node("MatMul", ["e1", "C"], ["e2"])], [], [vi("e2", [2, 4])],
                  "else")
    nodes = [helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other),
             helper.make_node("Relu", ["y"], ["z"])]
    return make_model(nodes, [("x", [2, 3], F), ("c", [], B)], [("z", [2, 4], F)],
                      initializers={"A": weights(3, 4), "B": weights(3, 4), "C": weights(4, 4)})


def test_if_counts_the_costlier_branch_by_default():
    a = onnx_energy.analyze(if_model())
    assert a.by_op_type["If"].macs == 56
    assert a.totals.macs == 56
    assert a.totals.complete
    node = a.to_dict()["nodes"][0]
    assert node["branch"] == "else"
    assert node["branches"]["then"]["totals"]["macs"] == 24
    assert node["branches"]["else"]["totals"]["macs"] == 56
    assert node["branches"]["then"]["counted"] is False
    assert node["branches"]["else"]["counted"] is True
    assert [n["op_type"] for n in node["branches"]["else"]["nodes"]] == ["MatMul", "MatMul"]


@pytest.mark.parametrize(("branch", "macs"), [("then", 24), ("else", 56)])
def test_if_branch_option_picks_the_branch(branch, macs):
    a = onnx_energy.analyze(if_model(), branch=branch)
    assert a.totals.macs == macs
    assert a.to_dict()["nodes"][0]["branch"] == branch
    # FLOPs: 2 per MAC, plus the Relu on [2,4] = 8
    assert a.totals.flops == 2 * macs + 8


def test_if_branch_through_the_cli(tmp_path, capsys):
    path = tmp_path / "if.onnx"
    onnx.save(if_model(), path)
    assert main(["analyze", str(path), "--format", "json", "--branch", "then"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["totals"]["macs"] == 24
    node = data["nodes"][0]
    assert node["branch"] == "then" and set(node["branches"]) == {"then", "else"}
    assert main(["analyze", str(path), "--branch", "both"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_if_with_different_branch_shapes_takes_the_counted_branch_shape():
    # then: Identity of x[2,3]; else: x @ W[3,5] -> [2,5] (30 MACs). The If's output rank
    # matches, its dims do not; the Relu after it is costed on the counted branch's shape.
    then = graph([helper.make_node("Identity", ["x"], ["t"])], [], [vi("t", None)], "then")
    other = graph([helper.make_node("MatMul", ["x", "W"], ["e"])], [], [vi("e", None)], "else")
    nodes = [helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other),
             helper.make_node("Relu", ["y"], ["z"])]
    m = make_model(nodes, [("x", [2, 3], F), ("c", [], B)], initializers={"W": weights(3, 5)})
    a = onnx_energy.analyze(m)
    assert a.totals.macs == 30
    relu = next(n for n in a.nodes if n.op_type == "Relu")
    assert relu.outputs[0].shape == (2, 5) and relu.flops == 10
    b = onnx_energy.analyze(m, branch="then")
    relu = next(n for n in b.nodes if n.op_type == "Relu")
    assert b.totals.macs == 0 and relu.flops == 6


def test_if_with_an_unsupported_op_in_a_branch_is_listed_and_strict_fails(tmp_path, capsys):
    then = graph([helper.make_node("Mystery", ["x"], ["t"], domain="custom")], [],
                 [vi("t", [2, 3])], "then")
    other = graph([helper.make_node("Relu", ["x"], ["e"])], [], [vi("e", [2, 3])], "else")
    m = make_model([helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)],
                   [("x", [2, 3], F), ("c", [], B)], [("y", [2, 3], F)],
                   extra_opsets={"custom": 1})
    a = onnx_energy.analyze(m)
    assert a.unsupported == {"custom::Mystery": 1}
    assert not a.totals.complete
    assert [u.op_type for u in a.unresolved] == ["If"]
    path = tmp_path / "if.onnx"
    onnx.save(m, path)
    assert main(["analyze", str(path), "--format", "json", "--strict"]) == 3
    out, err = capsys.readouterr()
    assert json.loads(out)["unsupported"] == {"custom::Mystery": 1}
    assert "Traceback" not in err


# ---------------------------------------------------------------------------------- Loop


def loop_body() -> onnx.GraphProto:
    # (i, cond, h[1,3]) -> (cond, h @ W, scan-out h @ W); W[3,3] from the outer scope:
    # 1*3*3 = 9 MACs, 9 mul + 6 add = 15 FLOPs... as a dot product: 2*9 = 18 FLOPs
    return graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("MatMul", ["h", "W"], ["h_next"]),
         helper.make_node("Identity", ["h_next"], ["emit"])],
        [vi("i", [], I64), vi("cond_in", [], B), vi("h", None)],
        [vi("cond_out", [], B), vi("h_next", None), vi("emit", None)], "body")


def loop_model(trips: int | None) -> onnx.ModelProto:
    """Loop over loop_body with M = trips (None: M is a graph input), then the stacked scan
    output [trips,1,3] @ P[3,2]."""
    inits = {"W": weights(3, 3), "P": weights(3, 2)}
    inputs = [("h0", [1, 3], F)]
    if trips is None:
        inputs.append(("M", [], I64))
    else:
        inits["M"] = np.array(trips, np.int64)
    nodes = [helper.make_node("Loop", ["M", "", "h0"], ["h_final", "stacked"], body=loop_body()),
             helper.make_node("MatMul", ["stacked", "P"], ["y"])]
    return make_model(nodes, inputs, [("y", None, F)], initializers=inits)


def test_loop_with_constant_trip_count():
    a = onnx_energy.analyze(loop_model(5))
    loop, after = a.nodes
    assert loop.macs == 5 * 9
    assert loop.flops == 5 * 18
    assert a.to_dict()["nodes"][0]["trips"] == 5
    assert a.to_dict()["nodes"][0]["trips_source"] == "M"
    assert a.to_dict()["nodes"][0]["body"]["totals"]["macs"] == 9
    # the scan output is [5,1,3]: the MatMul after the loop is 5*1*2*3 = 30 MACs
    assert after.outputs[0].shape == (5, 1, 2) and after.macs == 30
    assert a.totals.macs == 45 + 30
    assert a.totals.complete


def test_loop_without_a_constant_trip_count_is_unresolved_never_zero():
    a = onnx_energy.analyze(loop_model(None))
    loop = a.nodes[0]
    assert loop.status == "unresolved"
    assert loop.macs is None and loop.flops is None
    assert not a.totals.complete
    reasons = {u.op_type: u.reason for u in a.unresolved}
    assert "--loop-trips" in reasons["Loop"]


def test_loop_trips_option_gives_the_count():
    a = onnx_energy.analyze(loop_model(None), loop_trips=7)
    assert a.nodes[0].macs == 7 * 9
    assert a.nodes[1].macs == 7 * 2 * 3
    assert a.to_dict()["nodes"][0]["trips_source"] == "--loop-trips"
    assert a.totals.complete


def test_constant_trip_count_wins_over_the_option():
    a = onnx_energy.analyze(loop_model(5), loop_trips=100)
    assert a.nodes[0].macs == 45


def test_while_loop_placeholder_count_needs_the_option():
    # torch exports while-loops with M = INT64_MAX and a computed condition
    m = loop_model(2**63 - 1)
    a = onnx_energy.analyze(m)
    assert a.nodes[0].status == "unresolved" and a.nodes[0].macs is None
    assert "placeholder" in a.unresolved[0].reason
    assert onnx_energy.analyze(m, loop_trips=4).nodes[0].macs == 36


def test_loop_with_constant_false_condition_runs_zero_times():
    m = loop_model(5)
    m.graph.initializer.append(onnx.numpy_helper.from_array(np.array(False), "stop"))
    m.graph.node[0].input[1] = "stop"
    a = onnx_energy.analyze(m)
    assert a.nodes[0].macs == 0 and a.nodes[0].status == "ok"


def test_loop_trips_through_the_cli(tmp_path, capsys):
    path = tmp_path / "loop.onnx"
    onnx.save(loop_model(None), path)
    assert main(["analyze", str(path), "--format", "json", "--loop-trips", "3"]) == 0
    out, _ = capsys.readouterr()
    data = json.loads(out)
    assert data["nodes"][0]["macs"] == 27 and data["totals"]["macs"] == 27 + 18
    assert main(["analyze", str(path), "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["nodes"][0]["macs"] is None
    assert err.startswith("onnx-energy: warning: totals are lower bounds: 2 of 2 nodes not "
                          "counted; bind with: --loop-trips N\n")
    assert main(["analyze", str(path), "--strict"]) == 3
    capsys.readouterr()
    assert main(["analyze", str(path), "--loop-trips", "-1"]) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and "Traceback" not in err


def test_bad_api_options():
    with pytest.raises(ValueError):
        onnx_energy.analyze(loop_model(5), branch="maybe")
    with pytest.raises(BindingError):
        onnx_energy.analyze(loop_model(5), loop_trips=-2)


# ---------------------------------------------------------------------------------- Scan


def scan_model(length: int | str = 6) -> onnx.ModelProto:
    # Scan over X[length,4]: each step x[4] @ W[4,3] -> [3] (12 MACs), s + y (3 adds);
    # state s[3], scan output y stacked to [length,3].
    body = graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"]),
         helper.make_node("Add", ["s", "y"], ["s_next"])],
        [vi("s", [3]), vi("x", [4])], [vi("s_next", [3]), vi("y", [3])], "body")
    nodes = [helper.make_node("Scan", ["s0", "X"], ["s_final", "ys"], body=body,
                              num_scan_inputs=1),
             helper.make_node("Relu", ["ys"], ["z"])]
    return make_model(nodes, [("s0", [3], F), ("X", [length, 4], F)], [("z", None, F)],
                      initializers={"W": weights(4, 3)})


def test_scan_iterates_over_the_scan_axis():
    a = onnx_energy.analyze(scan_model(6))
    scan, relu = a.nodes
    assert scan.macs == 6 * 12
    assert scan.flops == 6 * (24 + 3)
    assert a.to_dict()["nodes"][0]["trips"] == 6
    assert relu.outputs[0].shape == (6, 3) and relu.flops == 18
    assert a.totals.complete


def test_scan_with_symbolic_length_is_unresolved_until_bound():
    a = onnx_energy.analyze(scan_model("T"))
    assert a.nodes[0].status == "unresolved" and a.nodes[0].macs is None
    assert "T" in a.unresolved[0].dims
    b = onnx_energy.analyze(scan_model("T"), dims={"T": 10})
    assert b.nodes[0].macs == 120


def test_scan_8_has_a_batch_axis():
    # Scan-8 (opset 8): X[2,6,4] is batch 2 x 6 steps of x[4]; 2*6*12 = 144 MACs
    body = graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"]),
         helper.make_node("Add", ["s", "y"], ["s_next"])],
        [vi("s", [3]), vi("x", [4])], [vi("s_next", [3]), vi("y", [3])], "body")
    m = make_model([helper.make_node("Scan", ["", "s0", "X"], ["sf", "ys"], body=body,
                                     num_scan_inputs=1)],
                   [("s0", [2, 3], F), ("X", [2, 6, 4], F)], [("ys", None, F)],
                   initializers={"W": weights(4, 3)}, opset=8)
    a = onnx_energy.analyze(m)
    assert a.nodes[0].macs == 144
    assert [o.shape for o in a.nodes[0].outputs] == [(2, 3), (2, 6, 3)]


def test_scan_axis_attribute():
    # the same scan over X[4,6] along axis 1: 6 steps of x[4]
    m = scan_model(6)
    m.graph.input[1].CopyFrom(vi("X", [4, 6]))
    m.graph.node[0].attribute.append(helper.make_attribute("scan_input_axes", [1]))
    a = onnx_energy.analyze(m)
    assert a.nodes[0].macs == 72


# ----------------------------------------------------------------------------- functions


def function_model() -> onnx.ModelProto:
    # local.Dense(a, w) = Relu(a @ w), called on x[2,3] @ w1[3,4] (24 MACs) and then
    # [2,4] @ w2[4,5] (40 MACs); the Relus are 8 and 10 FLOPs.
    dense = helper.make_function(
        "local", "Dense", ["a", "w"], ["b"],
        [helper.make_node("MatMul", ["a", "w"], ["t"]), helper.make_node("Relu", ["t"], ["b"])],
        [helper.make_opsetid("", 13)])  # an older opset than the model's: still expanded
    nodes = [helper.make_node("Dense", ["x", "w1"], ["h"], domain="local"),
             helper.make_node("Dense", ["h", "w2"], ["y"], domain="local")]
    m = make_model(nodes, [("x", [2, 3], F)], [("y", [2, 5], F)],
                   initializers={"w1": weights(3, 4), "w2": weights(4, 5)},
                   extra_opsets={"local": 1})
    m.functions.append(dense)
    return m


def test_model_local_functions_are_expanded():
    a = onnx_energy.analyze(function_model())
    assert a.totals.macs == 24 + 40
    assert a.totals.flops == 2 * 64 + 8 + 10
    assert a.by_op_type["MatMul"].count == 2 and a.by_op_type["Relu"].count == 2
    assert not a.unsupported and a.totals.complete


def test_recursive_function_is_refused():
    m = function_model()
    m.functions[0].node.append(helper.make_node("Dense", ["b", "w"], ["again"], domain="local"))
    m.functions[0].opset_import.append(helper.make_opsetid("local", 1))
    with pytest.raises(InvalidGraphError, match="functions"):
        onnx_energy.analyze(m)


def test_function_called_inside_a_branch_is_expanded():
    m = function_model()
    body = graph([helper.make_node("Dense", ["x", "w1"], ["t"], domain="local")], [],
                 [vi("t", [2, 4])], "then")
    other = graph([helper.make_node("Identity", ["x"], ["e"])], [], [vi("e", [2, 3])], "else")
    m.graph.node.append(helper.make_node("If", ["c"], ["q"], then_branch=body,
                                         else_branch=other))
    m.graph.input.append(vi("c", [], B))
    a = onnx_energy.analyze(m)
    assert a.by_op_type["If"].macs == 24
    assert a.totals.macs == 24 + 40 + 24


# -------------------------------------------------------------------------------- nesting


def test_if_nested_in_a_loop_reads_names_two_scopes_out():
    # Loop x3 over h[1,3]; inside, If(c): then h @ W (9 MACs) else Identity (0).
    # c and W live in the main graph.
    then = graph([helper.make_node("MatMul", ["h", "W"], ["t"])], [], [vi("t", [1, 3])], "then")
    other = graph([helper.make_node("Identity", ["h"], ["e"])], [], [vi("e", [1, 3])], "else")
    body = graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("If", ["c"], ["h_next"], then_branch=then, else_branch=other)],
        [vi("i", [], I64), vi("cond_in", [], B), vi("h", [1, 3])],
        [vi("cond_out", [], B), vi("h_next", [1, 3])], "body")
    m = make_model([helper.make_node("Loop", ["M", "", "h0"], ["hf"], body=body)],
                   [("h0", [1, 3], F), ("c", [], B)], [("hf", [1, 3], F)],
                   initializers={"W": weights(3, 3), "M": np.array(3, np.int64)})
    a = onnx_energy.analyze(m)
    assert a.totals.macs == 3 * 9
    inner_if = a.to_dict()["nodes"][0]["body"]["nodes"][1]
    assert inner_if["op_type"] == "If" and inner_if["branch"] == "then"
    assert inner_if["branches"]["then"]["totals"]["macs"] == 9
    assert onnx_energy.analyze(m, branch="else").totals.macs == 0


def test_weights_inside_a_subgraph_count_once_as_params():
    # the body holds its own V[3,3] (9 params); W[3,3] is outer (9): 18, whatever the trips
    body = loop_body()
    body.initializer.append(onnx.numpy_helper.from_array(weights(3, 3), "V"))
    body.node.append(helper.make_node("MatMul", ["h_next", "V"], ["unused"]))
    m = loop_model(5)
    m.graph.node[0].attribute[0].g.CopyFrom(body)
    a = onnx_energy.analyze(m)
    assert a.totals.params == 9 + 6 + 9  # W, P, and V inside the body
    assert a.nodes[0].macs == 5 * (9 + 9)


def test_loop_nested_in_a_loop_multiplies_the_trips():
    inner = graph(
        [helper.make_node("Identity", ["ci"], ["co"]),
         helper.make_node("MatMul", ["g", "W"], ["g2"])],
        [vi("j", [], I64), vi("ci", [], B), vi("g", [1, 3])],
        [vi("co", [], B), vi("g2", [1, 3])], "inner")
    outer = graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Loop", ["N", "", "h"], ["h2"], body=inner)],
        [vi("i", [], I64), vi("cond_in", [], B), vi("h", [1, 3])],
        [vi("cond_out", [], B), vi("h2", [1, 3])], "outer")
    m = make_model([helper.make_node("Loop", ["M", "", "h0"], ["hf"], body=outer)],
                   [("h0", [1, 3], F)], [("hf", [1, 3], F)],
                   initializers={"W": weights(3, 3), "M": np.array(2, np.int64),
                                 "N": np.array(4, np.int64)})
    assert onnx_energy.analyze(m).totals.macs == 2 * 4 * 9


def nested_ifs(depth: int) -> onnx.ModelProto:
    """``depth`` Ifs nested in their then-branches; the innermost then is x @ W (6 MACs)."""
    g = graph([helper.make_node("MatMul", ["x", "W"], [f"y{depth}"])], [],
              [vi(f"y{depth}", [1, 2])], "leaf")
    for d in range(depth - 1, -1, -1):
        other = graph([helper.make_node("Identity", ["z"], [f"e{d}"])], [],
                      [vi(f"e{d}", [1, 2])], "else")
        node = helper.make_node("If", ["c"], [f"y{d}"], then_branch=g, else_branch=other)
        g = graph([node], [], [vi(f"y{d}", [1, 2])], f"level{d}")
    return make_model(list(g.node), [("x", [1, 3], F), ("z", [1, 2], F), ("c", [], B)],
                      [("y0", [1, 2], F)], initializers={"W": weights(3, 2)})


def test_deeply_nested_ifs_are_costed():
    assert onnx_energy.analyze(nested_ifs(12)).totals.macs == 6


def test_nesting_beyond_the_limit_is_refused(tmp_path, capsys):
    path = tmp_path / "deep.onnx"
    onnx.save(nested_ifs(MAX_SUBGRAPH_DEPTH + 2), path)
    assert main(["analyze", str(path)]) == 2
    _, err = capsys.readouterr()
    assert "nested" in err and err.count("\n") == 1


def test_subgraph_reading_an_undefined_name_is_refused():
    then = graph([helper.make_node("Relu", ["nowhere"], ["t"])], [], [vi("t", [2])], "then")
    other = graph([helper.make_node("Identity", ["x"], ["e"])], [], [vi("e", [2])], "else")
    m = make_model([helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)],
                   [("x", [2], F), ("c", [], B)], [("y", [2], F)])
    with pytest.raises(InvalidGraphError, match="nowhere"):
        onnx_energy.analyze(m)


def test_outer_names_order_the_main_graph():
    # The If reads "late", produced by a node listed after it: sorted, not refused.
    then = graph([helper.make_node("MatMul", ["late", "W"], ["t"])], [], [vi("t", [1, 2])],
                 "then")
    other = graph([helper.make_node("Identity", ["late"], ["e"])], [], [vi("e", [1, 3])],
                  "else")
    nodes = [helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other),
             helper.make_node("Relu", ["x"], ["late"])]
    m = make_model(nodes, [("x", [1, 3], F), ("c", [], B)], [("y", None, F)],
                   initializers={"W": weights(3, 2)})
    a = onnx_energy.analyze(m)
    assert [n.op_type for n in a.nodes] == ["Relu", "If"]
    assert a.totals.macs == 6
