"""The study report: every fitted law, its figures, the runs, the budget optimum, in one HTML file.

    densescale report --results configs/tiny.yaml --out report/
    make_report("runs/demo/results.db", "report/")

The report is self-contained (figures inlined as PNG data URIs) and also leaves every figure as
PNG and SVG under ``<out>/figures`` and every fit as JSON under ``<out>/fits``. Laws that cannot
be fitted (too few points, say) are reported as such in the page, never silently left out.
"""

from __future__ import annotations

import json
import math
import shlex
import sys
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from densescale import __version__
from densescale.errors import DenseScaleError
from densescale.report.html import Section, render
from densescale.utils import atomic_write_json, atomic_write_text, git_commit

RANKING = ["ndcg@10", "mrr@10", "recall@100", "recall@1000", "map"]
RUN_COLUMNS = ["rung", "n", "d", "annotation", "seed", "heldout", "status",
               "contrastive_entropy", "contrastive_entropy_stderr", *RANKING,
               "wall_time_s", "pairs_per_s"]
LAW_TITLES = {
    "model": "Model-size law L(N) = (A/N)^α + δ",
    "data": "Data-size law L(D) = (B/D)^β + δ",
    "joint": "Joint law L(N,D) = [(A/N)^(α/β) + B/D]^β + δ",
    "annotations": "Annotation quality: one data-size law per annotation type",
}
FIGURE_CAPTIONS = {
    "fig1_model_size": "Fig. 1: metric vs model size N (non-embedding parameters)",
    "fig3_model_size_loglog": "Fig. 3: model-size scaling, log-log",
    "fig4_data_size": "Fig. 4: data-size scaling, log-log",
    "fig5_annotations": "Fig. 5: annotation types",
    "fig6_joint": "Fig. 6: joint law, one curve per model size (stars: held out)",
}


def _is_spec(results: str) -> bool:
    return results.endswith((".yaml", ".yml"))


def load_runs(results: str) -> pd.DataFrame:
    """The runs table from a CSV, a study database (path or SQLAlchemy URL) or a study spec."""
    if results.endswith(".csv"):
        if not Path(results).exists():
            raise DenseScaleError(f"{results}: results file not found")
        return pd.read_csv(results)
    from densescale.study import results_frame

    return results_frame(results)


def _constants_table(fit: dict[str, Any], names: list[str]) -> pd.DataFrame:
    ci = fit.get("ci") or {}
    rows = []
    for k in names:
        lo, hi = (ci.get(k) or (math.nan, math.nan))
        rows.append({"constant": k, "value": fit.get(k), "CI low": lo, "CI high": hi})
    return pd.DataFrame(rows)


def _fit_summary(fit: dict[str, Any]) -> str:
    level = fit.get("ci_level")
    lvl = f"{level:.0%} bootstrap intervals" if fit.get("ci") and level else "no intervals"
    return (f"R² = {fit.get('r2', math.nan):.4f}, RMSE = {fit.get('rmse', math.nan):.4g}, "
            f"{fit.get('n_points')} points, {lvl}, converged: {fit.get('converged')}.")


