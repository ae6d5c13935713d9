"""Where profiles live: the built-in profile, explicit paths, and a user profile directory.

The built-in ``theoretical-45nm`` (alias ``theoretical``) ships in ``onnx_energy/data`` and
is the default of every analysis without ``--profile``.

The user directory is ``$ONNX_ENERGY_PROFILES`` when set, else the platform's config
directory: ``$XDG_CONFIG_HOME/onnx-energy/profiles`` (default ``~/.config``) on Linux,
``~/Library/Application Support/onnx-energy/profiles`` on macOS, and
``%APPDATA%\\onnx-energy\\profiles`` on Windows. ``--profile NAME`` finds ``NAME.json`` there
(or a profile whose ``name`` is NAME); anything that looks like a path is used as one.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .profile import Profile, ProfileError, load_profile

#: Built-in profiles by name (aliases included) -> their data file.
DATA_DIR = Path(__file__).resolve().parent / "data"
BUILTIN = {"theoretical-45nm": DATA_DIR / "theoretical_45nm.json"}
ALIASES = {"theoretical": "theoretical-45nm"}
DEFAULT_PROFILE = "theoretical-45nm"

_default: Profile | None = None


def default_profile() -> Profile:
    """The profile of an analysis without ``--profile`` (loaded once)."""
    global _default
    if _default is None:
        _default = load_profile(BUILTIN[DEFAULT_PROFILE])
        _default.path = None  # reports name it; the install location is no part of it
    return _default


def open_profile(ref: str) -> Profile:
    """``--profile REF`` loaded: a built-in name, a path, or a user profile's name."""
    if ALIASES.get(ref, ref) == DEFAULT_PROFILE:
        return default_profile()
    return load_profile(resolve_profile(ref))


def user_profile_dir() -> Path:
    """The user profile directory (it need not exist)."""
    env = os.environ.get("ONNX_ENERGY_PROFILES")
    if env:
        return Path(env).expanduser()
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    elif os.name == "nt":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "onnx-energy" / "profiles"


@dataclass(frozen=True)
class ProfileEntry:
    """A profile file found in the user directory."""

    name: str
    path: Path
    kind: str
    provider: str | None
    threads: int | None
    sensor: str | None


def list_user_profiles() -> list[ProfileEntry]:
    """The profiles in the user directory (unreadable files are skipped)."""
    folder = user_profile_dir()
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if not isinstance(data, dict) or not str(data.get("schema", "")).startswith(
                "onnx-energy/profile/"):
            continue
        out.append(ProfileEntry(str(data.get("name") or path.stem), path,
                                str(data.get("kind", "?")), data.get("provider"),
                                data.get("threads"), data.get("sensor")))
    return out


def resolve_profile(ref: str) -> Path:
    """The file of ``--profile REF``: a built-in name, a path, or a name in the user profile
    directory."""
    name = ALIASES.get(ref, ref)
    if name in BUILTIN:
        return BUILTIN[name]
    path = Path(ref).expanduser()
    if path.suffix == ".json" or os.sep in ref or (os.altsep and os.altsep in ref) or \
            path.exists():
        return path
    for entry in list_user_profiles():
        if entry.path.stem == ref or entry.name == ref:
            return entry.path
    raise ProfileError(f"no profile {ref!r}: not a file, and not a name in "
                       f"{user_profile_dir()} (see 'onnx-energy profiles list')")
