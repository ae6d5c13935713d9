"""What a run costs outside the kernels' own work: the session, the dispatch, the profiler.

- **Session overhead s**: every ``session.run`` pays a fixed price before and after its
  kernels (the Python binding, feeding the inputs, allocating the outputs, the executor's
  setup; on CUDA the IO binding call). A per-node split of a network's runtime leaves it
  out; a single-op measurement contains it.
- **Dispatch d**: what one more node costs an unprofiled run beyond its work.
- **Profiled kernel p**: what the profiler reports for a kernel that does next to nothing,
  its own cost per kernel event.

All three come from two chains of Relu on one float: one node and `CHAIN` nodes, the longer
one also profiled. d is their difference per node, s the one-node time less one dispatch,
p the profiled chain's kernel time per kernel; per-node times are reconciled with a
network's runtime by adding ``d − p`` to every kernel (`profiling.reconcile`).
`measurement.measure_overheads` measures them.
"""

from __future__ import annotations

from dataclasses import dataclass

from onnx import ModelProto, TensorProto, helper

#: Nodes of the longer chain.
CHAIN = 9
#: Names of the two models, as written to records (``model.name``): the fit reads the
#: one-node model's runtime under the first as the session overhead.
NAMES = ("session-overhead", f"session-overhead/relu-{CHAIN}")


@dataclass(frozen=True)
class Overheads:
    """s, d and p of the module docstring (seconds; p None when not profiled)."""

    session_s: float
    dispatch_s: float = 0.0
    profiled_kernel_s: float | None = None

    @property
    def kernel_correction_s(self) -> float | None:
        """What to add to a profiled kernel's time: its dispatch less the profiler's cost."""
        if self.profiled_kernel_s is None:
            return None
        return self.dispatch_s - self.profiled_kernel_s

    def to_dict(self) -> dict[str, float | None]:
        return {"session_overhead_s": self.session_s, "dispatch_s": self.dispatch_s,
                "profiled_kernel_s": self.profiled_kernel_s}


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


def overheads_from(one_s: float, chain_s: float,
                   profiled_kernels_s: float | None = None) -> Overheads:
    """s, d and p from the runtimes of the two chains and the profiled chain's kernel sum.

    d is clamped at zero: a negative value is noise in two nearly equal numbers.
    """
    dispatch = max(0.0, (chain_s - one_s) / (CHAIN - 1))
    return Overheads(max(0.0, one_s - dispatch), dispatch,
                     None if profiled_kernels_s is None else profiled_kernels_s / CHAIN)
