"""`onnx-energy check`: exit codes and messages for every budget, budget files, units."""

from __future__ import annotations

import json
import math

import pytest
from conftest import make_model, weights
from onnx import TensorProto, helper

from onnx_energy.budgets import parse_quantity
from onnx_energy.cli import main
from onnx_energy.errors import BudgetError
from onnx_energy.fusion import NO_FUSION
from onnx_energy.profile import FittedMap, KeyModels, Profile

F = TensorProto.FLOAT
PJ = 1e-12
# MatMul x[1,8] @ w[8,4]: 32 mul + 28 add at fp32, 176 bytes from SRAM (theoretical profile)
ENERGY = (28 * 0.9 + 32 * 3.7 + 176 * 1.25) * PJ  # 363.6 pJ
UPPER = (28 * 0.9 + 32 * 3.7 + 176 * 160) * PJ
MACS, PARAMS, PEAK = 32, 32, 32 + 16  # x and y live while the MatMul runs


def model_file(tmp_path, name="m.onnx", shape=(1, 8)):
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    m = make_model(nodes, [("x", list(shape), F)], [("y", None, F)], {"w": weights(8, 4)})
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(m.SerializeToString())
    return str(path)


def runtime_profile(tmp_path, energy: bool = False):
    """runtime = 1 µs × (1 + FLOPs) for every kernel (generic), no session overhead."""
    def fmap(target, scale):
        return FittedMap(target=target, transform="log", features=["flops"],
                         log_features=[True], mean=[0.0], scale=[1.0], powers=[[0], [1]],
                         coef=[math.log(scale), 1.0], cov=[[0.0, 0.0], [0.0, 0.0]],
                         sigma2=0.01, dof=100, t_quantile=1.645, low=[0.0], high=[30.0])
    km = KeyModels("generic", "generic", "generic", runtime=fmap("runtime_s", 1e-6))
    if energy:
        km.energy, km.energy_form = fmap("energy_j", 1e-5), "direct"
    p = Profile(name="hand", kind="calibrated", provider="cpu", threads=1,
                sensor="rapl" if energy else "none", runner="onnxruntime", hardware={},
                confidence=0.9, fusion=NO_FUSION, models={"generic": km})
    path = tmp_path / "hand.json"
    p.save(path)
    return str(path)


RUNTIME = 1e-6 * (1 + 2 * 32)  # FLOPs of the MatMul: 2 per MAC


