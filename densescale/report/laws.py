"""The report's law sections: each law fitted with ``densescale.laws.fit_law`` on the frame from
``densescale.study.results.read_results``, with the points it left out (greyed, with the reason),
which contrastive entropy it uses, R² on the raw and the log scale, leave-one-out errors, the
residual plot, and the seed spread beside the fit residuals.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from densescale.errors import DenseScaleError
from densescale.laws import ESTIMATORS, fit_law
from densescale.laws.frame import X_of, select_rows
from densescale.laws.validate import SPLITS, holdout_for
from densescale.report.html import Section, interval
from densescale.report.paper import SCOPE, comparison_table, published
from densescale.report.runs import POINT, metric_label, seed_groups
from densescale.study.results import read_results

LAWS = ("model", "data", "joint", "annotations")
LAW_TITLES = {
    "model": "Model-size law L(N) = (A/N)^α + δ",
    "data": "Data-size law L(D) = (B/D)^β + δ",
    "joint": "Joint law L(N,D) = [(A/N)^(α/β) + B/D]^β + δ",
    "annotations": "Annotation quality: one data-size law per annotation type",
}
CONSTANTS = {"model": ["A", "alpha", "delta"], "data": ["B", "beta", "delta"],
             "joint": ["A", "B", "alpha", "beta", "delta"]}
FIGURE_CAPTIONS = {
    "fig1_model_size": "Fig. 1: metric vs model size N (non-embedding parameters)",
    "fig3_model_size_loglog": "Fig. 3: model-size scaling, log-log",
    "fig4_data_size": "Fig. 4: data-size scaling, log-log",
    "fig5_annotations": "Fig. 5: annotation types",
    "fig6_joint": "Fig. 6: joint law, one curve per model size (stars: held out)",
}


def _caption(stem: str) -> str:
    if stem.startswith("residuals"):
        return "Residuals and leave-one-out relative errors"
    return FIGURE_CAPTIONS.get(stem, stem)


def fit_laws(results: str, runs: pd.DataFrame, figs: Path, fits: Path, *, bootstrap: int,
             seed: int, holdout: str | None, metric: str, method: str,
             include_not_learned: bool = False, never_learned: tuple[str, ...] = ()
             ) -> tuple[list[Section], dict[str, Any], dict[str, str]]:
    """Fit every law; returns (sections, fitted documents by law, errors by law).

    ``never_learned``: annotation types none of whose runs learned; the annotation comparison
    leaves them out (saying so) instead of failing for all types."""
    what = metric_label(metric, runs)
    try:
        frame: pd.DataFrame | None = read_results(results, metric)
        err = None
    except DenseScaleError as e:
        frame, err = None, str(e)
    sections, docs, errors = [], {}, {}
    for law in LAWS:
        doc = None
        split, why = holdout_for(law, holdout) if holdout in SPLITS else (holdout, None)
        if frame is not None:
            use = frame
            if law == "annotations" and never_learned:
                use = frame[~frame["annotation"].isin(never_learned)]
                use.attrs.update(frame.attrs)
            if why is not None:  # the asked split does not apply: no held-out points at all
                use = use.assign(heldout=False)
                use.attrs.update(frame.attrs)
            try:
                if use.empty:
                    raise DenseScaleError("the comparison needs at least two annotation types "
                                          "with a learned run; none has one")
                doc = fit_law(use, law, method=method, holdout=split, bootstrap=bootstrap,
                              seed=seed, include_not_learned=include_not_learned,
                              out=fits / f"{law}.json", plot=figs)
            except DenseScaleError as e:
                err = str(e)
        if doc is None:
            errors[law] = err or "not fitted"
        else:
            docs[law] = doc
            doc["holdout_note"] = why
        notes = [f"Left out of the comparison: {', '.join(never_learned)} (no run learned; "
                 "does not transfer at this scale)."] if law == "annotations" and \
            never_learned else []
        if why is not None and doc is not None:
            notes.append(f"No held-out validation: {why}.")
        sections.append(law_section(law, doc, errors.get(law), frame, what, notes))
    return sections, docs, errors


def _excluded(sec: Section, doc: dict[str, Any]) -> None:
    excl = doc.get("excluded") or []
    if not excl:
        return
    sec.text(f"Left out: {len(excl)} point(s) that did not learn (greyed below; "
             "--include-not-learned keeps them).")
    table = pd.DataFrame([{"point": p.get("label"), "value": p.get("y"),
                           "reason": p.get("reason")} for p in excl])
    sec.table(table, row_classes=["excluded"] * len(table))


def _fit_summary(fit: dict[str, Any]) -> str:
    level = fit.get("ci_level")
    lvl = f"{level:.0%} bootstrap intervals" if fit.get("ci") and level else "no intervals"
    loo = fit.get("loo") or {}
    loo_txt = ""
    if loo.get("mean_abs_rel_error") is not None:
        loo_txt = (f" Leave-one-out prediction error: mean {loo['mean_abs_rel_error']:.2%}, "
                   f"max {loo['max_abs_rel_error']:.2%} ({loo.get('n_predicted')} points).")
    return (f"R² = {_num(fit.get('r2')):.4f} (raw scale), {_num(fit.get('r2_log')):.4f} (log "
            f"scale); RMSE = {_num(fit.get('rmse')):.4g}; {fit.get('n_points')} points; {lvl}; "
            f"method {fit.get('method')}; converged: {fit.get('converged')}.{loo_txt}")


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


def _constants_table(fit: dict[str, Any], names: list[str]) -> pd.DataFrame:
    ci = fit.get("ci") or {}
    level = fit.get("ci_level")
    head = f"{level:.0%} CI" if level else "CI"
    rows = [{"constant": k, "value": fit.get(k), head: interval(*(ci.get(k) or (None, None)))}
            for k in names]
    return pd.DataFrame(rows)


def _paper(sec: Section, law: str, fit: dict[str, Any]) -> None:
    """The paper's published constants beside the fitted ones, marked as another dataset."""
    table = comparison_table(law, fit, CONSTANTS[law])
    sec.text(SCOPE, "note")
    sec.table(table, row_classes=[None] + ["paper"] * (len(table) - 1))
    for p in published(law):
        if p.get("note"):
            sec.text(f"Paper {p['version']}: {p['note']}", "note")


