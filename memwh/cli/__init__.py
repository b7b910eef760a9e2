"""The `memwh` command line: a thin Typer layer; every command calls a Python function.

Each stage registers its commands from its own module here (memwh/cli/<stage>.py), so the
CLI stays argument parsing only. Heavy imports (torch, dbt) happen inside commands.
"""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console
from rich.markup import escape

from memwh.core.errors import MemwhError

app = typer.Typer(
    name="memwh",
    help="Warehouse for verbatim memorization in language models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
err_console = Console(stderr=True)


def _plain_flags() -> None:
    """Typer's rich help prints a `<bool>` value column for flags, which invites
    `--flag true` (an error: flags take no value). Show nothing there, as click does."""
    from typer.core import TyperOption

    original = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: object) -> str | None:
        return None if self.is_flag else original(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_plain_flags()


def _version(value: bool) -> None:
    if value:
        import memwh

        typer.echo(f"memwh {memwh.__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", "-V", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Warehouse for verbatim memorization in language models."""


# Command modules; each defines `register(app)`.
_COMMAND_MODULES = ("suite", "infer", "sweep", "ingest", "build", "report", "query", "demo")
for _name in _COMMAND_MODULES:
    importlib.import_module(f"memwh.cli.{_name}").register(app)


def main() -> None:
    """Entry point: MemwhError -> one red line on stderr and exit code 2, no traceback."""
    try:
        rc = app(standalone_mode=False)
    except MemwhError as e:
        # escape: messages carry user paths/values, e.g. results[old], that are not markup
        err_console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except Exception as e:  # usage errors (typer bundles its own click; accept either)
        if _is_click_exception(e):
            e.show()
            sys.exit(e.exit_code)
        raise
    if isinstance(rc, int) and rc:
        sys.exit(rc)


def _is_click_exception(e: Exception) -> bool:
    classes = []
    for mod in ("typer._click.exceptions", "click.exceptions"):
        try:
            classes.append(importlib.import_module(mod).ClickException)
        except (ModuleNotFoundError, AttributeError):
            continue
    return isinstance(e, tuple(classes))