def check(capsys, *args):
    code = main(["check", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_every_budget_holds(capsys, tmp_path):
    m = model_file(tmp_path)
    code, out, err = check(capsys, m, "--max-energy", "1nJ", "--max-macs", "32",
                           "--max-params", "1k", "--max-memory", "48B", "--max-co2", "1ug",
                           "--carbon-intensity", "400", "--format", "json", "--no-config")
    assert code == 0, err
    d = json.loads(out)
    assert d["passed"] and d["exit_code"] == 0
    got = {b["budget"]: b["value"] for b in d["models"][0]["budgets"]}
    assert got["max-energy"] == pytest.approx(ENERGY)
    assert got["max-macs"] == MACS and got["max-params"] == PARAMS
    assert got["max-memory"] == PEAK
    assert got["max-co2"] == pytest.approx(ENERGY / 3.6e6 * 400)
    assert all(b["status"] == "pass" for b in d["models"][0]["budgets"])


@pytest.mark.parametrize("flag, limit, words", [
    ("--max-energy", "300pJ", ["max-energy", "0.3636 nJ > 0.3 nJ", "+21.2%"]),
    ("--max-macs", "31", ["max-macs", "32 > 31", "+3.2%"]),
    ("--max-params", "16", ["max-params", "32 > 16", "+100.0%"]),
    ("--max-memory", "40B", ["max-memory", "48 B > 40 B", "+20.0%"]),
])
def test_a_budget_exceeded_exits_1_naming_it_and_by_how_much(capsys, tmp_path, flag, limit,
                                                             words):
    code, out, err = check(capsys, model_file(tmp_path), flag, limit, "--no-config")
    assert code == 1
    assert err.startswith("onnx-energy: error: budget exceeded:") and err.count("\n") == 1
    for w in words:
        assert w in err, (w, err)
    assert "fail" in out


def test_latency_and_energy_with_a_calibrated_profile(capsys, tmp_path):
    m, p = model_file(tmp_path), runtime_profile(tmp_path, energy=True)
    code, out, err = check(capsys, m, "--profile", p, "--max-latency", "60us", "--no-config")
    assert code == 1 and "max-latency 65 µs > 60 µs" in err
    code, out, err = check(capsys, m, "--profile", p, "--max-latency", "70us",
                           "--max-energy", "1mJ", "--no-config")
    assert code == 0, err  # 65 µs; energy 10 µJ × 65 = 650 µJ


def test_upper_confidence_judges_the_interval_end(capsys, tmp_path):
    m = model_file(tmp_path)
    limit = f"{(ENERGY + UPPER) / 2 / PJ:.0f}pJ"  # between the value and the upper end
    code, _, err = check(capsys, m, "--max-energy", limit, "--no-config")
    assert code == 0, err
    code, out, err = check(capsys, m, "--max-energy", limit, "--confidence", "upper",
                           "--no-config")
    assert code == 1 and "(upper)" in err


def test_latency_with_the_theoretical_profile_cannot_be_judged(capsys, tmp_path):
    code, out, err = check(capsys, model_file(tmp_path), "--max-latency", "20ms",
                           "--max-macs", "1G", "--no-config")
    assert code == 3
    assert "predicts no runtime" in err and "--profile" in err
    assert "unjudgeable" in out and "pass" in out  # the MACs still judged


def test_energy_with_a_profile_without_a_sensor_cannot_be_judged(capsys, tmp_path):
    code, _, err = check(capsys, model_file(tmp_path), "--profile",
                         runtime_profile(tmp_path), "--max-energy", "1J", "--no-config")
    assert code == 3 and "has no energy model" in err and "'none'" in err


def test_incomplete_analysis_is_unjudgeable_under_and_failed_over(capsys, tmp_path):
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
             helper.make_node("NoSuchOp", ["h"], ["y"], name="mystery", domain="custom")]
    mm = make_model(nodes, [("x", [1, 8], F)], [("y", None, F)], {"w": weights(8, 4)},
                    extra_opsets={"custom": 1})
    path = tmp_path / "partial.onnx"
    path.write_bytes(mm.SerializeToString())
    code, out, err = check(capsys, str(path), "--max-macs", "1G", "--no-config")
    assert code == 3 and "incomplete" in err and "without a cost rule" in err
    code, out, err = check(capsys, str(path), "--max-macs", "10", "--no-config")
    assert code == 1 and "≥ 32" in err  # a lower bound already over


def test_unbound_dims_are_unjudgeable_and_named(capsys, tmp_path):
    # (a non-leading dim: an unbound leading one alone would be taken as batch 1)
    m = model_file(tmp_path, shape=(2, "n", 8))
    code, _, err = check(capsys, m, "--max-energy", "1J", "--no-config")
    assert code == 3 and "no node of the model has a known cost" in err
    code, _, err = check(capsys, m, "--max-macs", "1G", "--no-config")
    assert code == 3 and "bind n" in err
    code, _, err = check(capsys, m, "--max-macs", "1G", "--dim", "n=2", "--no-config")
    assert code == 0, err


def test_budgets_from_pyproject_by_glob_found_upward(capsys, tmp_path, monkeypatch):
    small = model_file(tmp_path, "models/small.onnx")
    other = model_file(tmp_path, "vendor/other.onnx")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n'
        '[[tool.onnx-energy.budget]]\nmodels = "models/*.onnx"\nmax-macs = "1G"\n'
        'max-energy = "50mJ"\n\n'
        '[[tool.onnx-energy.budget]]\nmodels = ["*.onnx"]\nmax-params = "16"\n')
    sub = tmp_path / "models" / "deep"
    sub.mkdir()
    monkeypatch.chdir(sub)
    code, out, err = check(capsys, small, "--format", "json")
    assert code == 1  # max-params 16 from the second table (file-name glob)
    d = json.loads(out)
    assert d["config"] == str(tmp_path / "pyproject.toml")
    by = {b["budget"]: b for b in d["models"][0]["budgets"]}
    assert set(by) == {"max-macs", "max-energy", "max-params"}
    assert by["max-macs"]["source"] == "pyproject.toml budget #1"
    assert by["max-params"]["status"] == "fail"
    # the command line overrides the file
    code, out, err = check(capsys, small, "--max-params", "1k", "--format", "json")
    assert code == 0, err
    assert {b["budget"]: b["source"] for b in json.loads(out)["models"][0]["budgets"]}[
        "max-params"] == "--max-params"
    # vendor/other.onnx matches only the name glob
    code, out, _ = check(capsys, other, "--format", "json")
    assert [b["budget"] for b in json.loads(out)["models"][0]["budgets"]] == ["max-params"]


