"""Op specs, single-op models and mined configurations (onnx_energy.calibration)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import make_model, weights
from onnx import TensorProto, helper

from onnx_energy.analysis import analyze
from onnx_energy.calibration.build import build_model, check_model, spec_of_node
from onnx_energy.calibration.specs import (
    DEFAULT_COUNTS,
    FAMILIES,
    FAMILY_MAX_BYTES,
    FAMILY_MAX_MACS,
    GEMV_MAX_BYTES,
    MAX_BYTES,
    MAX_MACS,
    RANGES,
    VARIANTS,
    OpSpec,
    family_of,
    mine,
    random_specs,
    ranges_markdown,
)
from onnx_energy.measure.runner import Runner


def test_random_specs_are_seeded_and_families_independent() -> None:
    a = random_specs({"conv": 12, "gemm": 6}, seed=3, families=["conv", "gemm"])
    b = random_specs({"conv": 12, "gemm": 6}, seed=3, families=["conv", "gemm"])
    assert [s.key for s in a] == [s.key for s in b] and len(a) == 18
    assert [s.key for s in random_specs({"conv": 12}, seed=4, families=["conv"])] != \
        [s.key for s in a[:12]]
    # a family's specs do not depend on which other families are drawn
    assert [s.key for s in random_specs({"gemm": 6}, seed=3, families=["gemm"])] == \
        [s.key for s in a[12:]]
    # the default sweep: every family, deduplicated by key
    full = random_specs()
    assert {s.family for s in full} == set(FAMILIES)
    assert len({s.key for s in full}) == len(full) >= 0.95 * sum(DEFAULT_COUNTS.values())
    with pytest.raises(ValueError, match="unknown op families: convolution"):
        random_specs(families=["convolution"])


def _data(spec: OpSpec) -> list:
    return [t for t in spec.inputs if t is not None and not t.initializer]


def _within(value: int, family: str, param: str) -> bool:
    lo, hi = RANGES[family][param]
    return lo <= value <= hi


def test_random_specs_stay_in_their_ranges_and_under_the_caps() -> None:
    specs = random_specs(seed=1)
    for s in specs:
        x = _data(s)[0]
        if s.family in ("conv", "conv_depthwise", "conv_transpose", "pool", "global_pool"):
            n, c, h, w = x.shape
            seed_table = s.family == "conv" and n > RANGES["conv"]["batch"][1]
            table = "conv_seed" if seed_table else s.family
            assert _within(n, table, "batch"), s
            assert 1 <= h <= RANGES[table]["size"][1] and 1 <= w <= RANGES[table]["size"][1]
            if s.family == "conv_depthwise":
                assert s.attrs["group"] == c and _within(c, s.family, "channels")
        elif s.family == "gemm" and s.op_type == "Gemm":
            m, k = x.shape
            assert (_within(m, "gemm", "rows") and _within(k, "gemm", "in_features")) or (
                _within(m, "gemm", "gemv_rows") and _within(k, "gemm", "gemv_features"))
        elif s.family == "softmax":
            assert s.attrs == {"axis": -1}
        a = analyze(build_model(s))
        assert a.totals.complete, (s.label(), a.unsupported)
        assert a.totals.macs <= FAMILY_MAX_MACS.get(s.family, MAX_MACS)
        # the caps count every input, weight and output once, as the analysis does
        cap = GEMV_MAX_BYTES if s.op_type == "Gemm" else FAMILY_MAX_BYTES.get(s.family, MAX_BYTES)
        assert a.totals.bytes_read + a.totals.bytes_written <= cap * 1.01, s.label()


def _conv_out(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _hand_macs(s: OpSpec) -> int:
    """MACs by the textbook formulas, from the spec's shapes and attributes alone."""
    shapes = [t.shape for t in s.inputs if t is not None]
    if s.op_type == "Conv":
        (n, _, h, w), (co, cig, kh, kw) = shapes[0], shapes[1]
        st, pads = s.attrs["strides"], s.attrs["pads"]
        dil = s.attrs.get("dilations", [1, 1])
        ho = _conv_out(h, kh, st[0], pads[0], dil[0])
        wo = _conv_out(w, kw, st[1], pads[1], dil[1])
        return n * co * ho * wo * cig * kh * kw
    if s.op_type == "ConvTranspose":
        (n, ci, h, w), (_, co, kh, kw) = shapes[0], shapes[1]
        return n * ci * h * w * co * kh * kw
    if s.op_type == "Gemm":
        (m, k), (nn, _) = shapes[0], shapes[1]
        return m * k * nn
    if s.op_type == "MatMul":
        a, b = shapes[0], shapes[1]
        return math.prod(a[:-1]) * a[-1] * b[-1]
    return 0  # dot-convention MACs: none outside dot products


