"""The summary box at the top of the report: each fitted law with its key constants and R², each
law's held-out error (``summary["headline"]["heldout"]``; ``joint_heldout`` kept), the best
model against BM25, and how many runs learned.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from densescale.report.html import Section
from densescale.report.laws import CONSTANTS
from densescale.report.runs import done_rows, not_learned

SYMBOLS = {"A": "A", "B": "B", "alpha": "α", "beta": "β", "delta": "δ"}
NAMES = {"model": "Model-size law L(N)", "data": "Data-size law L(D)",
         "joint": "Joint law L(N,D)", "annotations": "Annotation types"}


def _f(v: Any, fmt: str = ".3g") -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else \
        format(float(v), fmt)


def _law(law: str, fit: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    consts = {k: fit.get(k) for k in CONSTANTS[law]}
    out = {**consts, "r2": fit.get("r2"), "r2_log": fit.get("r2_log"),
           "n_points": fit.get("n_points")}
    txt = ", ".join(f"{SYMBOLS[k]} = {_f(v)}" for k, v in consts.items())
    return (f"{NAMES[law]}: {txt}; R² {_f(fit.get('r2'), '.4f')} (raw), "
            f"{_f(fit.get('r2_log'), '.4f')} (log); {fit.get('n_points')} points."), out


def _runs(runs: pd.DataFrame) -> dict[str, int]:
    done = done_rows(runs)
    out = {"finished": int(len(done)), "of": int(len(runs))}
    if "learned" not in done.columns:
        return {**out, "learned": None, "not_learned": None, "unknown": int(len(done))}
    bad = not_learned(done)
    unknown = done["learned"].map(lambda v: v is None or pd.isna(v))
    return {**out, "learned": int((~bad & ~unknown).sum()), "not_learned": int(bad.sum()),
            "unknown": int(unknown.sum())}


def _best(runs: pd.DataFrame) -> dict[str, Any] | None:
    """The learned (or not-known-bad) run with the best nDCG@10, with BM25's nDCG@10 on the
    same queries and pool (its own row's ``bm25_ndcg_at_10``)."""
    done = done_rows(runs)
    if "ndcg_at_10" not in done.columns:
        return None
    ok = done[~not_learned(done)]
    vals = pd.to_numeric(ok["ndcg_at_10"], errors="coerce")
    if vals.notna().sum() == 0:
        return None
    row = ok.loc[vals.idxmax()]
    bm25 = row.get("bm25_ndcg_at_10")
    bm25 = None if bm25 is None or pd.isna(bm25) else float(bm25)
    best = float(vals.max())
    return {"ndcg_at_10": best, "bm25_ndcg_at_10": bm25,
            "ratio_to_bm25": best / bm25 if bm25 else None,
            "rung": None if pd.isna(row.get("rung")) else str(row.get("rung")),
            "n": float(row["n"]), "d": float(row["d"]), "annotation": str(row["annotation"])}


def headline_section(docs: dict[str, Any], errors: dict[str, str], runs: pd.DataFrame
                     ) -> tuple[Section, dict[str, Any]]:
    """The framed summary (first section of the page) and ``summary["headline"]``."""
    sec = Section("Summary", box=True)
    out: dict[str, Any] = {"laws": {}, "not_fitted": dict(errors)}
    lines = []
    for law in ("model", "data", "joint"):
        if law in docs:
            txt, out["laws"][law] = _law(law, docs[law]["fit"])
            lines.append(txt)
        else:
            lines.append(f"{NAMES[law]}: not fitted ({errors.get(law, 'no fit')}).")
    ann = (docs.get("annotations") or {}).get("laws") or {}
    if ann:
        out["laws"]["annotations"] = {t: {"beta": f.get("beta"), "r2": f.get("r2")}
                                      for t, f in ann.items()}
        lines.append("Annotation types (data-size law each): " + "; ".join(
            f"{t} β = {_f(f.get('beta'))}, R² {_f(f.get('r2'), '.3f')}" for t, f in ann.items()))
    out["heldout"] = {}
    for law in ("model", "data", "joint"):
        hd = (docs.get(law) or {}).get("holdout")
        if hd:
            out["heldout"][law] = {k: hd.get(k) for k in ("n_fit", "n_heldout",
                                                          "mean_rel_error", "max_rel_error")}
            lines.append(f"{NAMES[law]} on {hd['n_heldout']} held-out point(s), fitted on "
                         f"{hd['n_fit']}: mean relative error {hd['mean_rel_error']:.2%}, max "
                         f"{hd['max_rel_error']:.2%}.")
        elif (docs.get(law) or {}).get("holdout_note"):
            lines.append(f"{NAMES[law]}: no held-out points ({docs[law]['holdout_note']}).")
    hd = (docs.get("joint") or {}).get("holdout")
    out["joint_heldout"] = out["heldout"].get("joint")
    if not hd and "joint" in docs:
        lines.append("Joint law: no held-out points, so no held-out error (mark points "
                     "held out in the study, or give --holdout largest).")
    best = out["best"] = _best(runs)
    if best is None:
        lines.append("No learned run carries nDCG@10.")
    else:
        who = f"{best['rung'] or 'N=' + _f(best['n'])}, D = {_f(best['d'])}, {best['annotation']}"
        vs = ("no BM25 reference (set bm25: true in the study's eval: block)"
              if best["bm25_ndcg_at_10"] is None else
              f"BM25 {best['bm25_ndcg_at_10']:.4f} on the same queries and pool "
              f"({best['ratio_to_bm25']:.0%} of BM25)")
        lines.append(f"Best model: nDCG@10 {best['ndcg_at_10']:.4f} ({who}); {vs}.")
    r = out["runs"] = _runs(runs)
    if r["learned"] is None:
        lines.append(f"Runs: {r['finished']} finished of {r['of']}; whether they learned is "
                     "not recorded.")
    else:
        lines.append(f"Runs: {r['learned']} of {r['finished']} finished runs learned "
                     f"({r['not_learned']} did not, {r['unknown']} unknown; {r['of']} in all).")
    sec.items(lines)
    sec.text("Each law's section below sets the paper's published MS MARCO constants beside the "
             "fitted ones: another dataset and scale, for orientation only.", "note")
    return sec, out
