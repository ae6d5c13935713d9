"""Mutations of valid models for the hostile-input fuzzers (tests/test_fuzz.py, bench/fuzz_long.py).

`mutate` applies protobuf-level mutations (dims, op types, attribute values, input names,
opsets, initializers, external-data locations, subgraph nesting) and then byte-level ones
(bit flips, truncation, inserted bytes) to one of the `seed_models`. Every choice comes from
a `Chooser`, so hypothesis can drive (and shrink) it and a plain ``random.Random`` can too.
`run_cli` runs ``onnx-energy analyze`` in-process with a time limit and `problem` says what,
if anything, broke the contract: exit code 0, 2 or 3, one stderr line for exit 2, never a
traceback, an internal error or a hang.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import onnx
from onnx import AttributeProto, GraphProto, ModelProto, TensorProto, helper, numpy_helper

from onnx_energy.cli import main
from onnx_energy.examples import build_small_cnn

T = TypeVar("T")
F = TensorProto.FLOAT
B = TensorProto.BOOL
I64 = TensorProto.INT64


class Chooser:
    """Where mutations get their choices: ``integer(lo, hi)`` inclusive."""

    def __init__(self, integer: Callable[[int, int], int]) -> None:
        self.integer = integer

    def choice(self, seq: Sequence[T]) -> T:
        return seq[self.integer(0, len(seq) - 1)]

    def chance(self, n: int) -> bool:
        """True with probability 1/n."""
        return self.integer(0, n - 1) == 0


def hypothesis_chooser(data: Any) -> Chooser:
    from hypothesis import strategies as st

    return Chooser(lambda lo, hi: data.draw(st.integers(lo, hi)))


def random_chooser(rng: Any) -> Chooser:
    return Chooser(rng.randint)


# ---------------------------------------------------------------------------- the seeds


def _vi(name: str, shape: Any, elem: int = F) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


def _model(nodes: list, inputs: list, outputs: list, inits: dict[str, np.ndarray],
           functions: Sequence[onnx.FunctionProto] = (), extra: dict[str, int] | None = None
           ) -> ModelProto:
    graph = helper.make_graph(nodes, "seed", inputs, outputs,
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    opsets = [helper.make_opsetid("", 17)]
    opsets += [helper.make_opsetid(d, v) for d, v in (extra or {}).items()]
    m = helper.make_model(graph, opset_imports=opsets, functions=list(functions))
    m.ir_version = 8
    return m


def _w(*shape: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def _if_seed() -> ModelProto:
    then = helper.make_graph([helper.make_node("MatMul", ["x", "A"], ["t"])], "then", [],
                             [_vi("t", [2, 4])])
    other = helper.make_graph([helper.make_node("MatMul", ["x", "A"], ["e1"]),
                               helper.make_node("Relu", ["e1"], ["e2"])], "else", [],
                              [_vi("e2", [2, 4])])
    return _model([helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)],
                  [_vi("x", ["N", 3]), _vi("c", [], B)], [_vi("y", ["N", 4])], {"A": _w(3, 4)})


def _loop_seed() -> ModelProto:
    inner_then = helper.make_graph([helper.make_node("MatMul", ["h", "W"], ["t"])], "then", [],
                                   [_vi("t", [1, 3])])
    inner_else = helper.make_graph([helper.make_node("Identity", ["h"], ["e"])], "else", [],
                                   [_vi("e", [1, 3])])
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("If", ["c"], ["h_next"], then_branch=inner_then,
                          else_branch=inner_else),
         helper.make_node("Identity", ["h_next"], ["emit"])],
        "body", [_vi("i", [], I64), _vi("cond_in", [], B), _vi("h", [1, 3])],
        [_vi("cond_out", [], B), _vi("h_next", [1, 3]), _vi("emit", [1, 3])])
    return _model(
        [helper.make_node("Loop", ["M", "", "h0"], ["hf", "stacked"], body=body),
         helper.make_node("MatMul", ["stacked", "P"], ["y"])],
        [_vi("h0", [1, 3]), _vi("c", [], B)], [_vi("y", None)],
        {"W": _w(3, 3), "P": _w(3, 2), "M": np.array(4, np.int64)})


def _scan_seed() -> ModelProto:
    body = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"]),
         helper.make_node("Add", ["s", "y"], ["s2"])],
        "body", [_vi("s", [3]), _vi("x", [4])], [_vi("s2", [3]), _vi("y", [3])])
    return _model([helper.make_node("Scan", ["s0", "X"], ["sf", "ys"], body=body,
                                    num_scan_inputs=1)],
                  [_vi("s0", [3]), _vi("X", ["T", 4])], [_vi("ys", ["T", 3])], {"W": _w(4, 3)})


def _function_seed() -> ModelProto:
    dense = helper.make_function(
        "local", "Dense", ["a", "w"], ["b"],
        [helper.make_node("MatMul", ["a", "w"], ["t"]), helper.make_node("Relu", ["t"], ["b"])],
        [helper.make_opsetid("", 17)])
    return _model([helper.make_node("Dense", ["x", "w1"], ["h"], domain="local"),
                   helper.make_node("Dense", ["h", "w2"], ["y"], domain="local")],
                  [_vi("x", ["N", 3])], [_vi("y", ["N", 5])], {"w1": _w(3, 4), "w2": _w(4, 5)},
                  functions=[dense], extra={"local": 1})


def _shape_chain_seed() -> ModelProto:
    # Shape -> Gather -> Concat -> Reshape, then a Softmax: a folded shape subgraph.
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "i0"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]),
             helper.make_node("Concat", ["n1", "tail"], ["target"], axis=0),
             helper.make_node("Reshape", ["x", "target"], ["r"]),
             helper.make_node("MatMul", ["r", "W"], ["m"]),
             helper.make_node("Softmax", ["m"], ["y"], axis=-1)]
    return _model(nodes, [_vi("x", ["B", 4, 6])], [_vi("y", None)],
                  {"i0": np.array(0, np.int64), "ax": np.array([0], np.int64),
                   "tail": np.array([-1], np.int64), "W": _w(24, 8)})


def _external_seed() -> ModelProto:
    # A Gemm whose weight lives in "w.bin" (absent or present, never read: 4096 elements).
    m = _model([helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)], [_vi("x", ["N", 64])],
               [_vi("y", ["N", 64])], {"w": _w(64, 64)})
    t = m.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "w.bin"), ("offset", "0"), ("length", str(64 * 64 * 4))):
        e = t.external_data.add()
        e.key, e.value = k, v
    return m


def seed_models() -> list[tuple[str, ModelProto]]:
    return [("cnn", build_small_cnn()), ("if", _if_seed()), ("loop", _loop_seed()),
            ("scan", _scan_seed()), ("function", _function_seed()),
            ("shape-chain", _shape_chain_seed()), ("external", _external_seed())]


# ------------------------------------------------------------------------- the mutations

DIMS = [-1, -7, 0, 1, 2, 3, 64, 10**12, 2**40, 2**62, 2**63 - 1]
INTS = [-2**63, -2**31, -100, -3, -1, 0, 1, 2, 3, 5, 64, 2**31 - 1, 2**40, 2**63 - 1]
FLOATS = [float("nan"), float("inf"), -float("inf"), -1.0, 0.0, 0.5, 1e30]
OPS = ["Conv", "MatMul", "Gemm", "Relu", "Add", "Reshape", "Transpose", "Concat", "Gather",
       "Slice", "Softmax", "If", "Loop", "Scan", "Einsum", "Expand", "Range", "Resize",
       "ConstantOfShape", "Tile", "Pad", "MaxPool", "ReduceSum", "Cast", "Split", "TopK",
       "NonMaxSuppression", "LSTM", "Attention", "", "NoSuchOp", "Shape", "Squeeze",
       "Unsqueeze", "Where", "ScatterND", "Dense", "BatchNormalization", "Constant"]
DOMAINS = ["", "ai.onnx", "com.microsoft", "local", "nowhere", "ai.onnx.ml"]
ATTR_NAMES = ["axis", "axes", "perm", "kernel_shape", "strides", "pads", "dilations", "group",
              "to", "keepdims", "num_scan_inputs", "scan_input_axes", "transB", "equation",
              "value", "body", "then_branch", "num_heads", "mode", "split"]
LOCATIONS = ["w.bin", "../w.bin", "/dev/zero", "zero", "fifo", "dir", "up/w.bin", "a\x00b",
             "x" * 5000, "", "missing.bin"]
EXTERNAL_NUMBERS = ["0", "-1", "abc", "99999999999", "1" * 40, "4"]
OPSET_VERSIONS = [-1, 0, 1, 7, 9, 11, 13, 21, 10**6, 2**62]
ELEM_TYPES = list(range(0, 26)) + [99]


def _graphs(graph: GraphProto) -> list[GraphProto]:
    out = [graph]
    for node in graph.node:
        for a in node.attribute:
            if a.type == AttributeProto.GRAPH:
                out.extend(_graphs(a.g))
            elif a.type == AttributeProto.GRAPHS:
                for g in a.graphs:
                    out.extend(_graphs(g))
    return out


def _names(graph: GraphProto) -> list[str]:
    names = [vi.name for vi in graph.input] + [t.name for t in graph.initializer]
    for node in graph.node:
        names.extend(node.output)
    return names or ["x"]


def _value_infos(graph: GraphProto) -> list[onnx.ValueInfoProto]:
    return [*graph.input, *graph.output, *graph.value_info]


def _mutate_dim(m: ModelProto, ch: Chooser) -> str:
    g = ch.choice(_graphs(m.graph))
    if g.initializer and ch.chance(3):
        t = ch.choice(list(g.initializer))
        if t.dims:
            i = ch.integer(0, len(t.dims) - 1)
            t.dims[i] = ch.choice(DIMS)
            return f"initializer {t.name} dim {i}"
    vis = [vi for vi in _value_infos(g) if vi.type.tensor_type.shape.dim]
    if not vis:
        return "dim: none"
    vi = ch.choice(vis)
    dims = vi.type.tensor_type.shape.dim
    d = dims[ch.integer(0, len(dims) - 1)]
    if ch.chance(4):
        d.dim_param = ch.choice(["N", "T", "", "B", "weird name"])
    else:
        d.dim_value = ch.choice(DIMS)
    return f"dim of {vi.name}"


def _mutate_op(m: ModelProto, ch: Chooser) -> str:
    g = ch.choice(_graphs(m.graph))
    if not g.node:
        return "op: none"
    node = ch.choice(list(g.node))
    if ch.chance(4):
        node.domain = ch.choice(DOMAINS)
    else:
        node.op_type = ch.choice(OPS)
    return f"op {node.op_type}"


def _random_attribute(ch: Chooser, name: str, graph: GraphProto) -> AttributeProto:
    kind = ch.integer(0, 6)
    if kind == 0:
        return helper.make_attribute(name, ch.choice(INTS))
    if kind == 1:
        return helper.make_attribute(name, [ch.choice(INTS) for _ in range(ch.integer(0, 5))])
    if kind == 2:
        return helper.make_attribute(name, ch.choice(FLOATS))
    if kind == 3:
        return helper.make_attribute(name, ch.choice(["", "a->b", "ij,jk->ik", "linear", "\xff"]))
    if kind == 4:
        return helper.make_attribute(name, numpy_helper.from_array(
            np.array([ch.choice(INTS)] * ch.integer(0, 3), np.int64)))
    if kind == 5:
        return helper.make_attribute(name, graph)  # a graph attribute: more nesting
    a = helper.make_attribute(name, 1)
    a.type = ch.choice([0, AttributeProto.GRAPH, AttributeProto.TENSOR, AttributeProto.STRINGS])
    return a


def _mutate_attribute(m: ModelProto, ch: Chooser) -> str:
    g = ch.choice(_graphs(m.graph))
    if not g.node:
        return "attribute: none"
    node = ch.choice(list(g.node))
    small = helper.make_graph([helper.make_node("Relu", ["x"], ["q"])], "small", [],
                              [_vi("q", None)])
    if node.attribute and ch.chance(3):
        i = ch.integer(0, len(node.attribute) - 1)
        del node.attribute[i]
        return f"attribute deleted from {node.op_type}"
    name = ch.choice([a.name for a in node.attribute] + ATTR_NAMES)
    keep = [a for a in node.attribute if a.name != name]
    del node.attribute[:]
    node.attribute.extend(keep)
    node.attribute.append(_random_attribute(ch, name, small))
    return f"attribute {name} of {node.op_type}"


def _mutate_input(m: ModelProto, ch: Chooser) -> str:
    g = ch.choice(_graphs(m.graph))
    if not g.node:
        return "input: none"
    node = ch.choice(list(g.node))
    names = _names(g) + ["", "ghost", *node.output]
    if node.input and not ch.chance(4):
        node.input[ch.integer(0, len(node.input) - 1)] = ch.choice(names)
    elif ch.chance(2):
        node.input.append(ch.choice(names))
    elif node.output:
        node.output[ch.integer(0, len(node.output) - 1)] = ch.choice(names)
    return f"inputs of {node.op_type}"


def _mutate_graph(m: ModelProto, ch: Chooser) -> str:
    g = ch.choice(_graphs(m.graph))
    what = ch.integer(0, 4)
    if what == 0 and g.node:
        del g.node[ch.integer(0, len(g.node) - 1)]
        return "node removed"
    if what == 1 and g.node:
        g.node.append(ch.choice(list(g.node)))
        return "node duplicated"
    if what == 2 and len(g.node) > 1:
        nodes = list(g.node)
        i, j = ch.integer(0, len(nodes) - 1), ch.integer(0, len(nodes) - 1)
        nodes[i], nodes[j] = nodes[j], nodes[i]
        del g.node[:]
        g.node.extend(nodes)
        return "nodes swapped"
    if what == 3 and g.input:
        del g.input[ch.integer(0, len(g.input) - 1)]
        return "input removed"
    if g.output:
        del g.output[ch.integer(0, len(g.output) - 1)]
    return "output removed"


def _mutate_nesting(m: ModelProto, ch: Chooser) -> str:
    """Wrap the main graph's nodes into Ifs, ``depth`` levels deep."""
    depth = ch.choice([1, 2, 5, 24, 25, 30, 40])
    nodes = list(m.graph.node)
    outs = [vi.name for vi in m.graph.output] or ["y"]
    inner = helper.make_graph(nodes, "nested", [], [_vi(o, None) for o in outs])
    source = m.graph.input[0].name if m.graph.input else "x"
    try:
        for d in range(depth):
            alt = [f"else{d}_{i}" for i in range(len(outs))]
            other = helper.make_graph(
                [helper.make_node("Identity", [source], [a]) for a in alt], "else", [],
                [_vi(a, None) for a in alt])
            node = helper.make_node("If", ["cond_in"], outs, then_branch=inner,
                                    else_branch=other)
            inner = helper.make_graph([node], f"level{d}", [], [_vi(o, None) for o in outs])
        del m.graph.node[:]
        m.graph.node.extend(inner.node)
    except Exception:  # deeper than the protobuf library allows to build
        return "nesting refused by protobuf"
    m.graph.input.append(_vi("cond_in", [], B))
    return f"nested {depth} deep"


