"""Read a ModelProto from a file without its weight payloads, by walking the protobuf wire format.

The file is memory-mapped and only the structure that can hold weights is walked:
ModelProto -> graph -> initializer / sparse_initializer (values, indices) TensorProtos. In a
TensorProto with more than ``max_elements`` elements the payload fields (``raw_data`` and the
typed ``*_data`` fields) are dropped; every other field (dims, data_type, name,
data_location, external_data, doc_string, ...) and every other byte of the file (nodes,
inputs, subgraphs, functions) is copied verbatim, in its original order, so the reduced bytes
parse to the same message minus those payloads. Weight pages are never touched, so memory
stays flat with model size.

The walker judges the bytes it walks as protobuf (upb) does, and reports what upb would
refuse with upb's own message; the rest is left to upb when it parses the reduced bytes. So a
file loads exactly when protobuf would load it.

A skimmed initializer has no payload and is not EXTERNAL: `graph.detach_weights` detaches
every initializer above `graph.SMALL_TENSOR_ELEMENTS`, which is the threshold it passes here,
so no skimmed tensor ever reaches `graph.constant_value`.
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Callable
from pathlib import Path

from google.protobuf.message import DecodeError
from onnx import ModelProto

from .errors import ModelLoadError

WIRE_VARINT, WIRE_I64, WIRE_LEN, WIRE_SGROUP, WIRE_EGROUP, WIRE_I32 = 0, 1, 2, 3, 4, 5

#: Field numbers (onnx.proto) of the messages that are walked.
MODEL_GRAPH = 7
GRAPH_INITIALIZER = 5
GRAPH_SPARSE_INITIALIZER = 15
SPARSE_VALUES = 1
SPARSE_INDICES = 2
TENSOR_DIMS = 1
#: TensorProto payload fields and the wire types protobuf reads them in: float_data,
#: int32_data, string_data, int64_data, raw_data, double_data, uint64_data. A payload field in
#: another wire type is an unknown field to protobuf, and is kept like any unknown field.
TENSOR_PAYLOAD_WIRES: dict[int, tuple[int, ...]] = {
    4: (WIRE_LEN, WIRE_I32), 5: (WIRE_LEN, WIRE_VARINT), 6: (WIRE_LEN,),
    7: (WIRE_LEN, WIRE_VARINT), 9: (WIRE_LEN,), 10: (WIRE_LEN, WIRE_I64),
    11: (WIRE_LEN, WIRE_VARINT),
}
#: Packed payloads protobuf checks while parsing them, so a dropped one is checked alike:
#: fixed-width elements (their width) and varints.
PACKED_FIXED = {4: 4, 10: 8}
PACKED_VARINT = frozenset({5, 7, 11})
#: Ten continuation bytes in a row: a varint longer than protobuf's 10-byte limit.
_OVERLONG_VARINT = re.compile(rb"[\x80-\xff]{10}")

#: What upb says about a corrupt message; used for the walker's own findings too.
CORRUPT = "Error parsing message with type 'onnx.ModelProto': Wire format was corrupt"
#: upb's default nesting limit.
MAX_DEPTH = 100

#: A piece of the output: a (start, end) span of the source buffer, or literal bytes.
Piece = tuple[int, int] | bytes
Skimmed = tuple[list[Piece], int] | None
Handler = Callable[[object, int, int, int, int], Skimmed]


class WireFormatError(DecodeError):
    """The walked part of the file is not valid protobuf wire format."""


# ------------------------------------------------------------------------------ public API


def read_model(path: Path, max_elements: int) -> ModelProto:
    """Parse the model at ``path`` without the payloads of initializers above ``max_elements``.

    Raises ModelLoadError (one line) when the file cannot be read or is not valid protobuf.
    """
    try:
        with open(path, "rb") as fh:
            try:
                mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError):  # empty, or a file system without mmap: read it
                data = skim_bytes(fh.read(), max_elements)
            else:
                with mm:
                    data = skim_bytes(mm, max_elements)
    except WireFormatError:
        raise ModelLoadError(
            f"{path}: not a valid ONNX model (protobuf parse failed: {CORRUPT})"
        ) from None
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read ({exc.strerror or exc})") from None
    proto = ModelProto()
    try:
        proto.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise ModelLoadError(
            f"{path}: not a valid ONNX model (protobuf parse failed: {exc})"
        ) from None
    return proto


def skim_bytes(buf: bytes | bytearray | mmap.mmap, max_elements: int) -> bytes:
    """Serialized ModelProto ``buf`` with the large initializer payloads dropped.

    Raises WireFormatError when the walked structure is corrupt or truncated.
    """
    end = len(buf)
    skimmed = _skim_message(buf, 0, end, _MODEL_HANDLERS, max_elements, 0)
    if skimmed is None:
        return bytes(buf)
    pieces, _ = skimmed
    with memoryview(buf) as view:
        # The slices die with the list, before the view is released.
        return b"".join([view[p[0]:p[1]] if isinstance(p, tuple) else p for p in pieces])


# -------------------------------------------------------------------------- wire format


def _varint(buf: object, pos: int, end: int) -> tuple[int, int]:
    """(value, next position) of the varint at ``pos`` (at most 10 bytes, as protobuf)."""
    if pos >= end:
        raise WireFormatError(CORRUPT)
    b = buf[pos]  # type: ignore[index]
    if b < 0x80:
        return b, pos + 1
    result = b & 0x7F
    shift = 7
    pos += 1
    while True:
        if pos >= end or shift >= 70:
            raise WireFormatError(CORRUPT)
        b = buf[pos]  # type: ignore[index]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _key(buf: object, pos: int, end: int) -> tuple[int, int]:
    """(tag, next position) of a field key: at most 5 bytes and 32 bits, with a non-zero
    field number, as protobuf requires."""
    b = buf[pos]  # type: ignore[index]  # callers check pos < end
    if 8 <= b < 0x80:  # one byte: graphs have 100,000s of node fields
        return b, pos + 1
    key, nxt = _varint(buf, pos, end)
    if nxt - pos > 5 or key >> 32 or key >> 3 == 0:
        raise WireFormatError(CORRUPT)
    return key, nxt


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _skip(buf: object, pos: int, end: int, wire: int, field: int, depth: int) -> int:
    """Position after the value of a field of wire type ``wire`` starting at ``pos``."""
    if wire == WIRE_VARINT:
        _, pos = _varint(buf, pos, end)
    elif wire == WIRE_I64:
        pos += 8
    elif wire == WIRE_LEN:
        n, pos = _varint(buf, pos, end)
        pos += n
    elif wire == WIRE_I32:
        pos += 4
    elif wire == WIRE_SGROUP:
        if depth >= MAX_DEPTH:
            raise WireFormatError(CORRUPT)
        while True:
            if pos >= end:
                raise WireFormatError(CORRUPT)
            key, pos = _key(buf, pos, end)
            if key & 7 == WIRE_EGROUP:
                if key >> 3 != field:
                    raise WireFormatError(CORRUPT)
                break
            pos = _skip(buf, pos, end, key & 7, key >> 3, depth + 1)
    else:  # an end-group with no start, or wire types 6 and 7
        raise WireFormatError(CORRUPT)
    if pos > end:
        raise WireFormatError(CORRUPT)
    return pos


def _skim_message(
    buf: object, start: int, end: int, handlers: dict[int, Handler], max_elements: int,
    depth: int,
) -> Skimmed:
    """Pieces and length of the message in ``buf[start:end]`` with its length-delimited
    fields in ``handlers`` rewritten by them; None when nothing changed."""
    if depth >= MAX_DEPTH:
        raise WireFormatError(CORRUPT)
    pieces: list[Piece] = []
    length = 0
    run = start  # start of the verbatim run not yet emitted
    pos = start
    while pos < end:
        field_start = pos
        key, pos = _key(buf, pos, end)
        field, wire = key >> 3, key & 7
        if wire != WIRE_LEN:
            pos = _skip(buf, pos, end, wire, field, depth)
            continue
        n = buf[pos] if pos < end else 0x80  # type: ignore[index]
        if n < 0x80:  # one-byte lengths inline, as one-byte keys
            value_start = pos + 1
        else:
            n, value_start = _varint(buf, pos, end)
        pos = value_start + n
        if pos > end:
            raise WireFormatError(CORRUPT)
        handler = handlers.get(field)
        if handler is None:
            continue
        sub = handler(buf, value_start, pos, max_elements, depth + 1)
        if sub is None:
            continue
        sub_pieces, sub_length = sub
        if run < field_start:
            pieces.append((run, field_start))
            length += field_start - run
        head = _encode_varint(key) + _encode_varint(sub_length)
        pieces.append(head)
        pieces.extend(sub_pieces)
        length += len(head) + sub_length
        run = pos
    if not pieces:
        return None
    if run < end:
        pieces.append((run, end))
        length += end - run
    return pieces, length


def _skim_tensor(buf: object, start: int, end: int, max_elements: int, depth: int) -> Skimmed:
    """A TensorProto without its payload fields when it has more than ``max_elements``."""
    dims: list[int] = []
    payload: list[tuple[int, int]] = []
    pos = start
    while pos < end:
        field_start = pos
        key, pos = _key(buf, pos, end)
        field, wire = key >> 3, key & 7
        if field == TENSOR_DIMS and wire == WIRE_VARINT:
            value, pos = _varint(buf, pos, end)
            dims.append(value)
            continue
        if field == TENSOR_DIMS and wire == WIRE_LEN:  # packed dims
            n, p = _varint(buf, pos, end)
            pos = p + n
            if pos > end:
                raise WireFormatError(CORRUPT)
            while p < pos:
                value, p = _varint(buf, p, pos)
                dims.append(value)
            continue
        value_start = pos
        pos = _skip(buf, pos, end, wire, field, depth)
        if wire in TENSOR_PAYLOAD_WIRES.get(field, ()):
            if wire == WIRE_LEN:
                _check_packed(buf, field, value_start, pos)
            payload.append((field_start, pos))
    if not payload:
        return None
    numel = 1
    for d in dims:
        if d >= 1 << 63:  # a negative int64: leave the verdict to the graph checks
            return None
        numel *= d
    if numel <= max_elements:
        return None
    pieces: list[Piece] = []
    run = start
    for s, e in payload:
        if run < s:
            pieces.append((run, s))
        run = e
    if run < end:
        pieces.append((run, end))
    return pieces, sum(e - s for s, e in pieces)


def _check_packed(buf: object, field: int, start: int, end: int) -> None:
    """Raise where protobuf would refuse the packed payload of ``field`` whose length varint
    starts at ``start`` (and whose value ends at ``end``)."""
    _, start = _varint(buf, start, end)
    width = PACKED_FIXED.get(field)
    if width is not None:
        if (end - start) % width:
            raise WireFormatError(CORRUPT)
    elif field in PACKED_VARINT and end > start and (
        buf[end - 1] >= 0x80  # type: ignore[index]  # the last varint is cut short
        or _OVERLONG_VARINT.search(buf, start, end) is not None  # type: ignore[call-overload]
    ):
        raise WireFormatError(CORRUPT)


def _skim_sparse(buf: object, start: int, end: int, max_elements: int, depth: int) -> Skimmed:
    return _skim_message(buf, start, end, _SPARSE_HANDLERS, max_elements, depth)


def _skim_graph(buf: object, start: int, end: int, max_elements: int, depth: int) -> Skimmed:
    return _skim_message(buf, start, end, _GRAPH_HANDLERS, max_elements, depth)


_SPARSE_HANDLERS: dict[int, Handler] = {SPARSE_VALUES: _skim_tensor, SPARSE_INDICES: _skim_tensor}
_GRAPH_HANDLERS: dict[int, Handler] = {
    GRAPH_INITIALIZER: _skim_tensor,
    GRAPH_SPARSE_INITIALIZER: _skim_sparse,
}
_MODEL_HANDLERS: dict[int, Handler] = {MODEL_GRAPH: _skim_graph}
