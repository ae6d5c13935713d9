"""Old import paths kept for one release: each resolves to the module that replaced it."""

from __future__ import annotations

import importlib
import sys
import warnings


def alias_module(old: str, new: str) -> None:
    """Make ``import old`` give the module ``new`` itself (so monkeypatching either affects
    both), with a DeprecationWarning naming the new path."""
    warnings.warn(f"{old} moved to {new}; the old path will be removed in the next release",
                  DeprecationWarning, stacklevel=3)
    sys.modules[old] = importlib.import_module(new)
