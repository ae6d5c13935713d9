"""Every error a user can fix, and the exit code the CLI maps it to.

One table for the whole tool. The CLI prints such an error as one line
(``onnx-energy: error: …``) and exits with its code; nothing else reaches the user as a
traceback.

- **1** (`BudgetExceeded`): a budget does not hold (``check``).
- **2** (`OnnxEnergyError` and every class here without a code of its own): bad input, the
  model, a file, an option or the machine cannot do what was asked.
- **3** (`StrictModeError`, `UnjudgeableError`): the question cannot be answered as asked
  (``--strict`` with gaps in the counts, a budget that cannot be judged).
- **130** (`MeasurementInterrupted`, `CalibrationInterrupted`): Ctrl-C; what was recorded so far
  stays.

Internal signals that never reach the user (``ShapeUnknownError`` inside cost rules,
``SensorReadError`` for one failed reading, ``CannotFoldError``) are not here: they are
caught where they are raised.
"""

from __future__ import annotations

EXIT_BUDGET = 1
EXIT_BAD_INPUT = 2
EXIT_UNJUDGEABLE = 3
EXIT_INTERRUPTED = 130


class OnnxEnergyError(Exception):
    """Base of every error that is reported to the user as one line."""

    exit_code = EXIT_BAD_INPUT


# --------------------------------------------------------------------- models and graphs


class ModelLoadError(OnnxEnergyError):
    """The file is missing, is not an ONNX model, or is malformed."""


class UnsafeModelError(ModelLoadError):
    """The model points outside its folder (external data) or at a device."""


class InvalidGraphError(OnnxEnergyError):
    """The graph is structurally broken (cycles, dangling inputs, absurd dims)."""


class BindingError(OnnxEnergyError):
    """A ``--dim`` or ``--batch-size`` binding does not fit the model."""


class TransistorTableError(OnnxEnergyError):
    """A transistor table file is missing, not JSON, or malformed."""


# ----------------------------------------------------------------------------- measurement


class MeasurementError(OnnxEnergyError):
    """The model cannot be run as asked (provider missing, unbound dims, odd input types)."""


class MissingWeightsError(MeasurementError):
    """The model's weights (external data) are absent: it can be analysed, not run."""


class MeasurementFailed(OnnxEnergyError):
    """No window could be completed (every sensor read failed)."""


class SensorUnavailable(OnnxEnergyError):
    """The sensor cannot be used on this machine; the message says why and what to do."""


class RecordFileError(OnnxEnergyError):
    """The record file cannot be opened for appending."""


class MeasurementInterrupted(OnnxEnergyError):
    """Ctrl-C during a measurement: the records written so far stay."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, windows: int, out: str | None) -> None:
        where = f"; they are in {out}" if out and windows else ""
        super().__init__(f"interrupted after {windows} complete window(s){where}")
        self.windows = windows
        self.out = out


# ----------------------------------------------------------------- calibration and prediction


class CalibrationInterrupted(OnnxEnergyError):
    """Ctrl-C during a calibration sweep: every finished item's records stay."""

    exit_code = EXIT_INTERRUPTED


class ProfileError(OnnxEnergyError):
    """A profile file is missing, not JSON, not a profile, or malformed."""


class FitError(OnnxEnergyError):
    """Records cannot be fitted (none usable, or mixed configurations)."""


# ------------------------------------------------------------------------ answers to questions


class BudgetError(OnnxEnergyError):
    """A budget cannot be read: a bad quantity or unit, or a malformed budget table."""


class CarbonError(OnnxEnergyError):
    """A carbon intensity cannot be had (bad value, unknown country, codecarbon missing)."""


class ComparisonError(OnnxEnergyError):
    """``compare``/``scale``/``validate`` options do not fit the models (an --error for a
    model not given, an empty or bad --dim range)."""


class PlotError(OnnxEnergyError):
    """``--plot`` was asked for without matplotlib (the ``plot`` extra), or cannot write."""


class StrictModeError(OnnxEnergyError):
    """``--strict`` was given and some ops have no cost rule or unresolved shapes."""

    exit_code = EXIT_UNJUDGEABLE


class UnjudgeableError(OnnxEnergyError):
    """A budget cannot be judged (e.g. latency with a theoretical profile)."""

    exit_code = EXIT_UNJUDGEABLE


class BudgetExceeded(OnnxEnergyError):
    """At least one budget does not hold."""

    exit_code = EXIT_BUDGET
