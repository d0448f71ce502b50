"""densescale command line: one sub-command per pipeline stage.

    densescale data validate PATH        densescale models
    densescale train ...                 densescale eval ...
    densescale fit ...                   densescale budget ...
    densescale annotate ict|doc2query|llm
    densescale study run|status|export   densescale demo / report

Each stage owns ``densescale/<stage>/cli.py`` exposing ``register(app: typer.Typer)``; this file
only wires them, lazily: :data:`COMMANDS` names every top-level command with its stage and a
one-line help, so ``densescale --help`` and ``--version`` import no stage (no torch, pandas or
scipy); a stage's module is imported only when one of its commands runs (or shows its own help).

Errors: a DenseScaleError prints ``error: <message>``; an OSError (read-only or full disk, a path
under a regular file, a missing file) prints ``error: <path>: <reason>``; a UnicodeDecodeError (a
binary file where text was expected) says so; a missing optional package (matplotlib, pyarrow,
ray, ir_datasets, datasets) names the ``pip install 'densescale[<extra>]'`` that provides it;
all exit 1 without a traceback. ``--debug`` (or ``DENSESCALE_DEBUG=1``) shows the traceback.
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from densescale import __version__
from densescale.errors import DenseScaleError
from densescale.utils import missing_extra

# command -> (stage package whose cli.py registers it, help line shown by `densescale --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("data", "Dataset tools: validate, statistics, nested subsets, index, fetch."),
    "models": ("models", "List model rungs: layers, hidden size, heads, non-embedding (N) and "
                         "total parameters."),
    "train": ("train", "Train a bi-encoder (the paper's setup by default); writes "
                       "OUT/{best,last}, OUT/summary.json."),
    "eval": ("evaluate", "Contrastive entropy (mean ± stderr over repeats) and ranking metrics "
                         "of one model."),
    "correlate": ("evaluate", "Pearson/Spearman correlation of contrastive entropy with ranking "
                              "metrics."),
    "fit": ("laws", "Fit L(N), L(D), L(N,D) or per-annotation L(D) with CIs and held-out "
                    "errors."),
    "budget": ("budget", "Cost model Z(N,D) and the budget-optimal model size / annotation "
                         "count."),
    "annotate": ("annotate", "Generate annotation sets: ICT, doc2query, LLM queries."),
    "study": ("study", "Run a study (a grid of training runs) and read its results."),
    "report": ("report", "Write a self-contained HTML report (figures inline) plus PNG/SVG "
                         "figures and fit JSONs."),
    "export": ("export", "Export a model for transformers, sentence-transformers or Tevatron."),
    "demo": ("demo", "A complete miniature of the paper on SQuAD v1.1: train, evaluate, fit, "
                     "budget, report."),
}
STAGES = list(dict.fromkeys(stage for stage, _ in COMMANDS.values()))

_debug = [os.environ.get("DENSESCALE_DEBUG", "") not in ("", "0")]


def load_stage(stage: str) -> dict[str, Any]:
    """Import ``densescale.<stage>.cli`` and return the click commands its ``register`` adds."""
    sub = typer.Typer()
    importlib.import_module(f"densescale.{stage}.cli").register(sub)
    return dict(typer.main.get_group(sub).commands)


class LazyGroup(TyperGroup):
    """The root group: lists :data:`COMMANDS` without importing them; imports on first use."""

    _listing = False  # True while the root help is rendered: stubs instead of real commands

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return list(dict.fromkeys([*self.commands, *COMMANDS]))

    def get_command(self, ctx: typer.Context, cmd_name: str) -> Any:
        if cmd_name in self.commands or cmd_name not in COMMANDS:
            return self.commands.get(cmd_name)
        stage, help_line = COMMANDS[cmd_name]
        if self._listing:
            return TyperCommand(cmd_name, help=help_line)
        for name, cmd in load_stage(stage).items():
            self.commands.setdefault(name, cmd)
        return self.commands.get(cmd_name)

    def resolve_command(self, ctx: typer.Context, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except Exception as e:  # click's UsageError ("No such command"): suggest a close name
            msg = getattr(e, "message", None)
            close = difflib.get_close_matches(args[0], list(COMMANDS)) if args else []
            if isinstance(msg, str) and close and "Did you mean" not in msg:
                e.message = f"{msg.rstrip('.')}. Did you mean {close[0]!r}?"
            raise

    def format_help(self, ctx: typer.Context, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="densescale",
    cls=LazyGroup,
    help="Measure, fit and use scaling laws of dense retrieval (Fang et al., SIGIR 2024).",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},  # inherited by every sub-command
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


def _set_debug(value: bool) -> None:
    if value:
        _debug[0] = True


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", callback=_set_debug, is_eager=True,
                               help="Show the traceback of an error (also DENSESCALE_DEBUG=1)."),
) -> None:
    """densescale: scaling laws of dense retrieval."""


def os_error_message(e: OSError) -> str:
    """``<path>: <reason>`` (``<src> -> <dst>: <reason>`` for a rename) of an OSError."""
    reason = e.strerror or str(e) or type(e).__name__
    if e.filename is None:
        return reason
    where = str(os.fsdecode(e.filename))
    if e.filename2 is not None:
        where += f" -> {os.fsdecode(e.filename2)}"
    return f"{where}: {reason}"


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; user and environment faults end with one ``error:`` line and exit 1."""
    try:
        app(args=argv, standalone_mode=True)
    except DenseScaleError as e:
        if _debug[0]:
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except OSError as e:
        if _debug[0]:
            raise
        print(f"error: {os_error_message(e)}", file=sys.stderr)
        sys.exit(1)
    except ImportError as e:  # an optional package of an extra that is not installed
        advice = missing_extra(e)
        if advice is None or _debug[0]:
            raise
        print(f"error: {advice}", file=sys.stderr)
        sys.exit(1)
    except UnicodeDecodeError as e:  # a binary file given where text was expected
        if _debug[0]:
            raise
        print(f"error: an input file is not UTF-8 text ({e.reason} at byte {e.start}); "
              "--debug shows which", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
