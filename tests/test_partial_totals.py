"""Partial totals are never zeros: a batch left open defaults to 1 (and says so), other gaps
make the totals lower bounds of the known sum."""

from __future__ import annotations

import json

import pytest
from conftest import make_model, run_cli, weights
from onnx import TensorProto, helper

import onnx_energy

F = TensorProto.FLOAT


def batch_mlp(batch: int | str = "batch"):
    # x[batch,8] @ W[8,4] -> Relu: 32 MACs and 4 compares per sample.
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
             helper.make_node("Relu", ["h"], ["y"], name="relu")]
    return make_model(nodes, [("x", [batch, 8], F)], initializers={"w": weights(8, 4)})


def two_inputs():
    # a[2,8] @ W[8,4] is known (64 MACs); b[batch,seq] -> Relu is not: seq is not a batch dim.
    nodes = [helper.make_node("MatMul", ["a", "w"], ["h"], name="mm"),
             helper.make_node("Relu", ["b"], ["r"], name="relu")]
    return make_model(nodes, [("a", [2, 8], F), ("b", ["batch", "seq"], F)],
                      [("h", None, F), ("r", None, F)], initializers={"w": weights(8, 4)})


@pytest.fixture
def path(tmp_path):
    def write(model, name="m.onnx"):
        p = tmp_path / name
        p.write_bytes(model.SerializeToString())
        return str(p)

    return write


def test_an_open_batch_defaults_to_one_and_says_so(capsys, path):
    code, out, err = run_cli(capsys, path(batch_mlp()), "--format", "json")
    assert code == 0
    assert err == ("onnx-energy: warning: batch 1 assumed (the inputs' leading dims were "
                   "unbound; --batch-size N sets it)\n")
    d = json.loads(out)
    assert d["defaulted"] == {"batch": 1}
    assert d["bindings"] == {} and d["unbound_dims"] == []  # the user bound nothing
    assert d["inputs"][0]["shape"] == [1, 8]
    assert d["totals"]["macs"] == 32 and d["totals"]["lower_bound"] is False
    # Bound by the user: the same counts, and nothing is defaulted.
    code, out, _ = run_cli(capsys, path(batch_mlp()), "--format", "json", "--batch-size", "1")
    bound = json.loads(out)
    assert bound["defaulted"] == {} and bound["bindings"] == {"batch": 1}
    assert bound["totals"] == d["totals"]


def test_a_defaulted_batch_is_not_a_gap_for_strict(capsys, path):
    code, _, err = run_cli(capsys, path(batch_mlp()), "--strict", "--format", "json")
    assert code == 0, err


def test_an_unnamed_leading_dim_defaults_too():
    a = onnx_energy.analyze(batch_mlp(batch=None))
    assert a.defaulted == {"batch": 1} and a.defaulted_dims == ["?"]
    assert a.totals.macs == 32


def test_no_default_when_other_dims_are_open(capsys, path):
    code, out, err = run_cli(capsys, path(two_inputs()), "--format", "json")
    assert code == 0
    d = json.loads(out)
    assert d["defaulted"] == {}
    assert d["unbound_dims"] == ["batch", "seq"]
    # The known sum stays, marked as a lower bound (never 0, never dropped).
    assert d["totals"]["macs"] == 64 and d["totals"]["lower_bound"] is True
    assert d["totals"]["complete"] is False
    assert d["by_op_type"]["MatMul"]["lower_bound"] is False
    assert d["by_op_type"]["Relu"]["lower_bound"] is True
    assert d["by_op_type"]["MatMul"]["bytes_read"] == 4 * (16 + 32)
    assert d["by_op_type"]["MatMul"]["bytes_written"] == 4 * 8
    code, _, _ = run_cli(capsys, path(two_inputs()), "--format", "json", "--strict")
    assert code == 3


def test_no_default_when_a_fixed_leading_dim_says_it_is_not_a_batch():
    # s[3] leads with a fixed 3, so the open leading dim of x is not a batch (a scan axis,
    # say): --batch-size 1 would be refused, and so is the default.
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]),
             helper.make_node("Add", ["h", "s"], ["y"])]
    model = make_model(nodes, [("x", ["T", 3], F), ("s", [3], F)],
                       initializers={"w": weights(3, 3)})
    a = onnx_energy.analyze(model)
    assert a.defaulted == {} and a.unbound_dims == ["T"]
    assert not a.totals.complete


def test_the_default_can_be_turned_off_in_the_api():
    a = onnx_energy.analyze(batch_mlp(), default_batch=None)
    assert a.defaulted == {} and a.unbound_dims == ["batch"]
    assert a.totals.macs == 0 and not a.totals.complete
    assert a.to_dict()["totals"]["lower_bound"] is True
    assert onnx_energy.analyze(batch_mlp(), default_batch=4).totals.macs == 4 * 32