def test_onnx_energy_toml_takes_budget_tables_and_settings(capsys, tmp_path, monkeypatch):
    m = model_file(tmp_path, "m.onnx", shape=("n", 8))
    (tmp_path / "onnx-energy.toml").write_text(
        '[[budget]]\nmodels = "**/*.onnx"\nmax-energy = "1nJ"\ndims = { n = 1 }\n'
        'confidence = "upper"\n')
    monkeypatch.chdir(tmp_path)
    code, out, err = check(capsys, m)
    assert code == 1 and "(upper)" in err  # upper end 28 nJ > 1 nJ, with n bound to 1


@pytest.mark.parametrize("text, words", [
    ('[[tool.onnx-energy.budget]]\nmodels = "*.onnx"\nmax-enrgy = "1J"\n', ["max-enrgy",
                                                                            "unknown key"]),
    ('[[tool.onnx-energy.budget]]\nmodels = "*.onnx"\nmax-energy = "50"\n', ["needs a unit"]),
    ('[[tool.onnx-energy.budget]]\nmax-energy = "1J"\n', ["'models'"]),
    ('[[tool.onnx-energy.budget]\n', ["not valid TOML"]),
])
def test_bad_budget_files_are_one_line_errors(capsys, tmp_path, monkeypatch, text, words):
    m = model_file(tmp_path)
    (tmp_path / "pyproject.toml").write_text(text)
    monkeypatch.chdir(tmp_path)
    code, out, err = check(capsys, m)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    for w in words:
        assert w in err


@pytest.mark.parametrize("args, words", [
    (["missing.onnx", "--max-macs", "1G"], ["missing.onnx"]),
    (["{m}"], ["no budget to check"]),
    (["{m}", "--max-latency", "20"], ["--max-latency", "needs a unit"]),
    (["{m}", "--max-memory", "200Mb"], ["bits"]),
    (["{m}", "--max-energy", "50MJ"], ["for milli write mJ"]),
    (["{m}", "--max-co2", "1g"], ["max-co2 needs a carbon intensity"]),
    (["{m}", "--max-co2", "1g", "--country", "XX1"], ["ISO 3166"]),
])
def test_bad_input_exits_2(capsys, tmp_path, args, words):
    m = model_file(tmp_path)
    code, out, err = check(capsys, *[a.format(m=m) for a in args], "--no-config")
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert "Traceback" not in err
    for w in words:
        assert w in err


def test_unbudgeted_models_are_listed_when_allowed(capsys, tmp_path):
    code, out, err = check(capsys, model_file(tmp_path), "--allow-unbudgeted", "--no-config")
    assert code == 0 and "no budget" in out


def test_markdown_is_a_table_for_a_pull_request(capsys, tmp_path):
    m = model_file(tmp_path)
    code, out, _ = check(capsys, m, "--max-energy", "300pJ", "--max-macs", "1G",
                         "--max-latency", "1ms", "--format", "markdown", "--no-config")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("### ❌ onnx-energy check: 1 of 3 budget(s) exceeded")
    table = [x for x in lines if x.startswith("|")]
    assert table[0] == "| model | budget | limit | value | status | margin |"
    assert table[1] == "|---|---|---:|---:|---|---|"
    assert len(table) == 5 and all(x.count("|") == 7 for x in table)
    row = {x.split("|")[2].strip(): x for x in table[2:]}
    assert "❌ fail" in row["max-energy"] and "✅ pass" in row["max-macs"]
    assert "⚠️ unjudgeable" in row["max-latency"]
    assert any(x.startswith("- `") and "predicts no runtime" in x for x in lines)


@pytest.mark.parametrize("text, kind, value", [
    ("50mJ", "energy", 0.05), ("50 mj", "energy", 0.05), ("2µJ", "energy", 2e-6),
    ("0.1Wh", "energy", 360.0), ("20ms", "time", 0.02), ("800us", "time", 8e-4),
    ("5G", "count", 5e9), ("5g", "count", 5e9), ("30M", "count", 3e7), ("30m", "count", 3e7),
    ("1.2e9", "count", 1.2e9), ("200MB", "bytes", 2e8), ("200mB", "bytes", 2e8),
    ("200MiB", "bytes", 200 * 2 ** 20), ("64KiB", "bytes", 65536), ("0.5mgCO2e", "mass", 5e-4),
])
def test_quantities_take_si_prefixes_and_are_case_safe(text, kind, value):
    assert parse_quantity(text, kind) == pytest.approx(value)


@pytest.mark.parametrize("text, kind", [("20", "time"), ("50MJ", "energy"), ("3Ms", "time"),
                                        ("200Mb", "bytes"), ("5x", "count"), ("-1J", "energy"),
                                        ("J", "energy")])
def test_ambiguous_or_bad_quantities_are_refused(text, kind):
    with pytest.raises(BudgetError):
        parse_quantity(text, kind)
