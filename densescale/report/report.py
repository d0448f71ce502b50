"""The study report: every fitted law, its figures, the runs, the budget optimum, in one HTML file.

    densescale report --results configs/tiny.yaml --out report/
    make_report("runs/demo/results.db", "report/")

The report is self-contained (figures inlined as PNG data URIs) and also leaves every figure as
PNG and SVG under ``<out>/figures`` and every fit as JSON under ``<out>/fits``. Laws that cannot
be fitted (too few points, say) are reported as such in the page, never silently left out.

Sections: validity (where checkpoints were chosen; which annotation types learned at all), the
runs (not-learned ones greyed with the reason), retrieval quality beside the BM25 reference, one
section per law (see ``densescale.report.laws``), contrastive entropy vs ranking metrics, the
budget optimum, and how the results were produced.
"""

from __future__ import annotations

import json
import shlex
import sys
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from densescale import __version__
from densescale.errors import DenseScaleError
from densescale.evaluate.cli import json_safe
from densescale.evaluate.metrics import RANKING_KEYS
from densescale.report.headline import headline_section
from densescale.report.html import Section, render
from densescale.report.laws import fit_laws
from densescale.report.output import replacing_outputs
from densescale.report.runs import (
    done_rows,
    metric_label,
    ranking_section,
    runs_section,
    validity_section,
)
from densescale.study.results import read_results
from densescale.utils import (
    atomic_write_json,
    atomic_write_text,
    git_commit,
    prepare_output_dir,
)


def load_runs(results: str) -> pd.DataFrame:
    """Every row of the results (any status), as ``densescale.study.read_results`` reads them."""
    return read_results(results, metric=None, done_only=False)


def _budget_section(fits: Path, figs: Path, budgets: list[float],
                    inference_budgets: list[float]) -> tuple[Section, list[dict]]:
    from densescale.budget import CostAssumptions, CostModel, PlanningLaw, optimise_budget
    from densescale.budget.plots import plot_budget_curves

    sec = Section("Budget: the budget-optimal model size and number of annotations")
    cost = CostModel.from_assumptions(CostAssumptions())
    sec.text(f"Cost model Z(N,D) = z_data·D + z_train·N + z_infer·N with the paper's assumptions: "
             f"z_data = ${cost.z_data:g} per pair, z_train = {cost.z_train:.3g} $/parameter, "
             f"z_infer = {cost.z_infer:.3g} $/parameter (encoding 30e12 pages). The joint law "
             "fitted above is extrapolated: read these as an illustration of the method, not as "
             "a recommendation for production.")
    path = fits / "joint.json"
    if not path.exists():
        return sec.warn("No joint law was fitted, so no budget optimum."), []
    law = PlanningLaw.from_json(path)
    rows: list[dict] = []
    for inference, amounts in ((False, budgets), (True, inference_budgets)):
        allocs = []
        for b in amounts:
            try:
                a = optimise_budget(law, cost, b, inference=inference, n_min=law.n_min or 1.0)
            except DenseScaleError as e:
                sec.warn(f"${b:,.0f} ({'with' if inference else 'without'} inference): {e}")
                continue
            allocs.append(a)
            rows.append({"budget $": b, "inference cost": inference, "N*": a.n, "D*": a.d,
                         "L*": a.loss, "cost $": a.cost,
                         "outside fitted range": "; ".join(a.warnings) or "no"})
        if allocs:
            for p in plot_budget_curves(law, cost, allocs, figs, n_min=law.n_min or 1.0):
                if p.suffix == ".png":
                    label = "Fig. 8 (with inference cost)" if inference else \
                        "Fig. 7 (without inference cost)"
                    sec.figure(p, f"{label}: predicted metric vs N for each budget")
    if rows:
        sec.table(pd.DataFrame(rows))
    return sec, rows