def test_every_variant_builds_a_model_onnxruntime_runs_with_the_hand_macs() -> None:
    counts = {f: len(VARIANTS[f]) for f in FAMILIES}  # one spec of every variant
    specs = random_specs(counts, seed=7)
    assert len(specs) == sum(counts.values())
    ops = {s.op_type for s in specs}
    assert {"Conv", "ConvTranspose", "Gemm", "MatMul", "MaxPool", "AveragePool",
            "GlobalAveragePool", "BatchNormalization", "LayerNormalization",
            "InstanceNormalization", "GroupNormalization", "Softmax", "Relu", "Sigmoid", "Tanh",
            "Gelu", "Erf", "HardSwish", "HardSigmoid", "Clip", "LeakyRelu", "Add", "Sub", "Mul",
            "Div", "Pow", "Sqrt", "Where", "Resize", "ReduceMean", "ReduceSum", "Concat",
            "Transpose", "Reshape", "Slice", "Gather", "Split", "Pad", "Expand"} <= ops
    convs = [s for s in specs if s.op_type == "Conv"]
    assert {s.attrs["kernel_shape"][0] for s in convs} >= {1, 3, 5, 7}
    assert any(s.attrs["strides"][0] == 2 for s in convs)
    assert any(1 < s.attrs.get("group", 1) < _data(s)[0].shape[1] for s in convs)  # grouped
    attention = [s for s in specs if s.op_type == "MatMul" and len(_data(s)) == 2]
    assert attention and all(len(t.shape) == 4 for s in attention for t in _data(s))
    for s in specs:
        model = build_model(s)
        check_model(model)
        runner = Runner(model)
        runner.run_once()  # onnxruntime runs it on the runner's seeded inputs
        a = analyze(model)
        assert a.totals.complete, s.label()
        assert a.totals.macs == _hand_macs(s), (s.label(), s.attrs)
        assert [n.op_type for n in a.nodes] == [s.op_type]


def test_spec_json_round_trips_and_keys_ignore_source() -> None:
    (s,) = random_specs({"resize": 1}, families=["resize"])
    back = OpSpec.from_json(s.to_json())
    assert back == s and back.key == s.key
    assert s.to_json()["inputs"][1] is None  # Resize's omitted roi
    mined = OpSpec.from_json(s.to_json(), source="mined")
    assert mined.key == s.key and mined.source == "mined"
    assert family_of("Conv", {"group": 32}, [(1, 32, 8, 8)]) == "conv_depthwise"
    assert family_of("Conv", {"group": 4}, [(1, 32, 8, 8)]) == "conv"
    assert family_of("Shape", {}) is None


def test_docs_hold_the_ranges_table() -> None:
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "calibration.md").read_text("utf-8")
    assert ranges_markdown() in doc