def _mutate_opset(m: ModelProto, ch: Chooser) -> str:
    if ch.chance(3):
        m.ir_version = ch.choice([0, 1, 3, 7, 10, 99, -1])
        return "ir_version"
    if m.opset_import:
        imp = ch.choice(list(m.opset_import))
        imp.version = ch.choice(OPSET_VERSIONS)
        if ch.chance(3):
            imp.domain = ch.choice(DOMAINS)
    return "opset"


def _mutate_initializer(m: ModelProto, ch: Chooser) -> str:
    g = ch.choice(_graphs(m.graph))
    if not g.initializer:
        return "initializer: none"
    t = ch.choice(list(g.initializer))
    what = ch.integer(0, 4)
    if what == 0:
        t.data_type = ch.choice(ELEM_TYPES)
    elif what == 1 and t.raw_data:
        t.raw_data = t.raw_data[: ch.integer(0, len(t.raw_data))]
    elif what == 2:
        t.ClearField("raw_data")
        del t.float_data[:]
        del t.int64_data[:]
        t.data_location = TensorProto.EXTERNAL
        del t.external_data[:]
        for key in ("location", "offset", "length"):
            if key == "location" or ch.chance(2):
                e = t.external_data.add()
                e.key = key
                e.value = (ch.choice(LOCATIONS) if key == "location"
                           else ch.choice(EXTERNAL_NUMBERS))
    elif what == 3 and t.data_type == I64:
        values = numpy_helper.to_array(t).copy().reshape(-1)
        if values.size:
            values[ch.integer(0, values.size - 1)] = ch.choice(INTS)
            t.CopyFrom(numpy_helper.from_array(values.reshape(tuple(t.dims)), t.name))
    else:
        t.name = ch.choice(_names(g) + ["", "ghost"])
    return f"initializer {t.name}"


