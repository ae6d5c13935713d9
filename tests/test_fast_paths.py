"""The speed-ups of the passes give exactly what the general code they short-cut gives."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import make_model, weights
from onnx import AttributeProto, TensorProto, helper, numpy_helper

from onnx_energy import analyze
from onnx_energy.graph import (
    Node,
    TensorInfo,
    _attribute_value,
    tensor_info_from_value_info,
    tensor_to_array,
)


@pytest.mark.parametrize("array", [
    np.arange(6, dtype=np.int64).reshape(2, 3),
    np.array(3.5, np.float32),
    np.array([True, False]),
    np.zeros((0, 3), np.float16),
    np.array([1, 2], np.uint32),
    np.array([-1, 7], np.int8),
    np.array([[1.5]], np.float64),
], ids=lambda a: f"{a.dtype}{list(a.shape)}")
def test_tensor_to_array_matches_numpy_helper(array):
    t = numpy_helper.from_array(array, "t")
    fast, ref = tensor_to_array(t), numpy_helper.to_array(t)
    assert fast.dtype == ref.dtype and fast.shape == ref.shape
    assert np.array_equal(fast, ref) and fast.flags.writeable == ref.flags.writeable


def test_tensor_to_array_typed_fields_and_bad_payloads():
    t = helper.make_tensor("t", TensorProto.INT64, [3], [4, 5, 6])  # int64_data, not raw
    assert tensor_to_array(t).tolist() == [4, 5, 6]
    bad = TensorProto(name="b", data_type=TensorProto.FLOAT, dims=[4], raw_data=b"\0" * 12)
    with pytest.raises(ValueError):  # as numpy_helper.to_array: 3 floats do not fill [4]
        tensor_to_array(bad)
    with pytest.raises(ValueError):
        numpy_helper.to_array(bad)


@pytest.mark.parametrize("value", [
    3, -1, 2.5, [1, 2, 3], [0.5, 1.5], "same_upper", ["a", "b"],
    numpy_helper.from_array(np.ones(2, np.float32), "v"),
], ids=repr)
def test_attribute_fast_paths_match_onnx(value):
    attr = helper.make_attribute("a", value)
    got = _attribute_value(attr)
    ref = helper.get_attribute_value(attr)
    if isinstance(ref, bytes):
        ref = ref.decode()
    elif isinstance(ref, list) and ref and isinstance(ref[0], bytes):
        ref = [s.decode() for s in ref]
    assert got == ref and type(got) is type(ref)


def test_empty_ints_and_reference_attributes():
    empty = helper.make_attribute("a", [], attr_type=AttributeProto.INTS)
    assert _attribute_value(empty) == []
    ref = AttributeProto(name="a", type=AttributeProto.INT, ref_attr_name="outer")
    with pytest.raises(ValueError):  # a function's reference attribute has no value here
        _attribute_value(ref)


def test_node_from_proto_fields():
    proto = helper.make_node("Conv", ["x", "", "b"], ["y"], domain="ai.onnx", strides=[2, 2],
                             group=1)
    node = Node.from_proto(proto, 7)
    assert (node.name, node.domain, node.inputs, node.outputs) == ("Conv_7", "", ("x", "", "b"),
                                                                   ("y",))
    assert node.attrs == {"strides": [2, 2], "group": 1}


@pytest.mark.parametrize("vi, expected", [
    (helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, "seq", None]),
     TensorInfo("a", (1, "seq", None), "float32")),
    (helper.make_tensor_value_info("b", TensorProto.INT64, None), TensorInfo("b", None, "int64")),
    (helper.make_tensor_value_info("c", TensorProto.BOOL, []), TensorInfo("c", (), "bool")),
    (helper.make_tensor_sequence_value_info("d", TensorProto.FLOAT, [2]),
     TensorInfo("d", None, "")),
    (onnx.ValueInfoProto(name="e"), TensorInfo("e", None, "")),
], ids=list("abcde"))
def test_tensor_info_from_value_info(vi, expected):
    # Twice: the second answer comes from the per-type cache and must carry its own name.
    assert tensor_info_from_value_info(vi) == expected
    renamed = onnx.ValueInfoProto()
    renamed.CopyFrom(vi)
    renamed.name = "other"
    assert tensor_info_from_value_info(renamed) == TensorInfo("other", expected.shape,
                                                              expected.dtype)


def test_dim_param_empty_is_unknown():
    vi = helper.make_tensor_value_info("a", TensorProto.FLOAT, [4])
    vi.type.tensor_type.shape.dim[0].dim_param = ""
    assert tensor_info_from_value_info(vi).shape == (None,)


def test_torch_style_shape_subgraph_with_scalar_gather_folds():
    # Shape -> Gather(scalar index) -> Div -> Unsqueeze -> Concat -> Reshape, as torch exports
    # head splitting with dynamic axes. np.take with a scalar index gives a numpy scalar, which
    # must still count as a folded value, or every later MatMul stays unresolved.
    c = lambda name, v: helper.make_node(  # noqa: E731
        "Constant", [], [name], value=numpy_helper.from_array(np.array(v, np.int64)))
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("Shape", ["h"], ["s"]),
        c("i0", 0), c("i1", 1), c("i2", 2), c("heads", 4), c("ax", [0]), c("nh", [4]),
        helper.make_node("Gather", ["s", "i0"], ["b"], axis=0),
        helper.make_node("Gather", ["s", "i1"], ["t"], axis=0),
        helper.make_node("Gather", ["s", "i2"], ["d"], axis=0),
        helper.make_node("Div", ["d", "heads"], ["hd"]),
        helper.make_node("Unsqueeze", ["b", "ax"], ["bu"]),
        helper.make_node("Unsqueeze", ["t", "ax"], ["tu"]),
        helper.make_node("Unsqueeze", ["hd", "ax"], ["hdu"]),
        helper.make_node("Concat", ["bu", "tu", "nh", "hdu"], ["target"], axis=0),
        helper.make_node("Reshape", ["h", "target"], ["r"]),
        helper.make_node("Transpose", ["r"], ["q"], perm=[0, 2, 1, 3]),
        helper.make_node("Transpose", ["r"], ["k"], perm=[0, 2, 3, 1]),
        helper.make_node("MatMul", ["q", "k"], ["y"]),
    ]
    model = make_model(nodes, [("x", ["batch", "seq", 64], TensorProto.FLOAT)],
                       initializers={"w": weights(64, 64)})
    result = analyze(model, dims={"batch": 2, "seq": 10})
    assert result.totals.complete
    # x@w: 2*10*64*64; scores: 2 batches * 4 heads * 10x10 outputs * 16 deep.
    assert result.totals.macs == 2 * 10 * 64 * 64 + 2 * 4 * 10 * 10 * 16
