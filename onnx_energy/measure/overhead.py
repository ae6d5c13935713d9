"""The fixed per-run cost of an onnxruntime session: what a run costs outside any kernel.

Every ``session.run`` pays a fixed price before and after its kernels (the Python binding,
feeding the inputs, allocating the outputs, the executor's setup; on CUDA the IO binding
call). A per-node split of a network's runtime must leave it out, and a single-op
measurement contains it. It is measured on two chains of a kernel that does next to no
work (Relu on one float): one node and `CHAIN` nodes. Their difference is the per-node
dispatch cost; the one-node time minus one dispatch is the session overhead ``s``
(`measurement.measure_session_overhead` measures it).
"""

from __future__ import annotations

from onnx import ModelProto, TensorProto, helper

#: Nodes of the longer chain.
CHAIN = 9
#: Names of the two models, as written to records (``model.name``).
NAMES = ("session-overhead/relu-1", f"session-overhead/relu-{CHAIN}")


def relu_chain(n: int) -> ModelProto:
    """``n`` Relu nodes in a row on a float32 tensor of one element (opset 17)."""
    nodes = [helper.make_node("Relu", [f"t{i}"], [f"t{i + 1}"], name=f"relu{i}")
             for i in range(n)]
    graph = helper.make_graph(
        nodes, f"relu_chain_{n}",
        [helper.make_tensor_value_info("t0", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info(f"t{n}", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def overhead_models() -> list[tuple[str, ModelProto]]:
    """The two chains, named as in records."""
    return [(NAMES[0], relu_chain(1)), (NAMES[1], relu_chain(CHAIN))]


def session_overhead_from(one_s: float, chain_s: float) -> tuple[float, float]:
    """(session overhead s, dispatch per node) from the runtimes of the two chains.

    Clamped at zero: a negative value is noise in two nearly equal numbers.
    """
    dispatch = max(0.0, (chain_s - one_s) / (CHAIN - 1))
    return max(0.0, one_s - dispatch), dispatch
