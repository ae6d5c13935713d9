"""Hostile inputs: every failure is one stderr line and exit 2 (3 for --strict), never a
traceback, an internal error or a hang. Random bytes, truncation, bit flips, cycles, dangling
names, negative and absurd dims, external data pointing outside the folder or at devices,
subgraphs nested too deep, opsets from the future, names that are not UTF-8."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import make_model, weights
from fuzz_models import Outcome, problem, run_cli
from onnx import TensorProto, helper

import onnx_energy
from onnx_energy.ops.registry import register
from onnx_energy.passes.control_flow import MAX_SUBGRAPH_DEPTH

F = TensorProto.FLOAT
B = TensorProto.BOOL
I64 = TensorProto.INT64


def vi(name: str, shape, elem: int = F) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


def conv_relu() -> onnx.ModelProto:
    # x[N,3,8,8] -Conv(4,3,3x3)-> [N,4,6,6] -Relu-> y
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Relu", ["c"], ["y"])]
    return make_model(nodes, [("x", ["N", 3, 8, 8], F)], [("y", None, F)],
                      initializers={"w": weights(4, 3, 3, 3)})


def if_model() -> onnx.ModelProto:
    then = helper.make_graph([helper.make_node("MatMul", ["x", "A"], ["t"])], "then", [],
                             [vi("t", [2, 4])])
    other = helper.make_graph([helper.make_node("Relu", ["x"], ["e"])], "else", [],
                              [vi("e", [2, 3])])
    return make_model([helper.make_node("If", ["c"], ["y"], then_branch=then,
                                        else_branch=other)],
                      [("x", [2, 3], F), ("c", [], B)], [("y", None, F)],
                      initializers={"A": weights(3, 4)})


def analyze_file(tmp_path: Path, model: onnx.ModelProto | bytes, *args: str,
                 name: str = "m.onnx") -> Outcome:
    path = tmp_path / name
    path.write_bytes(model if isinstance(model, bytes) else model.SerializeToString())
    return run_cli(path, args or ("--format", "json"), limit_s=20)


def refused(o: Outcome, *words: str, code: int = 2) -> None:
    assert problem(o) is None, problem(o)
    assert o.code == code, (o.code, o.err)
    assert o.err.count("\n") == 1 and o.err.startswith("onnx-energy"), o.err
    for w in words:
        assert w in o.err, (w, o.err)


def clean(o: Outcome) -> None:
    assert problem(o) is None, problem(o)


# -------------------------------------------------------------------- bytes on disk


@pytest.mark.parametrize("data", [
    np.random.default_rng(5).bytes(100_000),
    b"\x08\x08\x3a" + np.random.default_rng(6).bytes(300),  # ir_version, then a bad graph
    b"\x3a\xff\xff\xff\xff\x0f",  # a graph field claiming 4 GB
    b"\x0a" * 5000,
], ids=["random-100k", "header-then-junk", "huge-length", "repeated-tag"])
def test_random_bytes(tmp_path, data):
    refused(analyze_file(tmp_path, data))


def test_every_truncation_of_a_control_flow_model(tmp_path):
    data = if_model().SerializeToString()
    for cut in range(0, len(data), 3):
        o = analyze_file(tmp_path, data[:cut])
        clean(o)
        assert o.code == 2, (cut, o.err)


def test_bit_flips_of_a_control_flow_model(tmp_path):
    data = bytearray(if_model().SerializeToString())
    rng = np.random.default_rng(0)
    for _ in range(150):
        flipped = bytearray(data)
        for _ in range(3):
            flipped[rng.integers(len(flipped))] ^= 1 << int(rng.integers(8))
        clean(analyze_file(tmp_path, bytes(flipped)))


@pytest.mark.parametrize("target", ["/dev/zero", "fifo", "dir"])
def test_model_path_is_a_device_fifo_or_directory(tmp_path, target):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dir").mkdir()
    link = tmp_path / "model.onnx"
    os.symlink(target if target.startswith("/") else tmp_path / target, link)
    refused(run_cli(link, ["--format", "json"], limit_s=20))


def test_names_that_are_not_utf8(tmp_path):
    data = conv_relu().SerializeToString().replace(b"Relu", b"R\xffl\xfe")
    refused(analyze_file(tmp_path, data), "UTF-8")


# -------------------------------------------------------------------------- structure


def test_two_node_cycle(tmp_path):
    m = conv_relu()
    m.graph.node[0].input[0] = "y"
    refused(analyze_file(tmp_path, m), "cycle")


def test_self_loop(tmp_path):
    m = conv_relu()
    m.graph.node[1].input[0] = "y"
    refused(analyze_file(tmp_path, m), "cycle")


def test_cycle_through_a_subgraph_outer_name(tmp_path):
    # The If's branch reads "z", which is computed from the If's own output.
    then = helper.make_graph([helper.make_node("Add", ["x", "z"], ["t"])], "then", [],
                             [vi("t", [2])])
    other = helper.make_graph([helper.make_node("Identity", ["x"], ["e"])], "else", [],
                              [vi("e", [2])])
    m = make_model([helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other),
                    helper.make_node("Relu", ["y"], ["z"])],
                   [("x", [2], F), ("c", [], B)], [("z", [2], F)])
    refused(analyze_file(tmp_path, m), "cycle")


def test_dangling_input(tmp_path):
    m = conv_relu()
    m.graph.node[1].input[0] = "nowhere"
    refused(analyze_file(tmp_path, m), "nowhere")


def test_graph_output_nobody_produces(tmp_path):
    m = conv_relu()
    m.graph.output[0].name = "ghost"
    refused(analyze_file(tmp_path, m), "ghost")


def test_tensor_defined_twice(tmp_path):
    m = conv_relu()
    m.graph.node.append(helper.make_node("Relu", ["c"], ["y"]))
    refused(analyze_file(tmp_path, m), "defined twice")


def test_missing_subgraph_and_mismatched_body(tmp_path):
    m = if_model()
    keep = [a for a in m.graph.node[0].attribute if a.name != "else_branch"]
    del m.graph.node[0].attribute[:]
    m.graph.node[0].attribute.extend(keep)
    refused(analyze_file(tmp_path, m), "else_branch")
    body = helper.make_graph([helper.make_node("Identity", ["c_in"], ["c_out"])], "body",
                             [vi("c_in", [], B)], [vi("c_out", [], B)])  # takes 1, needs 2
    m = make_model([helper.make_node("Loop", ["M", ""], [], body=body)], [("x", [1], F)],
                   [("x", [1], F)], initializers={"M": np.array(3, np.int64)})
    refused(analyze_file(tmp_path, m), "input")


@pytest.mark.parametrize("value", [[5, 1], "x", 0])
def test_scan_with_hostile_attributes(tmp_path, value):
    body = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "body",
                             [vi("x", [4])], [vi("y", [4])])
    node = helper.make_node("Scan", ["X"], ["Y"], body=body, num_scan_inputs=1)
    node.attribute.append(helper.make_attribute("scan_input_axes", value)
                          if not isinstance(value, int) else
                          helper.make_attribute("num_scan_inputs", 7))
    if isinstance(value, int):
        del node.attribute[1]  # keep only the bad num_scan_inputs
    m = make_model([node], [("X", [6, 4], F)], [("Y", None, F)])
    o = analyze_file(tmp_path, m)
    clean(o)
    assert o.code in (0, 2)


# ------------------------------------------------------------------------------- dims


@pytest.mark.parametrize("dim", [-3, 10**12, 2**63 - 1])
def test_absurd_input_dims(tmp_path, dim):
    m = conv_relu()
    m.graph.input[0].type.tensor_type.shape.dim[2].dim_value = dim
    refused(analyze_file(tmp_path, m), "invalid", str(dim))


@pytest.mark.parametrize("dim", [-4, 10**12])
def test_absurd_initializer_dims(tmp_path, dim):
    m = conv_relu()
    m.graph.initializer[0].dims[0] = dim
    refused(analyze_file(tmp_path, m, "--batch-size", "1"), "invalid shape")


@pytest.mark.parametrize("where", ["value_info", "output"])
@pytest.mark.parametrize("dim", [-6, 10**12])
def test_absurd_value_info_dims(tmp_path, where, dim):
    m = conv_relu()
    info = vi("c" if where == "value_info" else "y", [1, 4, dim, 6])
    if where == "value_info":
        m.graph.value_info.append(info)
    else:
        m.graph.output[0].CopyFrom(info)
    refused(analyze_file(tmp_path, m, "--batch-size", "1"), "invalid shape")


def test_absurd_dims_inside_a_subgraph(tmp_path):
    m = if_model()
    m.graph.node[0].attribute[0].g.initializer.append(
        onnx.numpy_helper.from_array(np.zeros(2, np.float32), "junk"))
    m.graph.node[0].attribute[0].g.initializer[0].dims[0] = 10**12
    refused(analyze_file(tmp_path, m), "invalid shape")


@pytest.mark.parametrize("args", [
    ("--dim", "N=1000000000000"), ("--dim", "N=-1"),
    ("--batch-size", "1000000000000"), ("--batch-size", "-2"), ("--loop-trips", "-1"),
    ("--dim", "N=12abc"), ("--dim", "nothing"),
])
def test_absurd_bindings(tmp_path, args):
    refused(analyze_file(tmp_path, conv_relu(), *args))


def test_huge_attribute_gives_an_invalid_shape(tmp_path):
    m = conv_relu()
    m.graph.node[0].attribute.append(helper.make_attribute("pads", [10**15] * 4))
    refused(analyze_file(tmp_path, m, "--batch-size", "1"), "invalid shape")


# ---------------------------------------------------------------------- external data


def external(location: str, **extra: str) -> onnx.ModelProto:
    m = conv_relu()
    t = m.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in {"location": location, **extra}.items():
        e = t.external_data.add()
        e.key, e.value = k, v
    return m


@pytest.mark.parametrize(("location", "words"), [
    ("../outside.bin", "escapes"),
    ("/dev/zero", "escapes"),
    ("/etc/passwd", "escapes"),
    ("zero", "outside"),          # a symlink to /dev/zero in the model's folder
    ("up/w.bin", "outside"),      # through a symlink to the parent folder
    ("fifo", "not a regular file"),
    ("dir", "not a regular file"),
    ("loop", "refused"),          # a symlink loop
    ("a\x00b", "not a file name"),
    ("x" * 5000, "not a file name"),
])
def test_external_data_outside_the_folder_or_at_devices(tmp_path, location, words):
    os.symlink("/dev/zero", tmp_path / "zero")
    os.symlink("..", tmp_path / "up")
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dir").mkdir()
    refused(analyze_file(tmp_path, external(location)), words)


@pytest.mark.parametrize("extra", [{"offset": "abc"}, {"offset": "-5"}, {"length": "1e3"},
                                   {"offset": "9" * 40}])
def test_external_data_with_bad_offsets(tmp_path, extra):
    refused(analyze_file(tmp_path, external("w.bin", **extra)), "byte count")


def test_small_external_tensor_in_a_fifo_does_not_hang(tmp_path):
    # A 2-element shape constant is read from its external file: a FIFO would block forever.
    m = make_model([helper.make_node("Reshape", ["x", "s"], ["y"])], [("x", [2, 3], F)],
                   initializers={"s": np.array([3, 2], np.int64)})
    t = m.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    e = t.external_data.add()
    e.key, e.value = "location", "fifo"
    os.mkfifo(tmp_path / "fifo")
    refused(analyze_file(tmp_path, m), "not a regular file")


def test_absent_external_file_is_fine(tmp_path):
    o = analyze_file(tmp_path, external("absent.bin"), "--batch-size", "1")
    assert o.code == 0 and problem(o) is None


# ---------------------------------------------------------------------------- nesting


def nested_ifs(depth: int) -> onnx.ModelProto:
    g = helper.make_graph([helper.make_node("Relu", ["x"], [f"y{depth}"])], "leaf", [],
                          [vi(f"y{depth}", [2])])
    for d in range(depth - 1, -1, -1):
        other = helper.make_graph([helper.make_node("Identity", ["x"], [f"e{d}"])], "else",
                                  [], [vi(f"e{d}", [2])])
        node = helper.make_node("If", ["c"], [f"y{d}"], then_branch=g, else_branch=other)
        g = helper.make_graph([node], f"level{d}", [], [vi(f"y{d}", [2])])
    return make_model(list(g.node), [("x", [2], F), ("c", [], B)], [("y0", [2], F)])


def test_nesting_past_the_limit(tmp_path):
    refused(analyze_file(tmp_path, nested_ifs(MAX_SUBGRAPH_DEPTH + 1)), "nested")
    o = analyze_file(tmp_path, nested_ifs(MAX_SUBGRAPH_DEPTH))
    assert o.code == 0 and problem(o) is None


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    def varint(n: int) -> bytes:
        out = bytearray()
        while n >= 0x80:
            out.append(n & 0x7F | 0x80)
            n >>= 7
        return bytes(out + bytes([n]))
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def test_nesting_past_what_protobuf_parses(tmp_path):
    # 60 levels of If, written by hand: protobuf's own builders refuse such depth.
    graph = _field(1, _field(4, b"Relu") + _field(1, b"x") + _field(2, b"y"))
    for _ in range(60):
        attr = _field(1, b"then_branch") + b"\xa0\x01\x05" + _field(6, graph)  # type GRAPH
        graph = _field(1, _field(4, b"If") + _field(1, b"c") + _field(2, b"y")
                       + _field(5, attr))
    model = b"\x08\x08" + _field(7, graph) + _field(8, b"\x10\x11")  # ir 8, opset 17
    refused(analyze_file(tmp_path, model))


# ----------------------------------------------------------------------------- opsets


def test_opset_from_the_future(tmp_path):
    m = conv_relu()
    m.opset_import[0].version = 10**6
    refused(analyze_file(tmp_path, m), "1000000")


@pytest.mark.parametrize("change", ["ml-future", "ir-future", "negative", "zero"])
def test_odd_opsets_never_crash(tmp_path, change):
    m = conv_relu()
    if change == "ml-future":
        m.opset_import.append(helper.make_opsetid("ai.onnx.ml", 999))
    elif change == "ir-future":
        m.ir_version = 99
    else:
        m.opset_import[0].version = -1 if change == "negative" else 0
    clean(analyze_file(tmp_path, m, "--batch-size", "1"))


# ------------------------------------------------------------------ rules and control flow


@register("Boom", domain="test.hostile")
def _boom(_facts):
    raise RuntimeError("a rule with a bug")


def test_a_rule_raising_leaves_the_node_unresolved():
    m = make_model([helper.make_node("Boom", ["x"], ["y"], domain="test.hostile")],
                   [("x", [2], F)], [("y", [2], F)], extra_opsets={"test.hostile": 1})
    a = onnx_energy.analyze(m)
    assert a.nodes[0].status == "unresolved"
    assert "RuntimeError" in a.unresolved[0].reason
    assert not a.totals.complete


def test_loop_with_absurd_or_negative_trip_counts(tmp_path):
    body = helper.make_graph(
        [helper.make_node("Identity", ["c_in"], ["c_out"]),
         helper.make_node("Relu", ["h"], ["h2"])], "body",
        [vi("i", [], I64), vi("c_in", [], B), vi("h", [4])], [vi("c_out", [], B), vi("h2", [4])])
    for m_value, flops in ((2**62, None), (-5, 0), (3, 12)):
        m = make_model([helper.make_node("Loop", ["M", "", "h0"], ["hf"], body=body)],
                       [("h0", [4], F)], [("hf", [4], F)],
                       initializers={"M": np.array(m_value, np.int64)})
        a = onnx_energy.analyze(m)
        assert a.nodes[0].flops == flops, m_value
        clean(analyze_file(tmp_path, m, "--strict"))
