"""onnxruntime's blocked-layout CPU kernels (``com.microsoft.nchwc``), as a model saved with
``ORT_ENABLE_ALL`` holds them: Conv, MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool,
Upsample, ReorderInput and ReorderOutput.

The NCHWc transformer stores activations as ``(N, C, H, W)`` whose channel count C is padded
up to a multiple of the CPU's block size (8 with AVX2, 16 with AVX-512), and reorders the
weights to match: an nchwc Conv's weight is ``(M_pad, C_pad / group, kh, kw)``, where M_pad is
the filter count padded to the block and C_pad the padded input channels (the first conv of a
network reads the unpadded NCHW image). Every count here is on the channels the graph holds,
padding included, because that is the work the kernels do: a Conv whose 58 filters are
stored as 64 costs 64/58 of the unpadded Conv. ReorderInput pads (NCHW → NCHWc) and
ReorderOutput unpads to its ``channels`` attribute (NCHWc → NCHW, or NHWC with
``channels_last``); both only move data.

Costs are those of the ONNX twins (`conv`, `pooling`, `resize`) plus the fused parts of the
Conv: the ``Sum`` input (a residual add per output) and the ``activation`` per output.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .contrib import activation_by_name
from .conv import conv
from .helpers import NCHWC, ShapeOut, bops_cost
from .pooling import average_pool, global_average_pool, global_max_pool, max_pool
from .registry import BasicOps, Cost, NodeFacts, register, register_movement, shape_rule
from .resize import resize

B = BasicOps
#: The block size assumed for a ReorderInput whose consumers do not show the padded count.
DEFAULT_BLOCK = 8


@register("Conv", domain=NCHWC, backward="dot")
def nchwc_conv(f: NodeFacts) -> Cost:
    """Conv on padded channels (see the module docstring): outputs (N, M_pad, H', W') ×
    (C_pad/group)·kh·kw MACs, + bias, + the Sum input (input 3), + the activation."""
    outputs = f.out_numel(0)
    extra = B(add=outputs * int(f.has_input(3)))
    extra = extra + activation_by_name(str(f.attr("activation", ""))) * outputs
    return conv(f) + bops_cost(extra)


register("MaxPool", domain=NCHWC, backward="max_pool")(max_pool)
register("AveragePool", domain=NCHWC, backward="average_pool")(average_pool)
register("GlobalAveragePool", domain=NCHWC, backward="global_average_pool")(global_average_pool)
register("GlobalMaxPool", domain=NCHWC, backward="global_max_pool")(global_max_pool)
register("Upsample", domain=NCHWC, backward="resize")(resize)
register_movement("ReorderInput", "ReorderOutput", domain=NCHWC)


# ---------------------------------------------------------------------------- shapes


def _ints(f: NodeFacts, name: str, n: int, default: int) -> list[int]:
    value = f.attr(name)
    return [int(v) for v in value] if value else [default] * n


def window_output(f: NodeFacts, spatial: Sequence[int | str | None], kernel: Sequence[int],
                  ceil_mode: bool = False) -> list[int | None]:
    """Output spatial dims of a conv or pool window (pads, strides, dilations, auto_pad)."""
    n = len(spatial)
    strides = _ints(f, "strides", n, 1)
    dilations = _ints(f, "dilations", n, 1)
    pads = _ints(f, "pads", 2 * n, 0)
    auto_pad = str(f.attr("auto_pad", "NOTSET"))
    out: list[int | None] = []
    for i, size in enumerate(spatial):
        if not isinstance(size, int):
            out.append(None)
            continue
        extent = (kernel[i] - 1) * dilations[i] + 1
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out.append(-(-size // strides[i]))
        elif auto_pad == "VALID":
            out.append((size - extent) // strides[i] + 1)
        else:
            span = size + pads[i] + pads[i + n] - extent
            steps = -(-span // strides[i]) if ceil_mode else span // strides[i]
            out.append(steps + 1)
    return out


@shape_rule("Conv", domain=NCHWC)
def _conv(f: NodeFacts) -> list[ShapeOut | None]:
    x, w = f.dims(0), f.dims(1)
    if x is None or w is None or len(x) < 3 or len(w) != len(x):
        return [None]
    kernel = f.attr("kernel_shape") or list(w[2:])
    if not all(isinstance(k, int) for k in kernel):
        return [None]
    return [((x[0], w[0], *window_output(f, x[2:], kernel)), f.dtype(0))]


@shape_rule("MaxPool", "AveragePool", domain=NCHWC)
def _pool(f: NodeFacts) -> list[ShapeOut | None]:
    x = f.dims(0)
    kernel = f.attr("kernel_shape")
    if x is None or len(x) < 3 or not kernel:
        return [None]
    spatial = window_output(f, x[2:], [int(k) for k in kernel], bool(int(f.attr("ceil_mode", 0))))
    return [((x[0], x[1], *spatial), f.dtype(0))]


@shape_rule("GlobalAveragePool", "GlobalMaxPool", domain=NCHWC)
def _global_pool(f: NodeFacts) -> list[ShapeOut | None]:
    x = f.dims(0)
    return [None if x is None else ((x[0], x[1], *(1 for _ in x[2:])), f.dtype(0))]


@shape_rule("Upsample", domain=NCHWC)
def _upsample(f: NodeFacts) -> list[ShapeOut | None]:
    """``scales`` (ints, one per axis) multiply the dims."""
    x, scales = f.dims(0), f.attr("scales")
    if x is None or not scales or len(scales) != len(x):
        return [None]
    return [(tuple(d * int(s) if isinstance(d, int) else None
                   for d, s in zip(x, scales, strict=True)), f.dtype(0))]


def padded(channels: int, block: int = DEFAULT_BLOCK) -> int:
    """``channels`` rounded up to a multiple of ``block``."""
    return math.ceil(channels / block) * block


@shape_rule("ReorderInput", domain=NCHWC)
def _reorder_input(f: NodeFacts) -> list[ShapeOut | None]:
    """NCHW (NHWC with channels_last) → NCHWc: the channels padded to the block. The padded
    count is the one the output's declared shape holds (the shape pass declares what the
    consuming Conv's weight shows); otherwise the AVX2 block, 8."""
    x = f.dims(0)
    if x is None or len(x) < 3:
        return [None]
    if int(f.attr("channels_last", 0)):
        x = (x[0], x[-1], *x[1:-1])
    declared = f.outputs[0] if f.outputs else None
    c = x[1]
    if declared is not None and declared.shape is not None and len(declared.shape) == len(x) \
            and isinstance(declared.shape[1], int):
        c_pad: int | str | None = declared.shape[1]
    else:
        c_pad = padded(c) if isinstance(c, int) else None
    return [((x[0], c_pad, *x[2:]), f.dtype(0))]