def _overlay_section(runs: pd.DataFrame, docs: dict[str, Any], metric: str, figs: Path
                     ) -> tuple[Section, dict[str, Any]]:
    """Every finished run against chance (CE) and against BM25 (nDCG@10)."""
    from densescale.report.figures import (
        bm25_levels,
        chance_levels,
        plot_ce_vs_chance,
        plot_ndcg_vs_bm25,
    )

    sec = Section("Every run against chance and against BM25")
    info = {"chance": chance_levels(runs), "bm25_ndcg_at_10": bm25_levels(runs)}
    if not info["chance"]:
        sec.warn("The results record neither a chance level nor the number of evaluation "
                 "negatives W, so no chance line ln(W+1) is drawn.")
    label = "contrastive entropy" if metric == "contrastive_entropy" else metric_label(
        metric, runs).split(":")[0]
    for p in plot_ce_vs_chance(runs, docs, metric, label, figs):
        if p.suffix == ".png":
            law = ("model-size law (at the D of its sweep)" if "_n_" in p.name else
                   "data-size law (at the N of its sweep)")
            sec.figure(p, f"{label} of every finished run and the fitted {law}; dashed: "
                          "chance ln(W+1), what a model scoring every passage alike gets")
    for p in plot_ndcg_vs_bm25(runs, figs):
        if p.suffix == ".png":
            sec.figure(p, "nDCG@10 of every finished run; dashed: BM25 on the same queries and "
                          "pool (higher is better)")
    if not info["bm25_ndcg_at_10"]:
        sec.text("No BM25 reference in the results (set bm25: true in the study's eval: block), "
                 "so no BM25 line.", "note")
    return sec, info


def _correlation_section(runs: pd.DataFrame, figs: Path) -> tuple[Section, dict]:
    from densescale.evaluate.correlation import correlate, plot_correlation

    sec = Section("Contrastive entropy vs ranking metrics (paper Fig. 2)")
    present = [m for m in RANKING_KEYS if m in runs.columns and runs[m].notna().sum() >= 3]
    if "contrastive_entropy" not in runs.columns or not present:
        return sec.warn("Fewer than 3 runs carry ranking metrics; no correlation."), {}
    recs = [{**r, "model": str(r.get("rung", ""))} for r in runs.to_dict("records")]
    corr = correlate(recs, others=present)
    sec.text("Lower contrastive entropy is better, so agreement shows as negative correlation.")
    sec.table(pd.DataFrame([{"metric": m, **v} for m, v in corr.items()]))
    for p in plot_correlation(recs, figs / "correlation", others=present[:3]):
        if p.suffix == ".png":
            sec.figure(p, f"{p.stem.replace('_', ' ')}")
    return sec, corr


def _settings_section(results: str, runs: pd.DataFrame, commands: list[str]) -> Section:
    sec = Section("How this was produced")
    sec.text(f"densescale {__version__}, git commit {git_commit() or 'unknown'}.")
    sec.code("\n".join(commands))
    if results.endswith((".yaml", ".yml")) and Path(results).exists():
        sec.text(f"Study spec {results}:")
        sec.code(Path(results).read_text(encoding="utf-8"))
    for col, label in (("train_config", "Training settings"), ("eval_config",
                                                              "Evaluation settings"),
                       ("hardware", "Hardware")):
        if col in runs.columns:
            vals = runs[col].dropna()
            if len(vals):
                try:
                    txt = json.dumps(json.loads(vals.iloc[-1]), indent=2)
                except (TypeError, ValueError):
                    txt = str(vals.iloc[-1])
                sec.text(f"{label} (last finished run; every run's are in the database):")
                sec.code(txt)
    return sec


