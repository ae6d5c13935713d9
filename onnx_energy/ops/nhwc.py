"""onnxruntime's channels-last twins of ONNX ops (``com.ms.internal.nhwc``), which its layout
transformer writes for execution providers that prefer NHWC (XNNPACK, QNN, NNAPI, ...).

Each op is its ONNX twin with data input and output laid out ``(N, *spatial, C)``: the cost
is the twin's rule on the NCHW view of the same tensors (the arithmetic does not depend on
the layout), plus the fused ``activation`` per output where the op has one; the shapes are
ONNX's inference of the twin on that view, turned back to channels-last.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from ..graph import TensorInfo
from .contrib import activation_by_name
from .conv import conv, conv_transpose
from .detection import grid_sample
from .helpers import NHWC, ShapeOut, bops_cost, onnx_twin
from .misc import lrn
from .normalization import batch_norm, instance_norm
from .pooling import (
    average_pool,
    global_average_pool,
    global_lp_pool,
    global_max_pool,
    lp_pool,
    max_pool,
)
from .quantized import REQUANTIZE, _zp_subs, qlinear_average_pool, qlinear_conv
from .registry import Cost, NodeFacts, register, register_movement, shape_rule
from .resize import resize

Rule = Callable[[NodeFacts], Cost]


def _to_nchw(info: TensorInfo | None) -> TensorInfo | None:
    if info is None or info.shape is None or len(info.shape) < 3:
        return info
    s = info.shape
    return TensorInfo(info.name, (s[0], s[-1], *s[1:-1]), info.dtype)


def _to_nhwc(shape: tuple | None) -> tuple | None:
    if shape is None or len(shape) < 3:
        return shape
    return (shape[0], *shape[2:], shape[1])


def nchw_view(f: NodeFacts) -> NodeFacts:
    """The node's facts with input 0 and output 0 seen as NCHW."""
    inputs = (_to_nchw(f.inputs[0]), *f.inputs[1:]) if f.inputs else f.inputs
    outputs = (_to_nchw(f.outputs[0]), *f.outputs[1:]) if f.outputs else f.outputs
    return dataclasses.replace(f, inputs=inputs, outputs=outputs)


def _twin_cost(rule: Rule) -> Rule:
    def cost(f: NodeFacts) -> Cost:
        view = nchw_view(f)
        base = rule(view)
        act = str(f.attr("activation", ""))
        if act:
            base = base + bops_cost(activation_by_name(act) * view.out_numel(0))
        return base

    cost.__doc__ = f"{rule.__name__} on the NCHW view (see the module docstring)."
    return cost


def _qlinear_conv_transpose(f: NodeFacts) -> Cost:
    """As ConvTranspose on the input volume, plus zero-point subs and the requantization."""
    base = conv_transpose(dataclasses.replace(f, inputs=(f.inputs[0], f.inputs[3])))
    return base + bops_cost(_zp_subs(f, (0, 2), (3, 5)) + REQUANTIZE * f.out_numel(0))


TWINS: dict[str, tuple[Rule, int, tuple[int, ...]]] = {
    # op: (ONNX twin's cost rule, opset of its shape inference, inputs the shape reads)
    "Conv": (conv, 11, (0, 1, 2)),
    "ConvTranspose": (conv_transpose, 11, (0, 1, 2)),
    "AveragePool": (average_pool, 19, (0,)),
    "MaxPool": (max_pool, 12, (0,)),
    "LpPool": (lp_pool, 18, (0,)),
    "GlobalAveragePool": (global_average_pool, 1, (0,)),
    "GlobalMaxPool": (global_max_pool, 1, (0,)),
    "GlobalLpPool": (global_lp_pool, 2, (0,)),
    "BatchNormalization": (batch_norm, 15, (0, 1, 2, 3, 4)),
    "InstanceNormalization": (instance_norm, 6, (0, 1, 2)),
    "LRN": (lrn, 13, (0,)),
    "GridSample": (grid_sample, 20, (0, 1)),
    "Resize": (resize, 19, (0, 1, 2, 3)),
    "QLinearConv": (qlinear_conv, 10, tuple(range(9))),
    "QLinearConvTranspose": (_qlinear_conv_transpose, 11, (0, 3)),
    "QLinearAveragePool": (qlinear_average_pool, 19, (0,)),
}

for _op, (_rule, _opset, _keep) in TWINS.items():
    register(_op, domain=NHWC)(_twin_cost(_rule))
register_movement("DepthToSpace", "SpaceToDepth", "MaxUnpool", domain=NHWC)


def _twin_shape(op: str, opset: int, keep: tuple[int, ...]) -> Callable[
        [NodeFacts], list[ShapeOut | None] | None]:
    twin_op = {"QLinearConvTranspose": "ConvTranspose", "QLinearAveragePool": "AveragePool"}.get(
        op, op)
    if op == "QLinearConvTranspose":
        keep = (0, 3)
    infer = onnx_twin(twin_op, opset, keep, ("activation", "activation_params", "channels_last"))

    def rule(f: NodeFacts) -> list[ShapeOut | None] | None:
        outs = infer(nchw_view(f))
        if not outs or outs[0] is None:
            return None
        shape, _ = outs[0]
        dtype = f.dtype(0)
        return [(_to_nhwc(shape), dtype)]

    return rule


for _op, (_rule, _opset, _keep) in TWINS.items():
    shape_rule(_op, domain=NHWC)(_twin_shape(_op, _opset, _keep))
for _op in ("DepthToSpace", "SpaceToDepth"):
    shape_rule(_op, domain=NHWC)(_twin_shape(_op, 13, (0,)))