@shape_rule("ReorderOutput", domain=NCHWC)
def _reorder_output(f: NodeFacts) -> list[ShapeOut | None]:
    """NCHWc → NCHW (NHWC with channels_last) with ``channels`` channels, the padding dropped."""
    x = f.dims(0)
    if x is None or len(x) < 3:
        return [None]
    c = int(f.attr("channels", 0)) or x[1]
    if int(f.attr("channels_last", 0)):
        return [((x[0], *x[2:], c), f.dtype(0))]
    return [((x[0], c, *x[2:]), f.dtype(0))]


def reorder_hints(nodes: Sequence, weights: dict) -> dict[str, int]:
    """Padded channel counts of ReorderInput outputs, read from the nchwc Conv that consumes
    each: ``W.shape[1] · group`` (its input channels as the kernel holds them)."""
    reordered = {n.outputs[0] for n in nodes
                 if n.domain == NCHWC and n.op_type == "ReorderInput" and n.outputs}
    hints: dict[str, int] = {}
    for n in nodes:
        if n.domain != NCHWC or n.op_type != "Conv" or len(n.inputs) < 2:
            continue
        x, w = n.inputs[0], weights.get(n.inputs[1])
        if x in reordered and x not in hints and w is not None and w.shape and len(w.shape) > 1:
            hints[x] = int(w.shape[1]) * int(n.attrs.get("group", 1))
    return hints