def make_report(results: str | Path, out: str | Path, *, bootstrap: int = 200, seed: int = 0,
                holdout: str | None = None, metric: str = "contrastive_entropy",
                method: str = "lsq", budgets: tuple[float, ...] = (1e4, 2e4, 5e4, 1.5e5),
                inference_budgets: tuple[float, ...] = (1e6, 1e7),
                title: str | None = None, commands: list[str] | None = None,
                include_not_learned: bool = False) -> dict[str, Any]:
    """Fit every law on a study's results and write ``<out>/index.html`` plus figures and fits.

    Args:
        results: a study spec (YAML), a results database (SQLite path or SQLAlchemy URL) or a CSV
            with columns n, d, annotation, contrastive_entropy (+ optional ranking metrics).
        out: output folder (created). The report replaces a previous one there all or
            nothing (``densescale.report.output.replacing_outputs``): a failure leaves the
            folder as it was.
        bootstrap: bootstrap resamples for the confidence intervals.
        seed: bootstrap seed.
        holdout: None (use the study's held-out marks), "largest" or a file (see ``fit``).
        metric: the fitted metric column.
        method: "lsq" (the paper's least squares) or "huber" (Huber loss on log residuals).
        budgets: budgets ($) optimised without inference cost.
        inference_budgets: budgets ($) optimised with inference cost.
        title: page title.
        commands: the command lines that produced the results (shown in the report).
        include_not_learned: fit the points that did not learn too (left out by default).

    Returns:
        A JSON-able summary: paths, fitted constants, held-out errors, budget rows.
    """
    results, out = str(results), Path(out)
    with replacing_outputs(out):
        return _make_report(results, out, bootstrap=bootstrap, seed=seed, holdout=holdout,
                            metric=metric, method=method, budgets=budgets,
                            inference_budgets=inference_budgets, title=title,
                            commands=commands, include_not_learned=include_not_learned)


def _make_report(results: str, out: Path, *, bootstrap: int, seed: int, holdout: str | None,
                 metric: str, method: str, budgets: tuple[float, ...],
                 inference_budgets: tuple[float, ...], title: str | None,
                 commands: list[str] | None, include_not_learned: bool) -> dict[str, Any]:
    figs, fits = prepare_output_dir(out / "figures"), prepare_output_dir(out / "fits")
    runs = load_runs(results)
    done = done_rows(runs)
    if done.empty:
        raise DenseScaleError(f"{results}: no finished runs to report on")

    summary: dict[str, Any] = {"results": results, "out": str(out), "n_runs": int(len(done)),
                               "method": method, "metric": metric, "laws": {}, "errors": {}}
    validity_sec, summary["validity"] = validity_section(runs)
    ranking_sec, summary["ranking"] = ranking_section(runs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sections, docs, summary["errors"] = fit_laws(
            results, runs, figs, fits, bootstrap=bootstrap, seed=seed, holdout=holdout,
            metric=metric, method=method, include_not_learned=include_not_learned,
            never_learned=() if include_not_learned else tuple(
                summary["validity"]["no_learned_points"]))
        for law, doc in docs.items():
            summary["laws"][law] = {k: doc[k] for k in ("fit", "holdout", "holdout_note", "laws",
                                                        "crossings", "excluded", "seed_spread")
                                    if k in doc}
        corr_sec, corr = _correlation_section(done, figs)
        budget_sec, budget_rows = _budget_section(fits, figs, list(budgets),
                                                  list(inference_budgets))
        overlay_sec, summary["overlays"] = _overlay_section(runs, docs, metric, figs)
    head_sec, summary["headline"] = headline_section(docs, summary["errors"], runs)
    summary["correlation"] = corr
    summary["budget"] = budget_rows
    commands = commands or [f"densescale report --results {shlex.quote(results)} "
                            f"--out {shlex.quote(str(out))}"]
    page = render(
        title or "densescale scaling-law report",
        [head_sec, validity_sec, runs_section(runs, out), ranking_sec, overlay_sec, *sections,
         corr_sec, budget_sec, _settings_section(results, runs, commands)],
        subtitle=f"Results: {results}. Contrastive entropy is lower-is-better "
                 "(-log softmax of the positive against W sampled negatives; chance is "
                 "ln(W+1)). Laws fitted by "
                 + ("least squares (the paper's method)." if method == "lsq" else
                    "Huber loss on log residuals from a grid of starts (Chinchilla approach 3)."),
    )
    atomic_write_text(out / "index.html", page)
    summary["html"] = str(out / "index.html")
    summary["figures"] = sorted(str(p) for p in figs.rglob("*.png"))
    atomic_write_json(out / "report.json", json_safe(summary))
    return summary


def argv_command() -> str:
    """The current command line, for the report's "how this was produced" section."""
    return " ".join(shlex.quote(a) for a in ["densescale", *sys.argv[1:]])
