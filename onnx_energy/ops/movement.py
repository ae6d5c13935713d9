"""Ops that only move, copy, select or reinterpret data: no arithmetic, bytes still counted."""

from __future__ import annotations

from .registry import register_movement

MOVEMENT_OPS = (
    "Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat", "Split",
    "Slice", "Shape", "Size", "Cast",
    "CastLike", "Constant", "ConstantOfShape", "Pad", "DepthToSpace", "SpaceToDepth",
    "Scatter", "Where", "Dropout", "Compress", "ReverseSequence",
    "Trilu", "OneHot", "EyeLike", "SplitToSequence", "ConcatFromSequence", "SequenceAt",
    "SequenceConstruct", "SequenceEmpty", "SequenceErase", "SequenceInsert", "SequenceLength",
    "Optional", "OptionalGetElement", "OptionalHasElement", "NonZero", "Range",
    "BitCast", "CenterCropPad", "MaxUnpool", "TensorScatter",
    # String ops: character processing, no arithmetic datapath (strings count 0 bytes).
    "StringConcat", "StringNormalizer", "StringSplit", "RegexFullMatch",
)

register_movement(*MOVEMENT_OPS)
# Their adjoints are not free: broadcast copies are summed back, gathers scatter-add.
register_movement("Expand", "Tile", backward="broadcast")
register_movement("Gather", "GatherElements", "GatherND", backward="gather")
