"""Fitting profiles: known laws are recovered, and the numpy path equals scikit-learn's."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from onnx_energy.calibration.dataset import rows_from_records
from onnx_energy.calibration.fit import (
    MIN_ROWS,
    candidates,
    final_map,
    fit_key,
    fit_profile,
)
from onnx_energy.errors import FitError
from onnx_energy.profile import load_profile


def f32(shape):
    return {"shape": list(shape), "dtype": "float32"}


def conv_record(i, b, c, o, k, h, runtime, energy=None, runner="pytorch"):
    return {"schema": "onnx-energy/record/2", "kind": "op", "run_id": f"r{i}",
            "runner": {"name": runner}, "sensor": "rapl" if energy else "none",
            "runtime_s": runtime, "energy_j": energy, "provider": "cpu",
            "spec": {"op_type": "Conv", "domain": "",
                     "attrs": {"kernel_shape": [k, k], "pads": [k // 2] * 4},
                     "inputs": [f32([b, c, h, h]), f32([o, c, k, k]), f32([o])]}}


def conv_macs(b, c, o, k, h):
    return b * o * c * k * k * h * h


def law_records(n=60, seed=0, noise=0.0):
    """Runtime = exp(-20 + 0.9 log1p(MACs) + 0.15 log1p(bytes)), energy = 25 W x runtime,
    at batch 1 (where the batch varies, forms are fitted per sample: `batch_law_records`)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        b, c, o = 1, int(rng.integers(2, 48)), int(rng.integers(2, 48))
        k, h = int(rng.choice([1, 3, 5])), int(rng.integers(4, 40))
        macs = conv_macs(b, c, o, k, h)
        nbytes = 4 * (b * c * h * h + o * c * k * k + o + b * o * h * h)
        t = math.exp(-20 + 0.9 * math.log1p(macs) + 0.15 * math.log1p(nbytes)
                     + noise * rng.normal())
        out.append(conv_record(i, b, c, o, k, h, t, 25.0 * t))
    return out


