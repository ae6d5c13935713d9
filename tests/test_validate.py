"""`onnx-energy validate`: measured against predicted, the scores, and both PNGs."""

from __future__ import annotations

import json
import math
import sys

import pytest
from conftest import make_model, weights
from onnx import TensorProto, helper

from onnx_energy.cli import main
from onnx_energy.fusion import NO_FUSION
from onnx_energy.profile import FittedMap, KeyModels, Profile
from onnx_energy.validate import scores

F = TensorProto.FLOAT
PNG = b"\x89PNG\r\n\x1a\n"


def test_scores_by_hand():
    s = scores([(1.0, 1.1), (2.0, 1.8), (4.0, 4.4)], inside=2)
    rel = [0.1, -0.1, 0.1]
    assert s.mape == pytest.approx(0.1)
    assert s.rmspe == pytest.approx(math.sqrt(sum(r * r for r in rel) / 3))
    ss_res = 0.01 + 0.04 + 0.16
    ss_tot = sum((m - 7 / 3) ** 2 for m in (1.0, 2.0, 4.0))
    assert s.r2 == pytest.approx(1 - ss_res / ss_tot)
    assert s.n == 3 and s.inside == 2
    one = scores([(1.0, 1.5)])
    assert one.mape == pytest.approx(0.5) and one.r2 is None and "two models" in one.note
    assert scores([]).n == 0


def files(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Flatten", ["r"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "g"], ["y"], name="fc", transB=1)]
    m = make_model(nodes, [("x", [1, 2, 8, 8], F)], [("y", None, F)],
                   {"w": weights(4, 2, 3, 3), "g": weights(5, 256)})
    model = tmp_path / "tiny.onnx"
    model.write_bytes(m.SerializeToString())
    fmap = FittedMap(target="runtime_s", transform="log", features=["flops"],
                     log_features=[True], mean=[0.0], scale=[1.0], powers=[[0], [1]],
                     coef=[math.log(1e-9), 1.0], cov=[[1e-4, 0.0], [0.0, 0.0]], sigma2=0.04,
                     dof=50, t_quantile=1.68, low=[0.0], high=[20.0])
    p = Profile(name="tiny-hand", kind="calibrated", provider="cpu", threads=1,
                sensor="none", runner="onnxruntime", hardware={}, confidence=0.9,
                fusion=NO_FUSION,
                models={"generic": KeyModels("generic", "generic", "generic", runtime=fmap)},
                session_overhead_s=2e-6)
    profile = tmp_path / "tiny.profile.json"
    p.save(profile)
    return str(model), str(profile)


def test_validate_runtime_only_with_table_json_and_both_pngs(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    model, profile = files(tmp_path)
    plots = tmp_path / "plots"
    code = main(["validate", "--profile", profile, model, "--sensor", "none",
                 "--min-window", "0.05", "--repeats", "2", "--format", "json",
                 "--plot", str(plots)])
    out, err = capsys.readouterr()
    assert code == 0, err
    d = json.loads(out)
    m = d["models"][0]
    rt = m["runtime_s"]
    assert rt["measured"] > 0 and rt["predicted"] > 0
    assert rt["error"] == pytest.approx(rt["predicted"] / rt["measured"] - 1)
    assert m["energy_j"]["measured"] is None and "no sensor" in m["energy_j"]["note"]
    assert d["scores"]["runtime"]["n"] == 1
    assert d["scores"]["runtime"]["mape"] == pytest.approx(abs(rt["error"]))
    assert d["scores"]["energy"]["n"] == 0
    ops = m["by_op_type"]
    assert ops["Conv"]["predicted_s"] > 0 and ops["Conv"]["measured_s"] > 0
    assert ops["Gemm"]["measured_s"] > 0
    scatter, bars = plots / "scatter-runtime.png", plots / "breakdown-tiny.png"
    assert scatter.read_bytes()[:8] == PNG and bars.read_bytes()[:8] == PNG
    assert not (plots / "scatter-energy.png").exists()  # no sensor: nothing to plot


def test_validate_table(capsys, tmp_path):
    model, profile = files(tmp_path)
    code = main(["validate", "--profile", profile, model, "--sensor", "none",
                 "--min-window", "0.05", "--repeats", "1", "--no-per-node"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "measured runtime" in out and "predicted" in out and "error" in out
    assert "runtime overall: MAPE" in out and "RMSPE" in out
    assert "energy overall: — (nothing both measured and predicted)" in out


def test_plot_without_matplotlib_says_how_to_install(capsys, tmp_path, monkeypatch):
    model, profile = files(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code = main(["validate", "--profile", profile, model, "--plot", str(tmp_path / "p")])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and "pip install 'onnx-energy[plot]'" in err


def test_theoretical_without_a_sensor_has_nothing_to_compare(capsys, tmp_path):
    model, _ = files(tmp_path)
    code = main(["validate", "--profile", "theoretical", model, "--sensor", "none"])
    _, err = capsys.readouterr()
    assert code == 3 and "nothing to compare" in err


def test_drift_of_the_speed_probe_is_reported_never_applied(tmp_path):
    from onnx_energy.profile import load_profile
    from onnx_energy.render.validate import render_table
    from onnx_energy.validate import validate_models

    model, path = files(tmp_path)
    profile = load_profile(path)
    profile.speed_probe_s = 1e-3
    times = iter([1.25e-3])  # the probe runs 25% slower than while calibrating
    v = validate_models([model], profile, sensor="none", min_window=0.05, repeats=1,
                        per_node=False, probe=lambda: next(times))
    m = v.models[0]
    assert m.probe_s == 1.25e-3 and m.speed_ratio == pytest.approx(1.25)
    # the prediction is the profile's, whatever the drift; the adjusted error divides the
    # measurement by the ratio
    assert m.runtime.predicted == pytest.approx(
        validate_models([model], load_profile(path), sensor="none", min_window=0.05,
                        repeats=1, per_node=False).models[0].runtime.predicted)
    assert m.error_at_calibrated_speed == pytest.approx(
        m.runtime.predicted / (m.runtime.measured / 1.25) - 1)
    assert v.speed_probe == {"kernel": "MatMul 256x256x256 float32", "calibrated_s": 1e-3,
                             "measured_s": 1.25e-3, "ratio": pytest.approx(1.25)}
    assert any("25% slower" in w for w in v.warnings)
    d = v.to_dict()
    assert d["models"][0]["speed_ratio"] == pytest.approx(1.25)
    assert "speed probe: 1.25 ms per run now, 1 ms while calibrating (×1.25)" in \
        render_table(v)


def test_a_profile_without_a_probe_is_validated_without_one(tmp_path):
    from onnx_energy.profile import load_profile
    from onnx_energy.validate import validate_models

    model, path = files(tmp_path)

    def probe() -> float:
        raise AssertionError("no probe to compare with: it must not run")

    v = validate_models([model], load_profile(path), sensor="none", min_window=0.05,
                        repeats=1, per_node=False, probe=probe)
    assert v.speed_probe is None and v.models[0].speed_ratio is None
    assert v.models[0].error_at_calibrated_speed is None
    assert v.models[0].runtime.error is not None