def _mutate_elem_type(m: ModelProto, ch: Chooser) -> str:
    g = ch.choice(_graphs(m.graph))
    vis = _value_infos(g)
    if not vis:
        return "elem_type: none"
    vi = ch.choice(vis)
    vi.type.tensor_type.elem_type = ch.choice(ELEM_TYPES)
    return f"elem_type of {vi.name}"


def _mutate_function(m: ModelProto, ch: Chooser) -> str:
    if not m.functions:
        return "function: none"
    f = ch.choice(list(m.functions))
    if f.node and ch.chance(2):
        node = ch.choice(list(f.node))
        node.op_type = ch.choice(OPS + [f.name])
        node.domain = ch.choice(["", f.domain])
        return "function body op"
    if ch.chance(2):
        f.name = ch.choice(["Other", "", f.name])
        return "function renamed"
    f.input.append("extra")
    return "function input added"


MUTATIONS: list[Callable[[ModelProto, Chooser], str]] = [
    _mutate_dim, _mutate_op, _mutate_attribute, _mutate_input, _mutate_graph, _mutate_nesting,
    _mutate_opset, _mutate_initializer, _mutate_elem_type, _mutate_function,
]


def mutate(seed: ModelProto, ch: Chooser) -> tuple[bytes, list[str]]:
    """Mutated serialized bytes of ``seed`` and a description of what was done."""
    m = ModelProto()
    m.CopyFrom(seed)
    log: list[str] = []
    for _ in range(ch.integer(0, 3)):
        try:
            log.append(ch.choice(MUTATIONS)(m, ch))
        except Exception as exc:  # protobuf refused the mutation itself
            log.append(f"mutation refused: {exc}")
    try:
        data = m.SerializeToString()
    except Exception as exc:  # e.g. nested deeper than protobuf can serialize
        log.append(f"serialize refused: {exc}")
        data = seed.SerializeToString()
    how = ch.integer(0, 5)
    if how == 1 and data:
        buf = bytearray(data)
        for _ in range(ch.integer(1, 8)):
            buf[ch.integer(0, len(buf) - 1)] ^= 1 << ch.integer(0, 7)
        data = bytes(buf)
        log.append("bits flipped")
    elif how == 2:
        data = data[: ch.integer(0, len(data))]
        log.append(f"truncated to {len(data)}")
    elif how == 3 and data:
        at = ch.integer(0, len(data))
        junk = bytes(ch.integer(0, 255) for _ in range(ch.integer(1, 16)))
        data = data[:at] + junk + data[at:]
        log.append("bytes inserted")
    return data, log