def batch_law_records(n=80, seed=3, noise=0.01):
    """Runtime = B x exp(-21 + 0.95 log1p(MACs / B)): per sample, a power law of one
    sample's work; energy = 30 W x runtime."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        b, c, o = int(rng.integers(1, 64)), int(rng.integers(2, 48)), int(rng.integers(2, 48))
        k, h = int(rng.choice([1, 3, 5])), int(rng.integers(4, 40))
        per = conv_macs(1, c, o, k, h)
        t = b * math.exp(-21 + 0.95 * math.log1p(per) + noise * rng.normal())
        out.append(conv_record(i, b, c, o, k, h, t, 30.0 * t))
    return out


def test_where_the_batch_varies_maps_are_per_sample_and_linear_in_it():
    rows = rows_from_records(batch_law_records())
    km = fit_key("Conv", "kernel", "conv", rows)
    fmap = km.runtime
    assert fmap is not None and fmap.per == "lead" and fmap.candidate.endswith("-per-sample")
    assert fmap.diagnostics["cv_rmspe"] < 0.03  # the law, to within its 1% noise
    # the same sample at batch 1 and at batch 8 (outside no range): 8 times the cost
    one = next(r for r in rows if r.features.values["lead"] == 1.0)
    x1 = np.asarray([[one.features.values[f] for f in fmap.features]])
    x8 = x1.copy()
    for j, f in enumerate(fmap.features):
        if f in ("macs", "flops", "bytes_act", "elems_in", "elems_out", "gemm_n", "lead",
                 "bytes_out", "tos_fp32"):
            x8[0, j] *= 8
        elif f == "bytes":  # the weights are read once, whatever the batch
            act = one.features.values["bytes_act"]
            x8[0, j] += 7 * act
    assert fmap.predict(x8).y[0] == pytest.approx(8 * fmap.predict(x1).y[0], rel=1e-9)
    # power does not grow with the batch: its map is never per sample
    assert km.power is not None and not km.power.per


def test_fit_recovers_the_coefficients_of_a_known_law():
    rows = rows_from_records(law_records())
    assert all(r.features is not None for r in rows)
    km = fit_key("Conv", "kernel", "conv", rows, only=["loglinear-work"])
    fmap = km.runtime
    assert fmap is not None and fmap.features == ["macs", "bytes"]
    beta = np.asarray(fmap.coef[1:]) / np.asarray(fmap.scale)
    intercept = fmap.coef[0] - float(beta @ np.asarray(fmap.mean))
    assert beta == pytest.approx([0.9, 0.15], abs=1e-6)
    assert intercept == pytest.approx(-20.0, abs=1e-5)
    assert fmap.diagnostics["cv_rmspe"] < 1e-6


def test_candidate_selection_prefers_the_true_form():
    rows = rows_from_records(law_records(n=80, noise=0.01))
    km = fit_key("Conv", "kernel", "conv", rows)
    assert km.runtime is not None
    scores = km.runtime.diagnostics["candidates"]
    # the power law (or a richer form that contains it) cross-validates near the noise level
    assert km.runtime.diagnostics["cv_rmspe"] < 0.02
    assert scores["linear-macs"] > 0.05  # a line through MACs misses the curvature
    assert km.runtime.candidate != "linear-macs"


@pytest.mark.parametrize("name", ["loglinear-work", "poly2-all-lasso", "poly3-all-lasso",
                                  "linear-work", "poly2-all-lasso-per-sample",
                                  "loglinear-work-per-sample"])
def test_numpy_prediction_equals_the_scikit_learn_pipeline(name, tmp_path: Path):
    per = name.endswith("-per-sample")
    rows = rows_from_records(batch_law_records(noise=0.03) if per
                             else law_records(n=80, noise=0.03, seed=1))
    varying = {"macs", "flops", "bytes", "c_in", "c_out", "kernel", "hw_in", "hw_out",
               "batch"} | ({"lead"} if per else set())
    cand = next(c for c in candidates("conv", varying) if c.name == name)
    x = np.asarray([[r.features.values[f] for f in cand.features] for r in rows])
    y = np.asarray([r.runtime_s for r in rows])
    fmap, pipe = final_map(cand, x, y, "runtime_s")
    # through the saved file, as a user's prediction would be
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"map": fmap.to_dict()}))
    from onnx_energy.profile import FittedMap

    loaded = FittedMap.from_dict(json.loads(path.read_text())["map"])
    probe = x * np.random.default_rng(2).uniform(0.5, 2.0, x.shape)  # off the training rows
    numpy_pred = loaded.predict(probe).y
    sk = pipe.predict(probe)
    sk = np.exp(sk) if cand.transform == "log" else sk
    if per:  # the pipeline predicts per sample
        sk = sk * np.maximum(probe[:, list(cand.features).index("lead")], 1.0)
    assert numpy_pred == pytest.approx(sk, rel=1e-9)


def test_intervals_widen_away_from_the_training_data():
    rows = rows_from_records(law_records(n=60, noise=0.05))
    km = fit_key("Conv", "kernel", "conv", rows, only=["loglinear-work"])
    fmap = km.runtime
    center = np.exp(np.asarray(fmap.mean))[None, :] - 1  # the middle of the data (log space)
    points = np.vstack([center, center * 1e2, center * 1e4])
    got = fmap.predict(points)
    widths = np.log(got.hi / got.lo)
    assert widths[0] < widths[1] < widths[2]
    assert widths[2] > 1.3 * widths[0]
    near = fmap.predict(center)
    assert list(got.extrapolated) == [False, True, True]
    assert near.lo[0] < near.y[0] < near.hi[0]


def test_fit_profile_writes_a_profile_that_predicts(tmp_path: Path):
    records = tmp_path / "r.jsonl"
    records.write_text("".join(json.dumps(r) + "\n" for r in law_records(n=40)))
    profile = fit_profile([records])
    assert {"Conv", "conv", "generic"} <= set(profile.models)
    assert profile.runner == "pytorch" and profile.fusion.patterns == ()
    assert profile.models["Conv"].energy_form in ("direct", "runtime_x_power")
    assert profile.records[0]["records"] == 40 and len(profile.records[0]["sha256"]) == 64
    out = tmp_path / "p.json"
    profile.save(out)
    again = load_profile(out)
    assert again.to_dict() == profile.to_dict() | {"schema": "onnx-energy/profile/1"}


def test_the_profile_keeps_the_median_speed_probe_of_its_records(tmp_path: Path):
    from onnx_energy.render.prediction import render_profile

    records = tmp_path / "r.jsonl"
    recs = law_records(n=40)
    for i, r in enumerate(recs[:30]):
        r["probe_s"] = 1e-3 * (1 + i % 3)  # 10 each of 1, 2 and 3 ms
    records.write_text("".join(json.dumps(r) + "\n" for r in recs))
    profile = fit_profile([records])
    assert profile.speed_probe_s == pytest.approx(2e-3)
    assert profile.diagnostics["records_with_speed_probe"] == 30
    out = tmp_path / "p.json"
    profile.save(out)
    saved = json.loads(out.read_text())["speed_probe"]
    assert saved == {"kernel": "MatMul 256x256x256 float32", "seconds": 2e-3}
    assert load_profile(out).speed_probe_s == pytest.approx(2e-3)
    assert "speed     probe 2 ms per run" in render_profile(load_profile(out))
    # another kernel's probe is no comparison: read as none
    d = json.loads(out.read_text())
    d["speed_probe"]["kernel"] = "MatMul 128x128x128 float32"
    out.write_text(json.dumps(d))
    assert load_profile(out).speed_probe_s is None


def test_unusable_records_are_an_error_naming_why(tmp_path: Path):
    records = tmp_path / "r.jsonl"
    bad = [dict(r, spec={"op_type": "NoSuchOp", "domain": "", "attrs": {}, "inputs": []})
           for r in law_records(n=5)]
    records.write_text("".join(json.dumps(r) + "\n" for r in bad))
    with pytest.raises(FitError, match="none of the 5"):
        fit_profile([records])


def test_too_few_rows_for_any_family(tmp_path: Path):
    records = tmp_path / "r.jsonl"
    records.write_text("".join(json.dumps(r) + "\n" for r in law_records(n=MIN_ROWS - 3)))
    with pytest.raises(FitError, match="too few usable rows"):
        fit_profile([records])


def test_bad_readings_are_excluded_and_counted():
    recs = law_records(n=40)
    recs[0]["energy_j"] = -1.0
    recs[1]["energy_j"] = 0.0
    rows = rows_from_records(recs)
    km = fit_key("Conv", "kernel", "conv", rows)
    assert km.energy is not None
    assert km.energy.diagnostics["excluded"] == {"non-positive energy_j": 2}
    assert km.energy.diagnostics["n"] == 38


def test_specs_keep_their_opset_and_output_count():
    """A Gelu spec (opset 20) and a two-output Split are described, not excluded."""
    gelu = {"schema": "onnx-energy/record/2", "kind": "op", "run_id": "g",
            "runner": {"name": "onnxruntime"}, "runtime_s": 1e-4,
            "spec": {"op_type": "Gelu", "domain": "", "opset": 20, "attrs": {},
                     "inputs": [f32([2, 35, 60])]}}
    split = {"schema": "onnx-energy/record/2", "kind": "op", "run_id": "s",
             "runner": {"name": "onnxruntime"}, "runtime_s": 1e-5,
             "spec": {"op_type": "Split", "domain": "", "opset": 17, "attrs": {"axis": -1},
                      "num_outputs": 2,
                      "inputs": [f32([1, 2, 486]),
                                 {"shape": [2], "dtype": "int64", "initializer": True,
                                  "value": [243, 243]}]}}
    g, s = rows_from_records([gelu, split])
    assert g.excluded is None and g.features is not None
    assert g.features.values["elems_out"] == 2 * 35 * 60
    assert s.excluded is None and s.features is not None
    assert s.features.values["bytes_out"] == 4 * 2 * 486  # two (1, 2, 243) halves


def grouped_conv_record(i, c, o, groups, runtime=1e-3, h=8, kind="op"):
    rec = conv_record(i, 1, c, o, 3, h, runtime)
    rec["spec"]["attrs"]["group"] = groups
    rec["spec"]["inputs"][1] = f32([o, c // groups, 3, 3])
    rec["kind"] = kind
    return rec


@pytest.mark.parametrize(("c", "o", "groups", "narrow", "unblocked"), [
    (256, 64, 1, 0.0, False),   # a full tile, blocked channels
    (250, 64, 1, 0.0, True),    # input channels off the 8-wide block: im2col + SGEMM
    (3, 64, 1, 0.0, False),     # a stem: NCHWc reads NCHW input directly
    (256, 8, 1, 3.0, False),    # 8 of 32 outputs in the tile: 3 MACs wasted per MAC
    (64, 64, 4, 1.0, False),    # 16 outputs per group; 16 inputs per group, blocked
    (96, 96, 8, 32 / 12 - 1, True),  # 12 inputs per group
])
def test_conv_features_say_what_the_kernel_wastes(c, o, groups, narrow, unblocked):
    row = rows_from_records([grouped_conv_record(0, c, o, groups)])[0]
    v = row.features.values
    assert v["macs_narrow"] == pytest.approx(narrow * v["macs"])
    assert v["macs_unblocked"] == (v["macs"] if unblocked else 0.0)
    # a spec measured alone: its activations are what it reorders; in a network, nothing
    assert v["bytes_isolated"] == v["bytes_act"] > 0


def test_the_waste_corrections_are_terms_of_the_linear_forms_only():
    varying = {"macs", "macs_narrow", "macs_unblocked", "bytes", "bytes_isolated", "c_out"}
    by = {c.name: c for c in candidates("conv", varying)}
    assert by["linear-nonneg"].features == ("macs", "macs_narrow", "macs_unblocked", "bytes")
    assert "macs_narrow" not in by["loglinear-work"].features
    # bytes_isolated only where lone and in-network rows can be told apart
    assert "bytes_isolated" not in by["linear-work"].features
    by = {c.name: c for c in candidates("conv", varying | {"isolated"})}
    assert by["linear-work"].features == ("macs", "macs_narrow", "macs_unblocked", "bytes",
                                          "bytes_isolated", "isolated")
    # and only for the ops onnxruntime reorders into its blocked layout: a copy costs its
    # bytes inside a network as much as alone
    by = {c.name: c for c in candidates("movement", {"bytes", "bytes_isolated", "isolated"})}
    assert by["linear-nonneg"].features == ("bytes",)
    assert by["linear-work"].features == ("bytes", "isolated")


def test_views_are_a_family_apart_from_copies():
    from onnx_energy.features import GroupFeatures, family_of

    # Reshape and its kin alias their input; Transpose, Concat and Cast copy every byte
    assert [family_of(k, "movement") for k in ("Reshape", "Flatten", "Squeeze",
                                               "Unsqueeze", "Identity")] == ["view"] * 5
    assert [family_of(k, "movement") for k in ("Transpose", "Concat", "Cast")] == \
        ["movement"] * 3
    assert GroupFeatures("Reshape", "view", {}).keys() == ("Reshape", "view", "generic")
    assert GroupFeatures("Cast", "movement", {}).keys() == ("Cast", "movement", "generic")
    by = {c.name: c for c in candidates("view", {"bytes", "flops", "macs"})}
    assert by["linear-nonneg"].features == ("bytes",)  # priced on bytes, never on work


def test_a_fit_learns_what_a_narrow_tile_costs():
    # runtime = 20 ps per MAC plus 10 ps per wasted MAC: narrow convs run at a fraction of
    # the rate, which a map on MACs and bytes alone cannot follow
    rng = np.random.default_rng(4)
    records = []
    for i in range(60):
        c, o = 8 * int(rng.integers(1, 40)), int(rng.choice([8, 16, 24, 32, 64, 128]))
        h = int(rng.integers(6, 30))
        v = rows_from_records([grouped_conv_record(i, c, o, 1, h=h)])[0].features.values
        t = 20e-12 * v["macs"] + 10e-12 * v["macs_narrow"]
        records.append(grouped_conv_record(i, c, o, 1, runtime=t, h=h))
    km = fit_key("Conv", "kernel", "conv", rows_from_records(records),
                 only=["linear-nonneg"])
    fmap = km.runtime
    assert fmap is not None and "macs_narrow" in fmap.features
    probe = rows_from_records([grouped_conv_record(99, 64, 8, 1, h=20)])[0].features.values
    x = np.asarray([[probe[f] for f in fmap.features]])
    assert fmap.predict(x).y[0] == pytest.approx(
        20e-12 * probe["macs"] + 10e-12 * probe["macs_narrow"], rel=1e-3)
