"""Helpers shared by op rules: domains, costs from basic operations, dot products, dims."""

from __future__ import annotations

from collections.abc import Callable

import onnx
from onnx import helper

from ..dtypes import elem_type
from ..graph import tensor_info_from_value_info
from .base import BasicOps, Cost, Dim, NodeFacts, Shape

MS = "com.microsoft"
#: onnxruntime's blocked-layout (NCHWc) kernels, in graphs it saved after optimisation.
NCHWC = "com.microsoft.nchwc"
#: onnxruntime's channels-last twins of ONNX ops, written by its layout transformer.
NHWC = "com.ms.internal.nhwc"


def canonical_domain(domain: str) -> str:
    """The registry's name of an op domain: ``ai.onnx`` is the default domain ``""``."""
    return "" if domain == "ai.onnx" else domain


def bops_cost(bops: BasicOps) -> Cost:
    """The cost of work that is only basic operations (no dot products): FLOPs = their sum."""
    return Cost(flops=bops.total, bops=bops)


def dot_cost(macs: int, outputs: int, bias: int) -> Cost:
    """Cost of ``outputs`` dot products totalling ``macs`` multiply-accumulates.

    FLOPs follow the usual 2 per MAC plus the bias adds; basic operations are exact:
    a dot product of length K is K mul and K-1 add, and a bias add makes that K add.
    """
    bops = BasicOps(add=macs - outputs + bias, mul=macs)
    return Cost(macs=macs, flops=2 * macs + bias, bias=bias, bops=bops)


def elementwise(per_element: BasicOps, *, over: str = "output") -> Callable[[NodeFacts], Cost]:
    """A rule costing ``per_element`` basic operations per output (or input 0) element."""

    def rule(f: NodeFacts) -> Cost:
        n = f.out_numel(0) if over == "output" else f.numel(0)
        return bops_cost(per_element * n)

    return rule


# ------------------------------------------------------- dim arithmetic for shape rules
# Symbolic dims pass through where they are unchanged; anything else unknown becomes None.


def add_dims(a: Dim, b: Dim) -> Dim:
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    if a == 0:
        return b
    return a if b == 0 else None


def mul_dims(a: Dim, b: Dim) -> Dim:
    return a * b if isinstance(a, int) and isinstance(b, int) else None


def div_dims(a: Dim, b: Dim) -> Dim:
    if isinstance(a, int) and isinstance(b, int) and b and a % b == 0:
        return a // b
    return None


def broadcast_shapes(*shapes: Shape | None) -> Shape | None:
    """Numpy broadcasting of shapes whose dims may be symbolic (None where it cannot say)."""
    if any(s is None for s in shapes):
        return None
    known = [s for s in shapes if s is not None]
    rank = max(len(s) for s in known)
    out: list[Dim] = []
    for i in range(rank):
        dims = [s[len(s) - rank + i] for s in known if len(s) - rank + i >= 0]
        ints = {d for d in dims if isinstance(d, int) and d != 1}
        syms = [d for d in dims if not isinstance(d, int) or d != 1]
        if len(ints) > 1:
            return None
        if ints:
            out.append(next(iter(ints)))
        elif syms:
            out.append(syms[0] if all(d == syms[0] for d in syms) else None)
        else:
            out.append(1)
    return tuple(out)


def matmul_shape(a: Shape | None, b: Shape | None) -> Shape | None:
    """Output shape of ``MatMul(a, b)`` with numpy's rank rules."""
    if a is None or b is None or not a or not b:
        return None
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    batch = broadcast_shapes(a2[:-2], b2[:-2])
    if batch is None:
        return None
    out = (*batch, a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return out


# ------------------------------------------------------------ shape rules shared by families
ShapeOut = tuple[Shape | None, str]


def same_as_input(f: NodeFacts) -> list[ShapeOut | None]:
    """Element-wise contrib ops: the output has the first input's shape and dtype (a
    BiasDropout mask and SkipGroupNorm's sum output as well)."""
    s, d = f.dims(0), f.dtype(0)
    outs: list[ShapeOut | None] = [(s, d)]
    if f.node.op_type in ("BiasDropout",) and len(f.node.outputs) > 1:
        outs.append((s, "bool"))
    elif f.node.op_type == "SkipGroupNorm" and len(f.node.outputs) > 1:
        outs.append((s, d))
    return outs


def norm_outputs(f: NodeFacts, axis: int, n_extra_same: int = 0) -> list[ShapeOut | None]:
    """A normalisation's output, its mean and inverse std (float32 stats over ``axis``), and
    ``n_extra_same`` more outputs shaped like the input."""
    s, d = f.dims(0), f.dtype(0)
    if s is None:
        return [(None, d)]
    axis %= max(len(s), 1)
    stats: Shape = (*s[:axis], *(1 for _ in s[axis:]))
    outs: list[ShapeOut | None] = [(s, d), (stats, "float32"), (stats, "float32")]
    outs += [(s, d)] * n_extra_same
    return outs


def onnx_twin(op: str, opset: int, keep: tuple[int, ...],
              drop: tuple[str, ...] = ()) -> Callable[[NodeFacts], list[ShapeOut | None] | None]:
    """A shape rule for a contrib op whose outputs are those of ONNX op ``op`` (at ``opset``)
    on the inputs ``keep`` and the attributes less ``drop`` (the fused extras): ONNX's own
    inference of the twin node answers."""

    def rule(f: NodeFacts) -> list[ShapeOut | None] | None:
        if int(f.attr("channels_last", 0)):
            return None
        proto = f.node.proto
        inputs = [proto.input[i] if i < len(proto.input) else "" for i in keep]
        while inputs and not inputs[-1]:
            inputs.pop()
        twin = helper.make_node(op, inputs, [proto.output[0]])
        twin.attribute.extend(a for a in proto.attribute if a.name not in drop)
        types = {}
        for i, name in zip(keep, inputs, strict=False):
            if not name:
                continue
            info = f.inputs[i] if i < len(f.inputs) else None
            if info is None or info.shape is None:
                return None
            # Float-only twins (pools, ReduceMean) are inferred on float stand-ins.
            code = (elem_type(info.dtype) if op in ("QLinearConv", "Conv", "Gemm")
                    else onnx.TensorProto.FLOAT)
            types[name] = helper.make_tensor_type_proto(code, info.shape)
        try:
            schema = onnx.defs.get_schema(op, opset, "")
            result = onnx.shape_inference.infer_node_outputs(
                schema, twin, types, {}, opset_imports=[helper.make_opsetid("", opset)])
        except Exception:
            return None
        tp = result.get(proto.output[0])
        if tp is None:
            return None
        info = tensor_info_from_value_info(helper.make_value_info(proto.output[0], tp))
        return [(info.shape, f.dtype(0) if op != "QLinearConv" else info.dtype or f.dtype(0))]

    return rule