def _holdout_table(hd: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(hd.get("points") or [])


def _fit_law(results: str, law: str, figs: Path, fits: Path, *, bootstrap: int, seed: int,
             holdout: str | None, metric: str, method: str
             ) -> tuple[dict[str, Any] | None, str | None]:
    from densescale.laws.cli import run_fit

    try:
        doc = run_fit(results, law, metric=metric, method=method, holdout=holdout,
                      bootstrap=bootstrap, seed=seed, out=fits / f"{law}.json", plot=figs)
        return doc, None
    except DenseScaleError as e:
        return None, str(e)


def _law_section(law: str, doc: dict[str, Any] | None, err: str | None) -> Section:
    sec = Section(LAW_TITLES[law])
    if doc is None:
        return sec.warn(f"Not fitted: {err}")
    sec.text(f"Rows used: {doc.get('selection')} ({doc.get('n_rows')} rows).", "note")
    if law == "annotations":
        laws = doc.get("laws") or {}
        rows = []
        for name, fit in laws.items():
            ci = fit.get("ci") or {}
            rows.append({"annotation": name, "B": fit.get("B"), "beta": fit.get("beta"),
                         "beta CI low": (ci.get("beta") or [math.nan])[0],
                         "beta CI high": (ci.get("beta") or [math.nan, math.nan])[1],
                         "delta": fit.get("delta"), "R²": fit.get("r2"),
                         "points": fit.get("n_points")})
        sec.table(pd.DataFrame(rows))
        crossings = doc.get("crossings") or []
        if crossings:
            sec.table(pd.DataFrame(crossings))
        else:
            sec.text("No crossing between annotation types was found in the searched range.")
        for fit_name, fit in laws.items():
            for w in fit.get("warnings") or []:
                sec.warn(f"{fit_name}: {w}")
    else:
        fit = doc["fit"]
        names = {"model": ["A", "alpha", "delta"], "data": ["B", "beta", "delta"],
                 "joint": ["A", "B", "alpha", "beta", "delta"]}[law]
        sec.text(_fit_summary(fit))
        sec.table(_constants_table(fit, names))
        for w in fit.get("warnings") or []:
            sec.warn(w)
        hd = doc.get("holdout")
        if hd:
            sec.text(f"Held-out validation: fitted on {hd['n_fit']} points, predicted "
                     f"{hd['n_heldout']} held-out points; mean relative error "
                     f"{hd['mean_rel_error']:.2%}, max {hd['max_rel_error']:.2%}.")
            sec.table(_holdout_table(hd))
    for p in doc.get("plots") or []:
        p = Path(p)
        if p.suffix == ".png":
            sec.figure(p, FIGURE_CAPTIONS.get(p.stem, p.stem))
    return sec


def _budget_section(fits: Path, figs: Path, budgets: list[float],
                    inference_budgets: list[float]) -> tuple[Section, list[dict]]:
    from densescale.budget import CostAssumptions, CostModel, JointLaw, optimise_budget
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
    law = JointLaw.from_json(path)
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


def _correlation_section(runs: pd.DataFrame, figs: Path) -> tuple[Section, dict]:
    from densescale.evaluate.correlation import correlate, plot_correlation

    sec = Section("Contrastive entropy vs ranking metrics (paper Fig. 2)")
    present = [m for m in RANKING if m in runs.columns and runs[m].notna().sum() >= 3]
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
    if _is_spec(results) and Path(results).exists():
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
                title: str | None = None, commands: list[str] | None = None) -> dict[str, Any]:
    """Fit every law on a study's results and write ``<out>/index.html`` plus figures and fits.

    Args:
        results: a study spec (YAML), a results database (SQLite path or SQLAlchemy URL) or a CSV
            with columns n, d, annotation, contrastive_entropy (+ optional ranking metrics).
        out: output folder (created).
        bootstrap: bootstrap resamples for the confidence intervals.
        seed: bootstrap seed.
        holdout: None (use the study's held-out marks), "largest" or a file (see ``fit``).
        metric: the fitted metric column.
        method: "lsq" (the paper's least squares) or "huber" (Huber loss on log residuals).
        budgets: budgets ($) optimised without inference cost.
        inference_budgets: budgets ($) optimised with inference cost.
        title: page title.
        commands: the command lines that produced the results (shown in the report).

    Returns:
        A JSON-able summary: paths, fitted constants, held-out errors, budget rows.
    """
    results = str(results)
    out = Path(out)
    figs, fits = out / "figures", out / "fits"
    figs.mkdir(parents=True, exist_ok=True)
    fits.mkdir(parents=True, exist_ok=True)
    runs = load_runs(results)
    if "status" in runs.columns:
        done = runs[runs["status"] == "done"]
    else:
        done = runs
    if done.empty:
        raise DenseScaleError(f"{results}: no finished runs to report on")

    summary: dict[str, Any] = {"results": results, "out": str(out), "n_runs": int(len(done)),
                               "method": method, "laws": {}, "errors": {}}
    sections: list[Section] = []
    cols = [c for c in RUN_COLUMNS if c in runs.columns]
    runs_sec = Section(f"Runs ({len(done)} finished of {len(runs)})")
    runs_sec.table(runs[cols])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for law in ("model", "data", "joint", "annotations"):
            doc, err = _fit_law(results, law, figs, fits, bootstrap=bootstrap, seed=seed,
                                holdout=holdout, metric=metric, method=method)
            sections.append(_law_section(law, doc, err))
            if doc is not None:
                summary["laws"][law] = {k: doc[k] for k in ("fit", "holdout", "laws",
                                                            "crossings") if k in doc}
            else:
                summary["errors"][law] = err
        corr_sec, corr = _correlation_section(done, figs)
        budget_sec, budget_rows = _budget_section(fits, figs, list(budgets),
                                                  list(inference_budgets))
    summary["correlation"] = corr
    summary["budget"] = budget_rows
    commands = commands or [f"densescale report --results {shlex.quote(results)} "
                            f"--out {shlex.quote(str(out))}"]
    page = render(
        title or "densescale scaling-law report",
        [runs_sec, *sections, corr_sec, budget_sec, _settings_section(results, runs, commands)],
        subtitle=f"Results: {results}. Contrastive entropy is lower-is-better "
                 "(-log softmax of the positive against 256 sampled negatives). Laws fitted by "
                 + ("least squares (the paper's method)." if method == "lsq" else
                    "Huber loss on log residuals from a grid of starts (Chinchilla approach 3)."),
    )
    atomic_write_text(out / "index.html", page)
    summary["html"] = str(out / "index.html")
    summary["figures"] = sorted(str(p) for p in figs.rglob("*.png"))
    atomic_write_json(out / "report.json", summary)
    return summary


def argv_command() -> str:
    """The current command line, for the report's "how this was produced" section."""
    return " ".join(shlex.quote(a) for a in ["densescale", *sys.argv[1:]])