def seed_spread(frame: pd.DataFrame | None, law: str, fit: dict[str, Any]) -> pd.DataFrame:
    """Points of ``law`` run under 2+ seeds: spread across seeds beside the fit's residual
    (mean over seeds minus the fitted value) at that point."""
    if frame is None:
        return pd.DataFrame()
    rows, _ = select_rows(frame, law, None)
    if "learned" in rows.columns:
        rows = rows[rows["learned"].map(lambda v: v is None or pd.isna(v) or bool(v))]
    groups = seed_groups(rows)
    if groups.empty:
        return groups
    est = ESTIMATORS[law].from_dict(fit)
    groups["fitted"] = est.predict(X_of(groups, law))
    groups["fit residual"] = groups["mean"] - groups["fitted"]
    sd = groups["seed sd"].where(groups["seed sd"] > 0)
    groups["|residual| / seed sd"] = groups["fit residual"].abs() / sd
    cols = {"model": ["n"], "data": ["d"], "joint": ["n", "d"]}[law]
    return groups[cols + [c for c in groups.columns if c not in POINT]]


def law_section(law: str, doc: dict[str, Any] | None, err: str | None,
                frame: pd.DataFrame | None, what: str, notes: list[str] | None = None
                ) -> Section:
    sec = Section(LAW_TITLES[law])
    for note in notes or []:
        sec.warn(note)
    if doc is None:
        return sec.warn(f"Not fitted: {err}")
    sec.text(f"Fitted on the {what}.")
    sec.text(f"Rows used: {doc.get('selection')} ({doc.get('n_rows')} rows).", "note")
    _excluded(sec, doc)
    for w in doc.get("warnings") or []:  # validity notes: unknown, or included on request
        if not w.startswith("excluded"):
            sec.warn(w)
    if law == "annotations":
        _annotations(sec, doc)
    else:
        _single(sec, law, doc, frame)
    for p in doc.get("plots") or []:
        p = Path(p)
        if p.suffix == ".png":
            sec.figure(p, _caption(p.stem))
    return sec


def _single(sec: Section, law: str, doc: dict[str, Any], frame: pd.DataFrame | None) -> None:
    fit = doc["fit"]
    sec.text(_fit_summary(fit))
    sec.table(_constants_table(fit, CONSTANTS[law]))
    _paper(sec, law, fit)
    for w in fit.get("warnings") or []:
        sec.warn(w)
    hd = doc.get("holdout")
    if hd:
        sec.text(f"Held-out validation: fitted on {hd['n_fit']} points, predicted "
                 f"{hd['n_heldout']} held-out points; mean relative error "
                 f"{hd['mean_rel_error']:.2%}, max {hd['max_rel_error']:.2%}.")
        sec.table(pd.DataFrame(hd.get("points") or []))
    loo = (fit.get("loo") or {}).get("points") or []
    if loo:
        sec.text("Leave-one-out: each point predicted by the law refitted without it.", "note")
        sec.table(pd.DataFrame(loo))
    spread = seed_spread(frame, law, fit)
    if spread.empty:
        sec.text("No point of this law was run under two or more seeds, so the seed spread "
                 "cannot be set beside the residuals.", "note")
    else:
        sec.text("Seed spread beside the fit residuals: a residual within about one seed "
                 "standard deviation is as close as reruns of the same point agree.")
        sec.table(spread)
    doc["seed_spread"] = spread.to_dict("records")


def _annotations(sec: Section, doc: dict[str, Any]) -> None:
    laws = doc.get("laws") or {}
    rows = []
    for name, fit in laws.items():
        ci = fit.get("ci") or {}
        rows.append({"annotation": name, "B": fit.get("B"), "beta": fit.get("beta"),
                     "beta CI": interval(*(ci.get("beta") or (None, None))),
                     "delta": fit.get("delta"), "R²": fit.get("r2"),
                     "R² (log)": fit.get("r2_log"), "points": fit.get("n_points")})
    sec.table(pd.DataFrame(rows))
    crossings = doc.get("crossings") or []
    if crossings:
        sec.table(pd.DataFrame(crossings))
    else:
        sec.text("No crossing between annotation types was found in the searched range.")
    for fit_name, fit in laws.items():
        for w in fit.get("warnings") or []:
            sec.warn(f"{fit_name}: {w}")
