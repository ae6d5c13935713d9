"""The `onnx-energy` command line: thin click commands over the library API."""

from __future__ import annotations

import os
import sys

import click

from .. import __version__
from ..errors import OnnxEnergyError
from .analyze import analyze_command
from .measure import measure_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="onnx-energy")
def cli() -> None:
    """Energy and time of ONNX models: static analysis, measurement, calibration."""


cli.add_command(analyze_command)
cli.add_command(measure_command)


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors become one line on stderr and an exit code, never a traceback.

    Set ONNX_ENERGY_DEBUG=1 to see the traceback of an unexpected error.
    """
    try:
        cli.main(args=argv, prog_name="onnx-energy", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("onnx-energy: interrupted", err=True)
        return 130
    except click.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `onnx-energy`: show the help
            exc.show()
            return exc.exit_code
        # One line, like every other user error (click's own format spans four lines).
        prog = exc.ctx.command_path if exc.ctx is not None else "onnx-energy"
        click.echo(f"{prog}: error: {exc.format_message()} (see '{prog} --help')", err=True)
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except OnnxEnergyError as exc:
        click.echo(f"onnx-energy: error: {_one_line(exc)}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("onnx-energy: interrupted", err=True)
        return 130
    except (MemoryError, RecursionError) as exc:  # what a hostile model can exhaust
        if os.environ.get("ONNX_ENERGY_DEBUG"):
            raise
        click.echo(f"onnx-energy: error: the model is too large or too deeply nested to "
                   f"analyse ({type(exc).__name__})", err=True)
        return 2
    except Exception as exc:  # a bug: still one line unless debugging
        if os.environ.get("ONNX_ENERGY_DEBUG"):
            raise
        click.echo(f"onnx-energy: internal error: {type(exc).__name__}: {_one_line(exc)} "
                   "(set ONNX_ENERGY_DEBUG=1 for the traceback)", err=True)
        return 1
    return 0


def _one_line(exc: BaseException) -> str:
    """An error message on one line (messages may quote multi-line model text)."""
    return " ".join(str(exc).split())


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
