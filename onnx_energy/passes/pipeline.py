"""The analysis pipeline: shapes -> costs -> (training) -> lowering -> memory plan, for any
one graph.

`run_pipeline` is the one sequence of passes. `analyze()` runs it on a model; control flow
runs it on each subgraph (turned into a model of its own) from inside the shape pass; the
calibration features run it on single-op models. Every caller gets a `GraphAnalysis`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..graph import LoadedModel
from .control_flow import ControlFlow, apply_control_flow, flow_key
from .costs import buffer_names, cost_nodes
from .memory import plan_memory
from .results import ControlFlowOptions, GraphAnalysis, NodeCost
from .shapes import infer_shapes
from .subgraphs import CONTROL_FLOW_OPS
from .training import NodeTraining, training_pass
from .transistors import Lowered, TransistorTable, load_table, lower, node_native_dtype


@dataclass(frozen=True)
class PipelineOptions:
    """How a graph is analysed.

    ``control``: If branches and Loop trip counts (see control_flow); ``table``: the
    transistor table (None: the default); ``extra_tos``: TOs columns beyond fp32, fp16 and
    native; ``phase``: ``inference`` or ``training`` (adds backward and ``loss``).
    """

    control: ControlFlowOptions = ControlFlowOptions()
    table: TransistorTable | None = None
    extra_tos: tuple[str, ...] = ()
    phase: str = "inference"
    loss: str = "ce"


def run_pipeline(model: LoadedModel, options: PipelineOptions | None = None) -> GraphAnalysis:
    """Analyse a loaded (and bound) model: every node's shapes, cost and lowering."""
    options = options or PipelineOptions()
    table = options.table or load_table()

    def analyse_subgraph(sub: LoadedModel, control: ControlFlowOptions) -> GraphAnalysis:
        # Subgraphs are costed per iteration, for inference (training treats an If/Loop/Scan
        # as one node).
        return run_pipeline(sub, dataclasses.replace(options, control=control, table=table,
                                                     phase="inference"))

    flow = ControlFlow(model, options.control, analyse_subgraph)
    shaped = infer_shapes(model, flow)
    costs = cost_nodes(shaped, model.weights, model.opsets, hidden=model.external_values)
    if flow.results:
        costs = [apply_control_flow(c, flow.results)
                 if c.node.op_type in CONTROL_FLOW_OPS and flow_key(c.node) in flow.results
                 else c for c in costs]
    training = None
    if options.phase == "training":
        buffers = buffer_names(shaped.nodes)
        trainable = {k for k, w in model.weights.items()
                     if w.dtype.startswith(("float", "bfloat")) and k not in buffers}
        training = training_pass(
            shaped.nodes, [c.cost for c in costs], shaped.tensors, trainable,
            [o.name for o in model.proto.graph.output], options.loss, shaped.values).nodes
    lowered = [_lower(c, table, options.extra_tos, training[i] if training else None)
               for i, c in enumerate(costs)]
    weights = set(model.weights) | {t.name for t in model.proto.graph.initializer}
    memory = plan_memory(shaped.nodes, shaped.tensors, model.input_names,
                         [o.name for o in model.proto.graph.output], weights)
    return GraphAnalysis(model, shaped, costs, lowered, training, memory)


def _lower(c: NodeCost, table: TransistorTable, extra: tuple[str, ...],
           training: NodeTraining | None) -> Lowered | None:
    if c.cost is None:
        return None
    native = node_native_dtype(c.node, c.inputs, c.outputs, c.cost.macs)
    if training is None:
        return lower(table, c.cost.bops, native, extra=extra)
    return lower(table, c.cost.bops, native, training=True,
                 backward=None if training.backward is None else training.backward.bops,
                 loss=None if training.loss is None else training.loss.bops, extra=extra)
