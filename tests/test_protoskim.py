"""The wire-format skimmer: models read without their large initializer payloads."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
from conftest import make_model, weights
from google.protobuf.message import DecodeError
from onnx import TensorProto, helper, numpy_helper

from onnx_energy import analyze
from onnx_energy.errors import ModelLoadError
from onnx_energy.graph import SMALL_TENSOR_ELEMENTS, load_model
from onnx_energy.protoskim import CORRUPT, WireFormatError, read_model, skim_bytes

PAYLOAD = ("raw_data", "float_data", "int32_data", "string_data", "int64_data", "double_data",
           "uint64_data")


def without_payloads(model: onnx.ModelProto, limit: int) -> onnx.ModelProto:
    """What the skimmer must give: ``model`` with the payload fields of the top graph's
    initializer / sparse-initializer tensors above ``limit`` elements cleared."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    tensors = list(out.graph.initializer)
    for st in out.graph.sparse_initializer:
        tensors += [st.values, st.indices]
    for t in tensors:
        if math.prod(t.dims) > limit:
            for f in PAYLOAD:
                t.ClearField(f)
    return out


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (all field numbers here are < 16)."""
    return bytes([number << 3 | 2]) + encode_varint(len(payload)) + payload


def encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def rich_model() -> onnx.ModelProto:
    """Every place a tensor can sit: big and small initializers (raw and typed fields), a
    sparse initializer, an external one, a big Constant attribute and a subgraph initializer."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])
    big_sub = numpy_helper.from_array(weights(40, 40, seed=3), "sub_w")
    then_g = helper.make_graph([helper.make_node("Identity", ["sub_w"], ["t"])], "then", [],
                               [helper.make_tensor_value_info("t", TensorProto.FLOAT, [40, 40])],
                               [big_sub])
    else_g = helper.make_graph([helper.make_node("Identity", ["sub_w"], ["e"])], "else", [],
                               [helper.make_tensor_value_info("e", TensorProto.FLOAT, [40, 40])])
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["r"]),
        helper.make_node("MatMul", ["r", "w"], ["y"]),
        helper.make_node("Constant", [], ["c"],
                         value=numpy_helper.from_array(weights(50, 50, seed=4), "cv")),
        helper.make_node("If", ["cond"], ["z"], then_branch=then_g, else_branch=else_g),
    ]
    inits = [
        numpy_helper.from_array(np.array([2, 32], np.int64), "shape"),
        numpy_helper.from_array(weights(32, 48, seed=1), "w"),  # 1536 elements, raw_data
        helper.make_tensor("typed", TensorProto.INT64, [2000], list(range(2000))),  # int64_data
        helper.make_tensor("floats", TensorProto.FLOAT, [3, 500], [0.5] * 1500),  # float_data
        helper.make_tensor("doubles", TensorProto.DOUBLE, [1100], [1.0] * 1100),
        helper.make_tensor("strings", TensorProto.STRING, [1030], [b"ab"] * 1030),
        numpy_helper.from_array(np.array(True), "cond"),
        numpy_helper.from_array(weights(SMALL_TENSOR_ELEMENTS, seed=5), "edge_keep"),
        numpy_helper.from_array(weights(SMALL_TENSOR_ELEMENTS + 1, seed=6), "edge_drop"),
    ]
    ext = TensorProto(name="ext", data_type=TensorProto.FLOAT, dims=[64, 64],
                      data_location=TensorProto.EXTERNAL)
    for k, v in (("location", "w.bin"), ("offset", "0"), ("length", str(64 * 64 * 4))):
        e = ext.external_data.add()
        e.key, e.value = k, v
    inits.append(ext)
    inits[1].doc_string = "a weight"
    sparse = helper.make_sparse_tensor(
        numpy_helper.from_array(weights(1200, seed=7), "sp"),
        numpy_helper.from_array(np.arange(0, 2400, 2, dtype=np.int64), "sp_idx"), [2400])
    graph = helper.make_graph(nodes, "rich", [x],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 48])],
                              inits, doc_string="the graph", sparse_initializer=[sparse])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="test")
    helper.set_model_props(model, {"author": "me"})
    model.ir_version = 8
    return model


