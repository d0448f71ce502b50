"""``densescale train``: one flag per TrainConfig field (``--train-size``, ``--negative-mode`` ...).

    densescale train --data squad_v11 --model bert-tiny --init scratch --train-size 10000 \
        --steps 500 --out runs/tiny [--json]
    densescale train --out runs/tiny --resume          # continue a killed run (saved config)

Flags are generated from TrainConfig, so the CLI and the config cannot drift apart: the help text
is each field's ``description``, followed by its default and, for a fixed set of values, the
choices. A flag left out keeps the value of --config FILE, of the run being resumed, or
TrainConfig's default.
"""

from __future__ import annotations

import inspect
import json
import os
import types
import typing
from pathlib import Path
from typing import Any

import typer

from densescale.errors import ConfigError
from densescale.evaluate.config import EvalConfig
from densescale.train.config import SELECTION_EVAL, TrainConfig
from densescale.utils import dump_json

# TrainConfig fields given as --selection-<key> flags (the keys periodic evaluation uses)
NESTED = {"selection": (EvalConfig, ("negatives", "repeats", "seed", "pool_size", "max_pairs",
                                     "batch_size"))}


def _cli_type(annotation: Any) -> type:
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        return _cli_type(non_none[0]) if len(non_none) == 1 else str
    if origin is typing.Literal:
        return str
    return annotation if annotation in (int, float, bool, str) else str


def _choices(annotation: Any) -> list[str]:
    """The allowed values of a Literal field (also inside Optional), else []."""
    if typing.get_origin(annotation) is typing.Literal:
        return [str(a) for a in typing.get_args(annotation)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [c for a in typing.get_args(annotation) for c in _choices(a)]
    return []


def field_help(field: Any) -> tuple[str, str]:
    """(help text, default shown) of one TrainConfig field: description (choices: ...)."""
    text = field.description or ""
    if choices := _choices(field.annotation):
        text += f" (choices: {', '.join(choices)})"
    default = field.get_default(call_default_factory=True)
    return text, "none" if default in (None, "") else str(default)


def _option(name: str, field: Any, default: str | None = None) -> inspect.Parameter:
    t = _cli_type(field.annotation)
    flag = "--" + name.replace("_", "-")
    decls = [f"{flag}/--no-{flag[2:]}"] if t is bool else [flag]
    help_, shown = field_help(field)
    default = shown if default is None else default
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=t | None,
                             default=typer.Option(None, *decls, help=help_, show_default=default))


def _build_command():
    kw_only = inspect.Parameter.KEYWORD_ONLY
    params = [
        inspect.Parameter("config", kw_only, annotation=Path | None, default=typer.Option(
            None, "--config", help="JSON/YAML file of settings.")),
        inspect.Parameter("resume", kw_only, annotation=bool, default=typer.Option(
            False, "--resume", help="Continue from OUT/checkpoint (uses OUT/config.json; flags "
            "given override runtime settings).")),
        inspect.Parameter("overwrite", kw_only, annotation=bool, default=typer.Option(
            False, "--overwrite", help="Start again in an OUT that holds a finished run or a "
            "checkpoint (deletes them first); without it such an OUT is refused.")),
        inspect.Parameter("as_json", kw_only, annotation=bool, default=typer.Option(
            False, "--json", help="Print the run summary as JSON.")),
        inspect.Parameter("quiet", kw_only, annotation=bool, default=typer.Option(
            False, "--quiet", help="No progress bar.")),
    ]
    for name, field in TrainConfig.model_fields.items():
        if name not in NESTED:
            params.append(_option(name, field))
            continue
        defaults = SELECTION_EVAL.model_dump()
        model, keys = NESTED[name]
        for sub in keys:
            sub_field, value = model.model_fields[sub], defaults[sub]
            params.append(_option(f"{name}_{sub}", sub_field,
                                  "none" if value is None else str(value)))

    def train_cmd(**kw: Any) -> None:
        """Train a bi-encoder (the paper's setup by default); writes OUT/{best,last},
        OUT/summary.json."""
        config, resume, overwrite, as_json, quiet = (
            kw.pop(k) for k in ("config", "resume", "overwrite", "as_json", "quiet"))
        given = {k: (None if isinstance(v, str) and v.lower() == "none" else v)
                 for k, v in kw.items() if v is not None}  # "none" clears an optional setting
        base: dict[str, Any] = {}
        if config is not None:
            base = TrainConfig.from_file(config).to_dict()
        if resume:
            out = Path(given.get("out") or base.get("out") or TrainConfig().out)
            saved = out / "config.json"
            if not saved.exists():
                raise ConfigError(f"--resume: {saved} not found")
            base = json.loads(saved.read_text())
        for name in NESTED:  # --selection-negatives 64 -> selection={..., "negatives": 64}
            sub = {k.removeprefix(f"{name}_"): given.pop(k) for k in list(given)
                   if k.startswith(f"{name}_")}
            if sub:
                given[name] = {**dict(base.get(name) or SELECTION_EVAL.model_dump()), **sub}
        cfg = TrainConfig.make(**{**base, **given})
        from densescale.train.loop import train

        summary = train(cfg, resume=resume, progress=not quiet, overwrite=overwrite)
        if int(os.environ.get("RANK", "0")) != 0:  # torchrun: only rank 0 reports
            return
        if as_json:
            dump_json(summary.to_dict())
            return
        typer.echo(f"{summary.rung}: N={summary.n_params:,} D={summary.d:,} "
                   f"steps={summary.steps_done} pairs/s={summary.pairs_per_s or 0:.1f} "
                   f"-> {cfg.out}\n{summary.headline()}")

    train_cmd.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return train_cmd


def register(app: typer.Typer) -> None:
    app.command("train", context_settings={"max_content_width": 120})(_build_command())