def _mining_model() -> object:
    n = helper.make_node
    f = TensorProto.FLOAT
    nodes = [
        n("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1],
          kernel_shape=[3, 3]),
        n("Relu", ["c1"], ["r1"], name="relu1"),
        n("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1],
          kernel_shape=[3, 3]),  # same configuration as conv1
        n("Relu", ["c2"], ["r2"], name="relu2"),  # same as relu1
        n("Conv", ["r2", "w3"], ["c3"], name="conv3", kernel_shape=[1, 1], strides=[2, 2]),
        n("Shape", ["c3"], ["shape"], name="shape"),
        n("Gather", ["shape", "zero"], ["batch"], name="gather", axis=0),
        n("Unsqueeze", ["batch", "axes"], ["batch1"], name="unsqueeze"),
        n("Concat", ["batch1", "minus1"], ["target"], name="concat", axis=0),
        n("Reshape", ["c3", "target"], ["y"], name="flatten"),
        n("Identity", ["w1"], ["w1copy"], name="weight_identity"),
    ]
    inits = {"w1": weights(8, 8, 3, 3), "b1": weights(8), "w2": weights(8, 8, 3, 3, seed=1),
             "b2": weights(8, seed=1), "w3": weights(16, 8, 1, 1),
             "zero": np.array(0, np.int64), "axes": np.array([0], np.int64),
             "minus1": np.array([-1], np.int64)}
    return make_model(nodes, [("x", [2, 8, 16, 16], f)], [("y", None, f)], inits)


def test_mined_specs_are_the_distinct_configurations(tmp_path) -> None:
    import onnx

    path = tmp_path / "m.onnx"
    onnx.save(_mining_model(), str(path))
    mined = mine([path])
    by_op = {}
    for s in mined.specs:
        by_op.setdefault(s.op_type, []).append(s)
    assert sorted(by_op) == ["Conv", "Relu", "Reshape"]
    assert len(by_op["Conv"]) == 2 and len(by_op["Relu"]) == 1  # conv1 == conv2
    assert all(s.source == "mined" for s in mined.specs)
    assert mined.nodes == {str(path): 6} and mined.folded == 5  # shape arithmetic, Identity
    (reshape,) = by_op["Reshape"]
    target = reshape.inputs[1]
    assert target is not None and target.initializer and target.value == (2, -1)
    conv3 = next(s for s in by_op["Conv"] if s.attrs["kernel_shape"] == [1, 1])
    assert [t is not None and t.initializer for t in conv3.inputs] == [False, True]
    assert conv3.family == "conv" and conv3.opset == 17
    # mined specs build models that run, with the same MACs as in the source model
    for s in mined.specs:
        Runner(build_model(s)).run_once()
    assert analyze(build_model(conv3)).totals.macs == 2 * 16 * 8 * 8 * 8


def test_spec_of_node_keeps_names_shapes_and_json_attributes() -> None:
    from onnx_energy.graph import Node, TensorInfo

    proto = helper.make_node("Conv", ["x", "w", ""], ["y"], name="c", kernel_shape=[3, 3],
                             auto_pad=b"NOTSET")
    node = Node.from_proto(proto, 0)
    spec = spec_of_node(node, [TensorInfo("x", (1, 3, 8, 8), "float32"),
                               TensorInfo("w", (4, 3, 3, 3), "float32"), None],
                        [TensorInfo("y", (1, 4, 6, 6), "float32")], initializers={"w"},
                        name=True)
    assert spec == {
        "op_type": "Conv", "domain": "", "opset": 17,
        "attrs": {"auto_pad": "NOTSET", "kernel_shape": [3, 3]},
        "inputs": [{"shape": [1, 3, 8, 8], "dtype": "float32"},
                   {"shape": [4, 3, 3, 3], "dtype": "float32", "initializer": True}],
        "outputs": [{"shape": [1, 4, 6, 6], "dtype": "float32"}], "name": "c"}


def test_widths_are_mostly_aligned_and_large_gemvs_leave_the_cache() -> None:
    specs = random_specs(seed=3)
    convs = [s for s in specs if s.family == "conv" and s.inputs[1] is not None
             and s.inputs[0] is not None and s.inputs[0].shape[0] <= RANGES["conv"]["batch"][1]]
    outs = [s.inputs[1].shape[0] for s in convs]  # type: ignore[union-attr]
    aligned = sum(1 for c in outs if c % 8 == 0) / len(outs)
    assert 0.6 <= aligned <= 0.95  # 3 in 4 rounded, plus the ones drawn on a multiple
    gemvs = [s for s in specs if s.op_type == "Gemm"
             and 4 * s.inputs[1].numel > MAX_BYTES]  # type: ignore[union-attr]
    assert gemvs, "no Linear beyond the byte cap"
    assert all(s.inputs[0].shape[0] <= 8 for s in gemvs)  # type: ignore[union-attr]
