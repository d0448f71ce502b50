"""densescale command line: one sub-command per pipeline stage.

    densescale data validate PATH        densescale models
    densescale train ...                 densescale eval ...
    densescale fit ...                   densescale budget ...
    densescale annotate ict|doc2query|llm
    densescale study run|status|export   densescale demo / report

Each stage owns ``densescale/<stage>/cli.py`` exposing ``register(app: typer.Typer)``; this file
only wires them. Errors derived from DenseScaleError print one line and exit 1.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import typer

from densescale import __version__
from densescale.errors import DenseScaleError

STAGES = ["data", "models", "train", "evaluate", "laws", "budget", "annotate", "study", "report",
          "demo"]

app = typer.Typer(
    name="densescale",
    help="Measure, fit and use scaling laws of dense retrieval (Fang et al., SIGIR 2024).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """densescale: scaling laws of dense retrieval."""


for _stage in STAGES:
    _name = f"densescale.{_stage}.cli"
    if importlib.util.find_spec(f"densescale.{_stage}") and importlib.util.find_spec(_name):
        importlib.import_module(_name).register(app)


def main(argv: list[str] | None = None) -> None:
    try:
        app(args=argv, standalone_mode=True)
    except DenseScaleError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
