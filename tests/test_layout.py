"""The package layout's public promises: the callable measure package and the old paths."""

from __future__ import annotations

import importlib
import sys
import warnings

import pytest

import onnx_energy
from onnx_energy import errors


def test_onnx_energy_measure_is_callable_and_is_the_package() -> None:
    import onnx_energy.measure.sensors  # noqa: F401  (submodule import must not break it)

    assert callable(onnx_energy.measure)
    assert onnx_energy.measure.measure.__module__ == "onnx_energy.measure.measurement"
    assert onnx_energy.measure.sensors.POWERCAP_ROOT == "/sys/class/powercap"


@pytest.mark.parametrize("old,new", [
    ("onnx_energy.calibration.sensors", "onnx_energy.measure.sensors"),
    ("onnx_energy.calibration.records", "onnx_energy.measure.records"),
    ("onnx_energy.calibration.runner", "onnx_energy.measure.runner"),
    ("onnx_energy.calibration.measure", "onnx_energy.measure"),
])
def test_old_module_paths_warn_and_alias_the_new_module(old: str, new: str) -> None:
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=new.replace(".", r"\.")):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)


def test_old_names_on_calibration_warn_and_resolve() -> None:
    import onnx_energy.calibration as calibration
    from onnx_energy.measure.measurement import measure

    vars(calibration).pop("measure", None)  # set by an earlier import of the old submodule
    with pytest.warns(DeprecationWarning, match=r"onnx_energy\.measure\.measure"):
        old = calibration.measure  # the callable measure package
    assert callable(old) and old.measure is measure
    with pytest.warns(DeprecationWarning, match="onnx_energy.measure.records.RecordWriter"):
        assert calibration.RecordWriter.__module__ == "onnx_energy.measure.records"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(AttributeError):
            _ = calibration.no_such_name


def test_every_user_error_lives_in_errors_with_an_exit_code() -> None:
    import pkgutil

    seen = []
    for info in pkgutil.walk_packages(onnx_energy.__path__, "onnx_energy."):
        if info.name.startswith(("onnx_energy.calibration.", "onnx_energy.cli")) or \
                info.name.endswith("__main__"):
            continue  # deprecated aliases; the CLI only catches
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (isinstance(value, type) and issubclass(value, errors.OnnxEnergyError)
                    and value.__module__ == info.name):
                seen.append(value)
    assert seen and all(v.__module__ == "onnx_energy.errors" for v in seen)
    assert errors.StrictModeError.exit_code == 3
    assert errors.MeasurementInterrupted.exit_code == 130
    assert errors.ModelLoadError.exit_code == 2
