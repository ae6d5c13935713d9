"""The `onnx-energy` command line: thin click commands over the library API."""

from __future__ import annotations

import importlib
import os
import sys

# numpy only does tiny shape arithmetic in this process: spinning up an OpenBLAS thread pool
# at import costs more than the whole analysis of a small model. Set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import click  # noqa: E402

from .. import __version__  # noqa: E402
from ..errors import OnnxEnergyError  # noqa: E402

#: Subcommands by name -> "module:attribute", imported only when used (measure pulls in
#: onnxruntime, which `analyze` never needs).
COMMANDS = {
    "analyze": "onnx_energy.cli.analyze:analyze_command",
    "calibrate": "onnx_energy.cli.calibrate:calibrate_command",
    "check": "onnx_energy.cli.check:check_command",
    "compare": "onnx_energy.cli.compare:compare_command",
    "measure": "onnx_energy.cli.measure:measure_command",
    "profiles": "onnx_energy.cli.profiles:profiles_command",
    "scale": "onnx_energy.cli.scale:scale_command",
    "validate": "onnx_energy.cli.validate:validate_command",
}


class LazyGroup(click.Group):
    """A click group that imports each subcommand's module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="onnx-energy")
def cli() -> None:
    """Energy and time of ONNX models: static cost analysis (analyze) and measurement with
    real energy sensors (measure)."""


PREFIX = "onnx-energy: error:"


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors become one line on stderr and an exit code, never a traceback.

    Every error, click's own usage errors included, starts with ``onnx-energy: error:``.
    Set ONNX_ENERGY_DEBUG=1 to see the traceback of an unexpected error.
    """
    try:
        cli.main(args=argv, prog_name="onnx-energy", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo(f"{PREFIX} interrupted", err=True)
        return 130
    except click.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `onnx-energy`: show the help
            exc.show()
            return exc.exit_code
        # One line, like every other user error (click's own format spans four lines).
        prog = exc.ctx.command_path if exc.ctx is not None else "onnx-energy"
        click.echo(f"{PREFIX} {exc.format_message()} (see '{prog} --help')", err=True)
        return exc.exit_code
    except click.ClickException as exc:
        click.echo(f"{PREFIX} {_one_line(exc.format_message())}", err=True)
        return exc.exit_code
    except OnnxEnergyError as exc:
        click.echo(f"{PREFIX} {_one_line(exc)}", err=True)
        return exc.exit_code
    except (MemoryError, RecursionError) as exc:  # what a hostile model can exhaust
        if os.environ.get("ONNX_ENERGY_DEBUG"):
            raise
        click.echo(f"{PREFIX} the model is too large or too deeply nested to "
                   f"analyse ({type(exc).__name__})", err=True)
        return 2
    except Exception as exc:  # a bug: still one line unless debugging
        if os.environ.get("ONNX_ENERGY_DEBUG"):
            raise
        click.echo(f"{PREFIX} internal error: {type(exc).__name__}: {_one_line(exc)} "
                   "(set ONNX_ENERGY_DEBUG=1 for the traceback)", err=True)
        return 1
    return 0


def _one_line(exc: BaseException | str) -> str:
    """An error message on one line (messages may quote multi-line model text)."""
    return " ".join(str(exc).split())


def run() -> None:
    """Console-script entry point.

    Output is flushed, then the process exits without tearing the interpreter down: freeing
    a large graph's objects one by one takes longer than analysing it, and nothing is left
    to write (records are fsynced window by window).
    """
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # stdout closed early (`| head`): nothing to lose
        code = code or 0
    os._exit(code)


if __name__ == "__main__":
    run()
