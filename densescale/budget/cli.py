"""``densescale budget``: cost coefficients and budget-optimal (N, D) under the joint law.

    densescale budget --show-constants [--json]
    densescale budget --preset v2 --budget 10k,20k,50k,150k --no-inference --plot out/
    densescale budget --law fits/joint.json --budget 1e6 --budget 1e7 --json
    densescale budget --A 3.6e4 --B 7.1e3 --alpha 0.56 --beta 1.31 --delta 0.03 --target 0.1
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from densescale.budget.cost import FORMULAS, CostAssumptions, CostModel
from densescale.budget.law import PlanningLaw
from densescale.budget.optimise import BERT_TINY_PARAMS, cheapest_for_target, optimise_budget
from densescale.errors import ConfigError
from densescale.utils import dump_json

_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9}


def parse_budgets(values: list[str]) -> list[float]:
    """'20000', '2e4', '20k', '$1M', and comma lists of these -> dollars."""
    out = []
    for value in values:
        for item in value.split(","):
            s = item.strip().lstrip("$").replace("_", "")
            if not s:
                continue
            m = re.fullmatch(r"([0-9.]+(?:e[+-]?\d+)?)\s*([kmbg]?)", s, flags=re.I)
            if not m:
                raise ConfigError(f"--budget: cannot read {item.strip()!r} as dollars "
                                  "(examples: 20000, 2e4, 20k, 1M)")
            out.append(float(m.group(1)) * _SUFFIX[m.group(2).lower()])
    return out


def resolve_law(law_path: Path | None, preset: str | None, flags: dict) -> PlanningLaw:
    """Constants from --law or --preset, individual flags overriding; else all five flags."""
    if law_path is not None and preset is not None:
        raise ConfigError("give either --law or --preset, not both")
    given = {k: v for k, v in flags.items() if v is not None}
    if law_path is not None:
        law = PlanningLaw.from_json(law_path)
    elif preset is not None:
        law = PlanningLaw.preset(preset)
    else:
        missing = [f"--{k}" for k in ("A", "B", "alpha", "beta", "delta") if k not in given]
        if missing:
            raise ConfigError("no joint law: give --law FIT.json, --preset v1|v2, or all of --A "
                              f"--B --alpha --beta --delta (missing {' '.join(missing)})")
        return PlanningLaw(**given, source="flags")
    if given:
        law = law.with_range(**given, source=f"{law.source} (overridden: {', '.join(given)})")
    return law


def budget(
    law_path: Path | None = typer.Option(None, "--law", help="Fit JSON with A, B, alpha, beta, "
                                         "delta, optionally n_min n_max d_min d_max (top level "
                                         "or under 'params'/'constants')."),
    preset: str | None = typer.Option(None, "--preset", help="Paper's MS MARCO joint constants: "
                                      "v1 = arXiv v1 Eq. 10-11 (A 8.2e5, B 5.2e3, alpha .57, "
                                      "beta 1.39, delta .03; they do not reproduce v1's own "
                                      "model law, flagged on use); v2 = SIGIR/v2 from "
                                      "third-party notes, unverified (A 3.6e4, B 7.1e3, "
                                      "alpha .56, beta 1.31, delta .03)."),
    a_: float | None = typer.Option(None, "--A", help="Joint law A (overrides --law/--preset)."),
    b_: float | None = typer.Option(None, "--B", help="Joint law B."),
    alpha: float | None = typer.Option(None, "--alpha", help="Joint law alpha."),
    beta: float | None = typer.Option(None, "--beta", help="Joint law beta."),
    delta: float | None = typer.Option(None, "--delta", help="Joint law delta (loss floor, >= 0)."),
    fit_n_min: float | None = typer.Option(None, "--fit-n-min", help="Smallest fitted N."),
    fit_n_max: float | None = typer.Option(None, "--fit-n-max", help="Largest fitted N."),
    fit_d_min: float | None = typer.Option(None, "--fit-d-min", help="Smallest fitted D."),
    fit_d_max: float | None = typer.Option(None, "--fit-d-max", help="Largest fitted D."),
    budgets: list[str] | None = typer.Option(None, "--budget", help="Budget in $ (repeatable "
                                             "or comma list; 20000, 2e4, 20k, 1M)."),
    targets: list[float] | None = typer.Option(None, "--target", help="Target loss: report the "
                                               "cheapest (N, D) reaching it (repeatable)."),
    no_inference: bool = typer.Option(False, "--no-inference", help="Leave corpus encoding (and "
                                      "query traffic) out of the cost (paper Fig. 7)."),
    show_constants: bool = typer.Option(False, "--show-constants", help="Print the derived cost "
                                        "coefficients, formulas and assumptions."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
    plot: Path | None = typer.Option(None, "--plot", help="Write L-vs-N curves (PNG+SVG) here."),
    n_min: float = typer.Option(BERT_TINY_PARAMS, "--n-min", help="Smallest model considered "
                                "(non-embedding params; default BERT-Tiny)."),
    d_min: float = typer.Option(1.0, "--d-min", help="Fewest annotations considered."),
    *,
    assumptions: CostAssumptions,
) -> None:
    """Cost model Z(N,D) and the budget-optimal model size / annotation count (paper Section 6).

    ``assumptions`` arrives from the flags generated for every CostAssumptions field."""
    if plot is not None:
        from densescale.evaluate.cli import output_folder

        output_folder(plot, "--plot", "budget_curves_*.png/.svg")  # fail early, naming it
    cost = CostModel.from_assumptions(assumptions)
    budget_list = parse_budgets(budgets or [])
    targets = targets or []
    doc: dict = {"cost_model": cost.to_dict()}
    if not budget_list and not targets:
        if not show_constants:
            raise ConfigError("nothing to do: give --budget and/or --target (or --show-constants)")
        return _emit(doc, cost, None, [], [], show_constants, json_out)
    if n_min <= 0 or d_min <= 0:
        raise ConfigError("--n-min and --d-min must be > 0")
    law = resolve_law(law_path, preset, {"A": a_, "B": b_, "alpha": alpha, "beta": beta,
                                         "delta": delta, "n_min": fit_n_min, "n_max": fit_n_max,
                                         "d_min": fit_d_min, "d_max": fit_d_max})
    inference = not no_inference
    allocs = [optimise_budget(law, cost, b, inference=inference, n_min=n_min, d_min=d_min)
              for b in budget_list]
    inverse = [cheapest_for_target(law, cost, t, inference=inference, n_min=n_min, d_min=d_min)
               for t in targets]
    doc.update(law=law.to_dict(), inference=inference, n_min=n_min, d_min=d_min,
               budgets=[a.to_dict() for a in allocs], targets=[a.to_dict() for a in inverse])
    if plot is not None and allocs:
        from densescale.budget.plots import plot_budget_curves

        doc["plots"] = [str(p) for p in plot_budget_curves(law, cost, allocs, plot, n_min=n_min,
                                                           d_min=d_min)]
    _emit(doc, cost, law, allocs, inverse, show_constants, json_out)


def _cost_flags() -> list[inspect.Parameter]:
    """One ``--field-name`` option per CostAssumptions field (type, default, help from it)."""
    hints = typing.get_type_hints(CostAssumptions)
    return [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=hints[f.name],
                              default=typer.Option(f.default, "--" + f.name.replace("_", "-"),
                                                   help=f.metadata["help"]))
            for f in dataclasses.fields(CostAssumptions)]


def budget_command() -> Callable[..., None]:
    """``budget`` with the CostAssumptions flags generated (so CLI and dataclass cannot drift)."""
    names = [f.name for f in dataclasses.fields(CostAssumptions)]
    hints = typing.get_type_hints(budget)
    own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=hints[p.name])
           for p in inspect.signature(budget).parameters.values() if p.name != "assumptions"]

    def command(**kw: Any) -> None:
        assumptions = CostAssumptions(**{k: kw.pop(k) for k in names})
        budget(**kw, assumptions=assumptions)

    command.__doc__ = budget.__doc__.split("\n\n")[0]
    command.__signature__ = inspect.Signature(own + _cost_flags())  # type: ignore[attr-defined]
    return command


def _emit(doc: dict, cost: CostModel, law, allocs, inverse, show_constants: bool,
          json_out: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    err = Console(stderr=True, width=None if sys.stderr.isatty() else 150)
    warnings = list(dict.fromkeys(w for a in [*allocs, *inverse] for w in a.warnings))
    for w in warnings:
        err.print(f"[bold yellow]warning:[/] {w}", highlight=False)
    if json_out:
        doc["warnings"] = warnings
        dump_json(doc)
        return
    out = Console(width=None if sys.stdout.isatty() else 150)
    if show_constants:
        t = Table(title="Cost coefficients (derived)")
        for col in ("coefficient", "value", "formula"):
            t.add_column(col)
        t.add_row("z_data", f"{cost.z_data:.4g} $/pair", FORMULAS["z_data"])
        for k in ("z_train", "z_infer", "z_query"):
            t.add_row(k, f"{getattr(cost, k):.4g} $/param", FORMULAS[k])
        out.print(t)
        t = Table(title="Assumptions")
        t.add_column("assumption")
        t.add_column("value")
        for k, v in cost.assumptions.to_dict().items():
            t.add_row(k, f"{v:g}")
        out.print(t)
    if law is not None:
        out.print(f"law: L(N,D) = [(A/N)^(alpha/beta) + B/D]^beta + delta; A={law.A:g} "
                  f"B={law.B:g} alpha={law.alpha:g} beta={law.beta:g} delta={law.delta:g} "
                  f"({law.source})", highlight=False)
    for title, rows, key in (("Budget-optimal allocation", allocs, "budget"),
                             ("Cheapest allocation for a target loss", inverse, "target")):
        if not rows:
            continue
        inf = "with" if rows[0].inference else "without"
        t = Table(title=f"{title} ({inf} inference cost)")
        for col in (key, "N* (params)", "D* (pairs)", "L*", "cost $", "model $", "data $",
                    "outside fit"):
            t.add_column(col, justify="right")
        for a in rows:
            head = f"${a.budget:,.0f}" if key == "budget" else f"{a.target:g}"
            ext = ", ".join(f"{k.upper()} {v['orders']:+.1f} dex" for k, v in
                            a.extrapolation.items()) or "-"
            t.add_row(head, f"{a.n:.3g}", f"{a.d:.3g}", f"{a.loss:.4f}", f"{a.cost:,.0f}",
                      f"{a.cost - cost.z_data * a.d:,.0f}", f"{cost.z_data * a.d:,.0f}", ext)
        out.print(t)
    for p in doc.get("plots", []):
        out.print(f"wrote {p}")


def register(app: typer.Typer) -> None:
    app.command("budget")(budget_command())
