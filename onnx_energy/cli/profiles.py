"""`onnx-energy profiles`: the hardware profiles available, and what one holds."""

from __future__ import annotations

import click

from .options import format_option


@click.group("profiles")
def profiles_command() -> None:
    """List hardware profiles and show what one holds."""


@profiles_command.command("list")
def list_command() -> None:
    """The profiles in the user profile directory (use them with --profile NAME)."""
    from ..profile_store import list_user_profiles, user_profile_dir

    entries = list_user_profiles()
    click.echo(f"user profiles in {user_profile_dir()}"
               + ("" if entries else ": none (write one there with 'onnx-energy calibrate ... "
                  "--out DIR/NAME.json', or pass any file with --profile PATH)"))
    for e in entries:
        click.echo(f"  {e.name:32s} {e.kind:11s} {e.provider or '?'}/{e.threads or '?'} threads, "
                   f"sensor {e.sensor}  ({e.path})")


@profiles_command.command("show")
@click.argument("profile")
@format_option("table", "json")
def show_command(profile: str, fmt: str) -> None:
    """What PROFILE (a path or a name) holds and how good each fitted map is."""
    from ..profile import load_profile
    from ..profile_store import resolve_profile
    from ..render.prediction import PROFILE_RENDERERS

    click.echo(PROFILE_RENDERERS[fmt](load_profile(resolve_profile(profile))), nl=False)
