"""`onnx-energy profiles`: the hardware profiles available, and what one holds."""

from __future__ import annotations

import click

from .options import format_option


@click.group("profiles")
def profiles_command() -> None:
    """List hardware profiles and show what one holds."""


@profiles_command.command("list")
def list_command() -> None:
    """The built-in profile and those in the user profile directory (use them with
    --profile NAME; any profile file also works with --profile PATH)."""
    from ..profile_store import ALIASES, DEFAULT_PROFILE, list_user_profiles, user_profile_dir

    aliases = ", ".join(f"'{a}'" for a, n in ALIASES.items() if n == DEFAULT_PROFILE)
    click.echo("built-in")
    click.echo(f"  {DEFAULT_PROFILE:32s} theoretical (45 nm), energy only (Horowitz, ISSCC "
               f"2014);\n  {'':32s} the default without --profile (alias {aliases})")
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
    """What PROFILE (a path, a name, or 'theoretical') holds: each fitted map and how good it
    is, or the theoretical profile's energies per operation and dtype."""
    from ..profile_store import open_profile
    from ..render.prediction import PROFILE_RENDERERS

    click.echo(PROFILE_RENDERERS[fmt](open_profile(profile)), nl=False)
