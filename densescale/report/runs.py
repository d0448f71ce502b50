"""The report's run-level sections: the runs (not-learned ones greyed, with their reason), where
checkpoints were chosen, which annotation types learned at all, retrieval quality beside the
BM25 reference, and the spread between seeds.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from densescale.evaluate.metrics import RANKING_KEYS, label
from densescale.report.html import Markup, Section, link

RUN_COLUMNS = ["rung", "n", "d", "annotation", "seed", "heldout", "status",
               "contrastive_entropy", "contrastive_entropy_stderr",
               "contrastive_entropy_calibrated", "chance", "step0_contrastive_entropy",
               "best_step", *RANKING_KEYS, "wall_time_s", "learned", "invalid_reason"]
POINT = ["n", "d", "annotation"]


def done_rows(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["status"] == "done"] if "status" in runs.columns else runs


def not_learned(runs: pd.DataFrame) -> pd.Series:
    """True where a run is recorded as not learned (False in ``learned``; None is unknown)."""
    if "learned" not in runs.columns:
        return pd.Series(False, index=runs.index)
    return runs["learned"].map(lambda v: v is not None and not pd.isna(v) and not bool(v))


def _display(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for c in ("n", "d", "seed", "best_step"):
        if c in out.columns:
            out[c] = pd.to_numeric(out[c], errors="coerce").astype("Int64")
    return out


def _json_values(runs: pd.DataFrame, column: str, *path: str) -> set:
    out = set()
    for v in runs.get(column, pd.Series(dtype=object)).dropna():
        try:
            d = json.loads(v)
            for p in path:
                d = d[p]
        except (TypeError, ValueError, KeyError, IndexError):
            continue
        out.add(d)
    return out


def _one(values: set) -> str | None:
    return str(next(iter(values))) if len(values) == 1 else None


def _tag(split: str | None, w: str | None) -> str:
    parts = [p for p in (split, f"W={w}" if w else None) if p]
    return f" ({', '.join(parts)})" if parts else ""


def headers(runs: pd.DataFrame) -> dict[str, str]:
    """Column titles that name the split and W of each contrastive entropy, so that values
    measured with different W never stand side by side unlabelled."""
    split = _one(_json_values(runs, "eval_config", "split"))
    w = _one(_json_values(runs, "eval_config", "negatives"))
    if w is None and "chance" in runs.columns:  # chance = ln(W+1) of the final evaluation
        chances = pd.to_numeric(runs["chance"], errors="coerce").dropna()
        w = _one({str(round(math.exp(c) - 1)) for c in chances if 0 < c < 700})
    sel = _one({str(s) for s in runs.get("selection_split", pd.Series(dtype=object)).dropna()})
    w_sel = _one(_json_values(runs, "train_config", "selection", "negatives"))
    return {"contrastive_entropy": f"CE{_tag(split, w)}",
            "contrastive_entropy_stderr": "CE stderr",
            "contrastive_entropy_calibrated": f"calibrated CE{_tag(split, w)}",
            "chance": f"chance ln(W+1){_tag(None, w)}",
            "step0_contrastive_entropy": f"step-0 CE{_tag(sel, w_sel)}",
            "best_step": "best @ step", "invalid_reason": "why not learned",
            **{k: label(k) for k in RANKING_KEYS}}


def run_href(folder: str | Path, out: Path) -> str:
    """Link from the report folder ``out`` to a run folder: relative when the report lives next
    to the study (the run folder lies under ``out``'s parent), else an absolute file:// URI."""
    target = Path(folder).expanduser()
    target = (target if target.is_absolute() else Path.cwd() / target).resolve()
    base = Path(out).resolve()
    if base.parent == target or base.parent in target.parents:
        return quote(Path(os.path.relpath(target, base)).as_posix())
    return target.as_uri()


def run_links(folder: Any, out: Path) -> Markup | str:
    """"folder · summary.json" links for one run ("" when the row names no folder)."""
    if folder is None or (isinstance(folder, float) and math.isnan(folder)) or not str(folder):
        return ""
    href = run_href(str(folder), out)
    summary = (link(f"{href}/summary.json", "summary.json")
               if (Path(str(folder)) / "summary.json").exists() else "no summary.json")
    return Markup(f"{link(href + '/', 'folder')} · {summary}")


def runs_section(runs: pd.DataFrame, out: Path | None = None) -> Section:
    """Every run; the runs that did not learn are greyed with the reason in the last column.
    With ``out`` (the report folder), each row links to its artefact folder and summary.json."""
    done = done_rows(runs)
    sec = Section(f"Runs ({len(done)} finished of {len(runs)})")
    bad = not_learned(runs)
    if bad.any():
        sec.text(f"Grey rows: {int(bad.sum())} run(s) that did not learn. The laws leave them "
                 "out; the reason is in the last column.", "note")
    cols = [c for c in RUN_COLUMNS if c in runs.columns]
    table = _display(runs[cols]).rename(columns=headers(runs))
    if out is not None and "artefact_dir" in runs.columns:
        table.insert(min(1, len(table.columns)), "files",
                     pd.Series([run_links(v, out) for v in runs["artefact_dir"]],
                               index=table.index, dtype=object))
    sec.table(table,
              row_classes=["excluded" if b else None for b in bad])
    return sec


def _eval_split(runs: pd.DataFrame) -> str | None:
    for v in runs.get("eval_config", pd.Series(dtype=object)).dropna():
        try:
            split = json.loads(v).get("split")
        except (TypeError, ValueError, AttributeError):
            continue
        if split:
            return str(split)
    return None


def selection_label(runs: pd.DataFrame) -> str:
    """One sentence on where each reported number's checkpoint was chosen."""
    done = done_rows(runs)
    splits = sorted({str(s) for s in done.get("selection_split", pd.Series(dtype=object))
                     .dropna()})
    reported = _eval_split(done)
    if not splits:
        return ("The results do not record where checkpoints were chosen (written before "
                "densescale recorded it).")
    if reported and reported in splits:
        return (f"Numbers selected on the reported split: the {reported!r} split both chose "
                "each checkpoint and scored it (the paper's practice, Fang et al., Scaling Laws "
                "for Dense Retrieval, SIGIR 2024, Section 4.1), so they are optimistic.")
    where = ", ".join(repr(s) for s in splits)
    return (f"Checkpoints were chosen on the {where} split; the reported split"
            f"{f' ({reported!r})' if reported else ''} only scored the chosen checkpoint.")


def validity_section(runs: pd.DataFrame) -> tuple[Section, dict[str, Any]]:
    """Where checkpoints were chosen; per annotation type, how many runs learned."""
    sec = Section("Validity: which runs learned")
    sel = selection_label(runs)
    sec.text(sel)
    done = done_rows(runs)
    out: dict[str, Any] = {"selection": sel, "annotations": {}, "no_learned_points": []}
    if "learned" not in done.columns:
        sec.warn("The results record no 'learned' flag: whether each run beat its untrained "
                 "start and chance is unknown, and the laws keep every point.")
        return sec, out
    rows = []
    for ann, g in done.groupby("annotation", sort=True):
        bad = not_learned(g)
        unknown = g["learned"].map(lambda v: v is None or pd.isna(v))
        n_ok = int((~bad & ~unknown).sum())
        rows.append({"annotation": ann, "finished runs": len(g), "learned": n_ok,
                     "not learned": int(bad.sum()), "unknown": int(unknown.sum())})
        out["annotations"][str(ann)] = rows[-1]
        if len(g) and bad.all():
            out["no_learned_points"].append(str(ann))
            verdict = "." if ann == "human" else f": {ann} does not transfer at this scale."
            sec.warn(f"{ann}: none of its {len(g)} finished runs learned (each is no better "
                     f"than its untrained start or than chance), so {ann} has no law here"
                     f"{verdict}")
    sec.table(pd.DataFrame(rows))
    return sec, out


def ranking_section(runs: pd.DataFrame) -> tuple[Section, dict[str, Any]]:
    """Ranking metrics of the finished runs with BM25 (same queries, same pool) as the last,
    reference line."""
    sec = Section("Retrieval quality and the BM25 reference")
    done = done_rows(runs)
    keys = [k for k in RANKING_KEYS if k in done.columns and done[k].notna().any()]
    if not keys:
        return sec.warn("No run carries ranking metrics."), {}
    cols = [c for c in ("rung", "n", "d", "annotation", "seed") if c in done.columns]
    table = _display(done[cols + keys]).rename(columns={k: label(k) for k in keys})
    classes: list[str | None] = ["excluded" if b else None for b in not_learned(done)]
    bm25 = {k: float(done[f"bm25_{k}"].dropna().iloc[0]) for k in keys
            if f"bm25_{k}" in done.columns and done[f"bm25_{k}"].notna().any()}
    out: dict[str, Any] = {"bm25": bm25}
    if bm25:
        ref = {c: None for c in table.columns}
        ref[cols[0] if cols else table.columns[0]] = "BM25 (reference)"
        ref.update({label(k): v for k, v in bm25.items()})
        table = pd.concat([table, pd.DataFrame([ref])], ignore_index=True)
        classes.append("reference")
    sec.table(table, row_classes=classes)
    ok = done[~not_learned(done)]
    if "ndcg_at_10" in keys and "ndcg_at_10" in bm25 and ok["ndcg_at_10"].notna().any():
        best = float(ok["ndcg_at_10"].max())
        out["best_ndcg_at_10"], out["ratio_to_bm25"] = best, best / bm25["ndcg_at_10"] if \
            bm25["ndcg_at_10"] > 0 else math.nan
        sec.text(f"Best learned model: nDCG@10 {best:.4g}, against BM25's "
                 f"{bm25['ndcg_at_10']:.4g} "
                 f"on the same queries and pool ({out['ratio_to_bm25']:.0%} of BM25).")
    elif not bm25:
        sec.text("No BM25 reference was computed (set `bm25: true` in the study's eval: block).",
                 "note")
    return sec, out


def seed_groups(rows: pd.DataFrame, value: str = "y") -> pd.DataFrame:
    """Points (n, d, annotation) run under two or more seeds: mean, standard deviation and range
    of ``value`` across seeds."""
    if "seed" not in rows.columns or value not in rows.columns:
        return pd.DataFrame()
    g = rows.dropna(subset=[value]).groupby(POINT, dropna=False)[value]
    stats = pd.DataFrame({"seeds": g.count(), "mean": g.mean(), "seed sd": g.std(ddof=1),
                          "seed range": g.max() - g.min()}).reset_index()
    return stats[stats["seeds"] >= 2].reset_index(drop=True)


def metric_label(metric: str, runs: pd.DataFrame) -> str:
    """Which contrastive entropy (raw or calibrated) a law is fitted on, in words."""
    if metric == "contrastive_entropy":
        return ("raw contrastive entropy (the paper's: inner-product scores, no temperature)")
    if metric == "contrastive_entropy_calibrated":
        src = sorted({str(s) for s in runs.get("calibration_source", pd.Series(dtype=object))
                      .dropna()})
        how = f" (scale {', '.join(src)})" if src else ""
        return f"calibrated contrastive entropy{how}: scores at the model's own temperature"
    return label(metric)
