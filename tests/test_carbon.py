"""Carbon: gCO2-eq per inference from a given intensity or codecarbon's offline data."""

from __future__ import annotations

import json
import sys

import pytest
from conftest import make_model, run_cli, weights
from onnx import TensorProto, helper

from onnx_energy import carbon

PJ = 1e-12
ENERGY = (28 * 0.9 + 32 * 3.7 + 176 * 1.25) * PJ  # the MatMul below, theoretical profile


@pytest.fixture
def model_path(tmp_path):
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    m = make_model(nodes, [("x", [1, 8], TensorProto.FLOAT)], [("y", None, TensorProto.FLOAT)],
                   {"w": weights(8, 4)})
    path = tmp_path / "m.onnx"
    path.write_bytes(m.SerializeToString())
    return str(path)


@pytest.fixture
def fake_codecarbon(tmp_path, monkeypatch):
    """A stand-in codecarbon package with its energy-mix file (never imported)."""
    pkg = tmp_path / "site" / "codecarbon"
    (pkg / "data" / "private_infra").mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise RuntimeError('must not be imported')\n")
    (pkg / "data" / "private_infra" / "global_energy_mix.json").write_text(json.dumps(
        {"FRA": {"carbon_intensity": 56.0, "country_name": "France", "year": 2022}}))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    carbon._energy_mix.cache_clear()
    yield
    carbon._energy_mix.cache_clear()


def test_a_given_intensity_gives_grams_per_inference_and_per_million(capsys, model_path):
    code, out, err = run_cli(capsys, model_path, "--carbon-intensity", "400", "--format", "json")
    assert code == 0, err
    c = json.loads(out)["carbon"]
    g = ENERGY / 3.6e6 * 400
    assert c["g_per_inference"] == pytest.approx(g)
    assert c["g_per_million_inferences"] == pytest.approx(g * 1e6)
    assert c["source"] == "--carbon-intensity" and c["g_per_kwh"] == 400
    code, out, err = run_cli(capsys, model_path, "--carbon-intensity", "400")
    assert "CO2-eq   at 400 g/kWh (--carbon-intensity)" in out and "per million" in out


def test_country_from_codecarbon_offline_data(capsys, model_path, fake_codecarbon):
    code, out, err = run_cli(capsys, model_path, "--country", "fra", "--format", "json")
    assert code == 0, err
    c = json.loads(out)["carbon"]
    assert c["country"] == "FRA" and c["g_per_kwh"] == 56.0
    assert "France, 2022" in c["source"]
    assert c["g_per_inference"] == pytest.approx(ENERGY / 3.6e6 * 56)
    assert "codecarbon" not in sys.modules  # read as data, not imported
    code, out, err = run_cli(capsys, model_path, "--country", "ATL")
    assert code == 2 and "not in codecarbon's energy-mix data" in err


def test_without_codecarbon_country_says_how_to_install(capsys, model_path, monkeypatch):
    monkeypatch.setattr(carbon.importlib.util, "find_spec", lambda name: None)
    carbon._energy_mix.cache_clear()
    code, out, err = run_cli(capsys, model_path, "--country", "FRA")
    assert code == 2 and out == "" and "pip install 'onnx-energy[carbon]'" in err
    carbon._energy_mix.cache_clear()


@pytest.mark.parametrize("args, words", [
    (["--carbon-intensity", "1", "--country", "FRA"], ["not both"]),
    (["--carbon-intensity", "-5"], [">= 0"]),
    (["--country", "FR"], ["ISO 3166"]),
])
def test_bad_carbon_options(capsys, model_path, args, words):
    code, out, err = run_cli(capsys, model_path, *args)
    assert code == 2 and out == "" and err.count("\n") == 1
    for w in words:
        assert w in err