def test_skimmed_model_equals_original_without_payloads(tmp_path):
    model = rich_model()
    path = tmp_path / "rich.onnx"
    path.write_bytes(model.SerializeToString())
    skimmed = read_model(path, SMALL_TENSOR_ELEMENTS)
    assert skimmed == without_payloads(model, SMALL_TENSOR_ELEMENTS)
    inits = {t.name: t for t in skimmed.graph.initializer}
    # Large payloads are gone, headers stay.
    assert not inits["w"].HasField("raw_data") and list(inits["w"].dims) == [32, 48]
    assert inits["w"].doc_string == "a weight"
    assert not inits["typed"].int64_data and not inits["floats"].float_data
    assert not inits["doubles"].double_data and not inits["strings"].string_data
    assert not skimmed.graph.sparse_initializer[0].values.HasField("raw_data")
    assert not inits["edge_drop"].HasField("raw_data")
    # The Constant attribute and the subgraph initializer are copied verbatim.
    assert skimmed.graph.node[2] == model.graph.node[2]
    assert skimmed.graph.node[3] == model.graph.node[3]
    assert model.ByteSize() - skimmed.ByteSize() > 40_000  # the dropped payload bytes


def test_small_tensors_keep_their_data(tmp_path):
    model = rich_model()
    path = tmp_path / "rich.onnx"
    path.write_bytes(model.SerializeToString())
    inits = {t.name: t for t in read_model(path, SMALL_TENSOR_ELEMENTS).graph.initializer}
    assert numpy_helper.to_array(inits["shape"]).tolist() == [2, 32]
    assert bool(numpy_helper.to_array(inits["cond"])) is True
    edge = numpy_helper.to_array(inits["edge_keep"])  # exactly at the threshold: kept
    assert np.array_equal(edge, weights(SMALL_TENSOR_ELEMENTS, seed=5))


def test_nothing_to_skim_gives_the_same_bytes():
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", [1, 4], 1)],
                       initializers={"k": np.ones(3, np.float32)})
    data = model.SerializeToString()
    assert skim_bytes(data, SMALL_TENSOR_ELEMENTS) == data


def test_field_order_and_packed_dims_do_not_matter():
    # raw_data before dims, and dims packed: still a 40x40 tensor, still skimmed.
    raw = weights(40, 40).tobytes()
    packed_dims = field(1, encode_varint(40) * 2)
    tensor = field(9, raw) + packed_dims + bytes([2 << 3]) + b"\x01" + field(8, b"w")
    graph = field(5, tensor) + field(2, b"g")
    data = bytes([1 << 3]) + b"\x08" + field(7, graph)
    parsed = onnx.ModelProto()
    parsed.ParseFromString(skim_bytes(data, SMALL_TENSOR_ELEMENTS))
    t = parsed.graph.initializer[0]
    assert (list(t.dims), t.data_type, t.name, t.raw_data) == ([40, 40], 1, "w", b"")
    assert parsed.graph.name == "g" and parsed.ir_version == 8


def test_graph_field_repeated_is_merged_like_protobuf():
    # Two occurrences of ModelProto.graph merge: both initializers survive, both skimmed.
    t1 = numpy_helper.from_array(weights(2000, seed=1), "a").SerializeToString()
    t2 = numpy_helper.from_array(weights(3, seed=2), "b").SerializeToString()
    data = field(7, field(5, t1)) + field(7, field(5, t2))
    parsed = onnx.ModelProto()
    parsed.ParseFromString(skim_bytes(data, SMALL_TENSOR_ELEMENTS))
    a, b = parsed.graph.initializer
    assert (a.name, a.raw_data, b.name) == ("a", b"", "b")
    assert np.array_equal(numpy_helper.to_array(b), weights(3, seed=2))


def test_skipped_initializer_analyses_like_the_proto_api(tmp_path):
    model = rich_model()
    # Only the Reshape + MatMul part, whose MACs need the small shape constant.
    del model.graph.node[2:]
    path = tmp_path / "mm.onnx"
    path.write_bytes(model.SerializeToString())
    from_file = analyze(path)
    from_proto = analyze(model)
    assert from_file.totals.macs == from_proto.totals.macs == 2 * 32 * 48
    assert from_file.totals.complete and from_proto.totals.complete
    a, b = from_file.to_dict(), from_proto.to_dict()
    a.pop("model"), b.pop("model")
    assert a == b


