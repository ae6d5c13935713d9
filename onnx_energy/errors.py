"""Errors a user can fix, each carrying the CLI exit code it maps to."""

from __future__ import annotations


class OnnxEnergyError(Exception):
    """Base of every error that is reported to the user as one line."""

    exit_code = 2


class ModelLoadError(OnnxEnergyError):
    """The file is missing, is not an ONNX model, or is malformed."""


class UnsafeModelError(ModelLoadError):
    """The model points outside its folder (external data) or at a device."""


class InvalidGraphError(OnnxEnergyError):
    """The graph is structurally broken (cycles, dangling inputs, absurd dims)."""


class BindingError(OnnxEnergyError):
    """A ``--dim`` or ``--batch-size`` binding does not fit the model."""


class StrictModeError(OnnxEnergyError):
    """``--strict`` was given and some ops have no cost rule or unresolved shapes."""

    exit_code = 3