# ------------------------------------------------------------------------------ running


def prepare_folder(folder: Path) -> None:
    """The neighbours a fuzzed model's external data may point at."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "w.bin").write_bytes(b"\0" * (64 * 64 * 4))
    (folder / "dir").mkdir(exist_ok=True)
    for name, target in (("zero", "/dev/zero"), ("up", "..")):
        if not (folder / name).is_symlink():
            os.symlink(target, folder / name)
    if not (folder / "fifo").exists():
        os.mkfifo(folder / "fifo")


def options(ch: Chooser) -> list[str]:
    """Random but valid-looking command-line options."""
    args = ["--format", ch.choice(["table", "json", "csv"])]
    if ch.chance(2):
        args += ["--batch-size", str(ch.choice([1, 2, 8]))]
    if ch.chance(3):
        args += ["--dim", f"{ch.choice(['N', 'T', 'B', 'batch', 'zzz'])}="
                          f"{ch.choice([1, 3, 10**12, -4, 0])}"]
    if ch.chance(3):
        args += ["--loop-trips", str(ch.choice([0, 3, 2**40]))]
    if ch.chance(4):
        args += ["--branch", ch.choice(["then", "else"])]
    if ch.chance(4):
        args.append("--strict")
    return args


class Hang(BaseException):
    """The analysis ran past its time limit (BaseException: the CLI must not catch it)."""


@dataclass
class Outcome:
    code: int
    out: str
    err: str
    seconds: float


def run_cli(path: Path, args: Sequence[str], limit_s: float = 10.0) -> Outcome:
    """``onnx-energy analyze PATH ARGS`` in this process; raises Hang past ``limit_s``."""
    out, err = io.StringIO(), io.StringIO()

    def alarm(_signum: int, _frame: Any) -> None:
        raise Hang(f"analysis of {path} ran past {limit_s} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, limit_s)
    start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["analyze", str(path), *args])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    return Outcome(code, out.getvalue(), err.getvalue(), time.perf_counter() - start)


def problem(o: Outcome) -> str | None:
    """What breaks the hostile-input contract in an outcome, or None."""
    if o.code not in (0, 2, 3):
        return f"exit code {o.code}: {o.err.strip()[-300:]}"
    if "Traceback" in o.err or "internal error" in o.err:
        return f"crash: {o.err.strip()[-300:]}"
    if o.code == 2 and (o.err.count("\n") != 1 or not o.err.startswith("onnx-energy")):
        return f"exit 2 without exactly one stderr line: {o.err!r}"
    return None