def test_skimmed_initializers_are_detached_never_valued(tmp_path):
    model = rich_model()
    path = tmp_path / "rich.onnx"
    path.write_bytes(model.SerializeToString())
    loaded = load_model(path)
    kept = {t.name for t in loaded.proto.graph.initializer}
    assert {"w", "typed", "floats", "edge_drop", "ext", "sp"}.isdisjoint(kept)
    assert {"shape", "cond", "edge_keep"} <= kept
    inputs = {vi.name: vi for vi in loaded.proto.graph.input}
    assert [d.dim_value for d in inputs["w"].type.tensor_type.shape.dim] == [32, 48]
    assert loaded.weights["w"].shape == (32, 48) and loaded.weights["sp"].shape == (2400,)


# ------------------------------------------------------------------------ corrupt bytes


def big_model_bytes() -> bytes:
    return make_model([helper.make_node("MatMul", ["x", "w"], ["y"])], [("x", [1, 64], 1)],
                      initializers={"w": weights(64, 40)}).SerializeToString()


def test_truncated_files_give_a_load_error(tmp_path):
    data = big_model_bytes()
    path = tmp_path / "cut.onnx"
    cuts = [*range(1, 120), *range(120, len(data) - 200, 211), *range(len(data) - 200, len(data))]
    for cut in cuts:
        path.write_bytes(data[:cut])
        with pytest.raises(ModelLoadError):
            load_model(path)


@pytest.mark.parametrize("data", [
    b"\x3a\xff\xff\xff\xff\x07",  # graph field declaring a 2 GB length in a 6-byte file
    b"\x3a\x05\x2a\x10\x0a\x01",  # initializer longer than its graph
    b"\x3a\x04\x2a\x02\x4f\x00",  # initializer holding a field of wire type 7
    b"\x3a\x03\x2a\x01\x80",  # a varint cut short inside an initializer
    b"\x0f\x00",  # top-level field of wire type 7
    b"\x0c",  # an end-group with no start
    b"\x3a\x02\x00\x00",  # field number 0 inside the graph
    b"\x08" + b"\xff" * 11,  # a varint longer than 10 bytes
])
def test_corrupt_wire_format_gives_the_protobuf_error(tmp_path, data):
    path = tmp_path / "bad.onnx"
    path.write_bytes(data)
    with pytest.raises(ModelLoadError, match="protobuf parse failed") as info:
        read_model(path, SMALL_TENSOR_ELEMENTS)
    assert CORRUPT in str(info.value) and "\n" not in str(info.value)


def test_corruption_outside_the_walked_fields_is_caught_by_protobuf(tmp_path):
    # A node (copied verbatim) whose bytes are garbage: upb rejects the reduced bytes.
    data = field(7, field(1, b"\x0a\x05ab"))
    path = tmp_path / "bad.onnx"
    path.write_bytes(data)
    with pytest.raises(ModelLoadError, match="protobuf parse failed"):
        read_model(path, SMALL_TENSOR_ELEMENTS)


def test_read_model_without_mmap_gives_the_same_model(tmp_path, monkeypatch):
    import mmap

    model = rich_model()
    path = tmp_path / "rich.onnx"
    path.write_bytes(model.SerializeToString())

    def no_mmap(*args, **kwargs):
        raise OSError(19, "No such device")  # what a file system without mmap answers

    monkeypatch.setattr(mmap, "mmap", no_mmap)
    assert read_model(path, SMALL_TENSOR_ELEMENTS) == without_payloads(model,
                                                                       SMALL_TENSOR_ELEMENTS)


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    assert read_model(empty, SMALL_TENSOR_ELEMENTS) == onnx.ModelProto()
    with pytest.raises(ModelLoadError, match="cannot read"):
        read_model(tmp_path / "missing.onnx", SMALL_TENSOR_ELEMENTS)


