"""Click options shared by several commands, defined once."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def _parse_dims(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> dict[str, int]:
    dims: dict[str, int] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{item!r} is not NAME=VALUE")
        try:
            dims[name.strip()] = int(value)
        except ValueError:
            raise click.BadParameter(f"{item!r}: {value!r} is not an integer") from None
    return dims


def _parse_input_shapes(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> dict[str, list[int]]:
    shapes: dict[str, list[int]] = {}
    for item in values:
        name, sep, text = item.rpartition("=")
        if not sep or not name.strip() or not text:
            raise click.BadParameter(f"{item!r} is not NAME=DIMxDIMx... (e.g. x=1x3x224x224)")
        try:
            dims = [int(d) for d in text.lower().split("x")]
        except ValueError:
            raise click.BadParameter(
                f"{item!r}: {text!r} is not dims joined by x (e.g. 1x3x224x224)") from None
        if any(d < 0 for d in dims):
            raise click.BadParameter(f"{item!r}: a dim is negative")
        shapes[name.strip()] = dims
    return shapes


def input_shape_option(fn: F) -> F:
    """``--input NAME=1x3x224x224`` (repeatable): a graph input's whole shape."""
    return click.option(
        "--input", "input_shapes", multiple=True, callback=_parse_input_shapes,
        metavar="NAME=DIMS",
        help="Set a graph input's shape (repeatable), e.g. --input x=1x3x48x192: for inputs "
             "whose dims have no names, are ?/-1, or are fixed (named dims bind their name).",
    )(fn)


def model_argument(fn: F) -> F:
    return click.argument("model", type=click.Path(dir_okay=False, path_type=str))(fn)


def dim_options(fn: F) -> F:
    """``--dim NAME=VALUE`` (repeatable) and ``--batch-size N``."""
    fn = click.option(
        "--batch-size", type=click.IntRange(min=1), default=None,
        help="Bind the symbolic leading dim of every graph input to N.",
    )(fn)
    return click.option(
        "--dim", "dims", multiple=True, callback=_parse_dims, metavar="NAME=VALUE",
        help="Bind a symbolic dimension (repeatable), e.g. --dim seq=128.",
    )(fn)


def format_option(*choices: str, text: str = "Output format.") -> Callable[[F], F]:
    return click.option(
        "--format", "fmt", type=click.Choice(choices), default=choices[0], show_default=True,
        help=text,
    )


#: Width of tables written to a pipe or a file.
PIPE_WIDTH = 100


def output_width() -> int:
    """Characters per line for tables: COLUMNS if set, else the terminal's width, else 100
    (a pipe or a file), at least 60."""
    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return max(int(env), 60)
    if sys.stdout.isatty():
        return max(shutil.get_terminal_size((PIPE_WIDTH, 24)).columns, 60)
    return PIPE_WIDTH


def warn(message: str) -> None:
    """One warning line on stderr, in the tool's one format."""
    click.echo(f"onnx-energy: warning: {message}", err=True)


class ProgressLine:
    """One status line on stderr: rewritten in place on a terminal, a line per step otherwise.

    ``tty_only`` keeps pipes and logs clean (nothing is written off a terminal);
    ``after_s`` stays silent until the work has run that long, so short runs do not flicker;
    ``log_every_s`` writes at most one line that often off a terminal (a long sweep's log
    gets a line every few seconds, not one per item).
    """

    def __init__(self, prefix: str, enabled: bool = True, tty_only: bool = False,
                 after_s: float = 0.0, log_every_s: float = 0.0) -> None:
        self.prefix = prefix
        self.tty = sys.stderr.isatty()
        self.enabled = enabled and (self.tty or not tty_only)
        self.after_s = after_s
        self.log_every_s = log_every_s
        self.start = time.monotonic()
        self.last_logged: float | None = None
        self.shown = False

    def __call__(self, msg: str) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.start < self.after_s:
            return
        if self.tty:
            sys.stderr.write(f"\r\033[K{self.prefix}: {msg}")
            self.shown = True
        else:
            if self.last_logged is not None and now - self.last_logged < self.log_every_s:
                return
            self.last_logged = now
            sys.stderr.write(f"{self.prefix}: {msg}\n")
        sys.stderr.flush()

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self.shown = False


def carbon_options(fn: F) -> F:
    """``--carbon-intensity G_PER_KWH`` and ``--country ISO3`` (codecarbon's offline data)."""
    fn = click.option(
        "--country", default=None, metavar="ISO3",
        help="Grid carbon intensity of this country (ISO 3166 alpha-3, e.g. FRA) from "
             "codecarbon's offline data (pip install 'onnx-energy[carbon]').",
    )(fn)
    return click.option(
        "--carbon-intensity", type=float, default=None, metavar="G_PER_KWH",
        help="Grid carbon intensity in gCO2-eq/kWh: adds grams of CO2-eq per inference and "
             "per million inferences.",
    )(fn)


def profile_option(help_text: str) -> Callable[[F], F]:
    """``--profile NAME|PATH`` (default: the built-in theoretical profile)."""
    return click.option("--profile", "profile_ref", default=None, metavar="PROFILE",
                        help=help_text)