def test_random_byte_damage_is_judged_like_protobuf(tmp_path):
    # Flip, cut or insert bytes anywhere: the skimmer accepts exactly what protobuf accepts,
    # and what it accepts is protobuf's parse minus the large payloads.
    import random

    data = rich_model().SerializeToString()
    rng = random.Random(7)
    path = tmp_path / "damaged.onnx"
    for _ in range(1500):
        b = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(b))
            kind = rng.randrange(3)
            if kind == 0:
                b[i] ^= 1 << rng.randrange(8)
            elif kind == 1:
                del b[i:]
            else:
                b[i:i] = bytes([rng.randrange(256)])
        if not b:
            continue
        path.write_bytes(bytes(b))
        full = onnx.ModelProto()
        try:
            full.ParseFromString(bytes(b))
        except Exception:
            with pytest.raises(ModelLoadError):
                read_model(path, SMALL_TENSOR_ELEMENTS)
            continue
        assert read_model(path, SMALL_TENSOR_ELEMENTS) == without_payloads(
            full, SMALL_TENSOR_ELEMENTS)



def big_tensor_with(payload: bytes) -> bytes:
    """A model whose one initializer is a 40x40 float tensor with ``payload`` fields."""
    tensor = field(1, encode_varint(40) * 2) + bytes([2 << 3, 1]) + field(8, b"w") + payload
    return bytes([1 << 3, 8]) + field(7, field(5, tensor))


@pytest.mark.parametrize("payload, protobuf_accepts", [
    (field(4, b"\0" * 6400), True),  # packed float_data, 1600 floats
    (field(4, b"\0" * 6401), False),  # not a whole number of floats
    (field(10, b"\0" * 12), False),  # not a whole number of doubles
    (field(7, b"\x01\x81"), False),  # packed int64_data cut inside a varint
    (field(7, b"\xff" * 10 + b"\x01"), False),  # an 11-byte varint
    (field(7, b"\xff" * 9 + b"\x01"), True),  # 10 bytes is the limit
    (bytes([7 << 3]) + b"\xff" * 9 + b"\x7f", True),  # unpacked int64_data
    (bytes([4 << 3 | 5]) + b"\0\0\0", False),  # an unpacked float cut short
], ids=["floats", "floats-6401", "doubles-12", "varint-cut", "varint-11", "varint-10",
        "unpacked-int64", "unpacked-float-cut"])
def test_dropped_payloads_are_checked_like_protobuf(payload, protobuf_accepts):
    data = big_tensor_with(payload)
    full = onnx.ModelProto()
    try:
        full.ParseFromString(data)
        accepted = True
    except Exception:
        accepted = False
    assert accepted == protobuf_accepts
    if not accepted:
        with pytest.raises(WireFormatError):
            skim_bytes(data, SMALL_TENSOR_ELEMENTS)
        return
    skimmed = onnx.ModelProto()
    skimmed.ParseFromString(skim_bytes(data, SMALL_TENSOR_ELEMENTS))
    assert skimmed == without_payloads(full, SMALL_TENSOR_ELEMENTS)
    assert skimmed.ByteSize() < 40


def test_payload_field_in_a_foreign_wire_type_is_kept_as_unknown():
    # float_data as a varint is no float_data to protobuf (an unknown field): kept, as upb does.
    data = big_tensor_with(bytes([4 << 3]) + b"\x05" + field(9, b"\0" * 6400))
    full = onnx.ModelProto()
    full.ParseFromString(data)
    skimmed = onnx.ModelProto()
    skimmed.ParseFromString(skim_bytes(data, SMALL_TENSOR_ELEMENTS))
    assert skimmed == without_payloads(full, SMALL_TENSOR_ELEMENTS)
    assert skimmed.SerializeToString().endswith(b"\x20\x05")  # the unknown field survives


@pytest.mark.parametrize("key", [b"\x88\x80\x80\x80\x80\x00", b"\x88\x80\x80\x80\x10"],
                         ids=["6-byte-key", "key-over-32-bits"])
def test_keys_beyond_protobufs_limits_are_corrupt(key):
    data = big_tensor_with(key + b"\x01")
    with pytest.raises(DecodeError):
        onnx.ModelProto().ParseFromString(data)
    with pytest.raises(WireFormatError):
        skim_bytes(data, SMALL_TENSOR_ELEMENTS)
