"""Frame-only helpers of the laws: which rows a law is fitted on, which are valid, X and sigma.

The laws take a pandas DataFrame with the normalised columns of
``densescale.study.results.read_results`` (``n``, ``d``, ``annotation``, ``y``, ``sigma``,
``heldout``, ``row`` and, where the study records it, ``learned`` with ``invalid_reason``);
they never read files of the study themselves.

Example:
    >>> rows, note = select_rows(frame, "model", annotation="human")
    >>> rows, excluded, notes = split_learned(rows)            # not-learned points left out
    >>> law = ModelSizeLaw().fit(X_of(rows, "model"), rows["y"])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from densescale.errors import DataError, DenseScaleError

UNKNOWN_VALIDITY = ("validity unknown: the results have no 'learned' column, so points whose "
                    "model did not learn (not below its step-0 value or chance) cannot be told "
                    "apart; every point is used")


def plain(v: Any) -> Any:
    """A numpy scalar as the Python value it holds (``np.float64(nan)`` -> ``nan``,
    ``np.str_('10')`` -> ``'10'``), so messages show values, not numpy reprs."""
    return v.item() if isinstance(v, np.generic) else v


def point_label(row: Any) -> str:
    """'rung l2-h8, n=1.2e+05, d=200, human (row 5)' for one frame row (a Series)."""
    parts = []
    if isinstance(row.get("rung"), str):
        parts.append(f"rung {row['rung']}")
    for k in ("n", "d"):
        v = row.get(k)
        if v is not None and np.isfinite(float(v)):
            parts.append(f"{k}={float(v):.4g}")
    parts.append(str(row.get("annotation", "human")))
    return ", ".join(parts) + f" (row {row.get('row')})"


def check_metric(frame: pd.DataFrame) -> None:
    """Every row's metric ``y`` must be a positive finite number (never silently dropped).

    Raises:
        DataError: naming the source, the row and the point.
    """
    y = frame["y"].to_numpy(dtype=float)
    bad = np.flatnonzero(~(np.isfinite(y) & (y > 0)))
    if bad.size:
        i = int(bad[0])
        metric = frame.attrs.get("metric") or "the metric"
        raw = frame[metric].iat[i] if metric in frame.columns else y[i]
        more = f" ({bad.size - 1} more such row(s))" if bad.size > 1 else ""
        raise DataError(f"{metric} must be a positive finite number, got {plain(raw)!r} at "
                        f"{point_label(frame.iloc[i])}{more}", frame.attrs.get("source"),
                        int(frame["row"].iat[i]))


def split_learned(rows: pd.DataFrame, include_not_learned: bool = False
                  ) -> tuple[pd.DataFrame, list[dict[str, Any]], list[str]]:
    """Leave out the points whose model did not learn (column ``learned`` False).

    Args:
        rows: frame rows selected for one law.
        include_not_learned: keep them (the warning then says they are included).

    Returns:
        (rows to fit, the excluded points with their reason, warning messages). Without a
        ``learned`` column every row is kept and the warning says validity is unknown.
    """
    if "learned" not in rows.columns:
        return rows, [], [UNKNOWN_VALIDITY]
    flags = rows["learned"].tolist()
    unknown = np.array([v is None or bool(pd.isna(v)) for v in flags], dtype=bool)
    bad = np.array([not u and not bool(v) for u, v in zip(unknown, flags, strict=True)],
                   dtype=bool)
    notes: list[str] = []
    if unknown.any():
        notes.append(f"validity unknown for {int(unknown.sum())} point(s) (no 'learned' value): "
                     + "; ".join(point_label(r) for _, r in rows[unknown].iterrows()))
    points = []
    for _, r in rows[bad].iterrows():
        reason = r.get("invalid_reason")
        reason = reason if isinstance(reason, str) and reason else "not learned (no reason given)"
        points.append({"row": int(r["row"]), "rung": r.get("rung") if isinstance(
            r.get("rung"), str) else None, "n": _num(r.get("n")), "d": _num(r.get("d")),
            "annotation": str(r.get("annotation")), "y": _num(r.get("y")), "reason": reason,
            "label": point_label(r)})
    if not points:
        return rows, [], notes
    listing = "; ".join(f"{p['label']}: {p['reason']}" for p in points)
    if include_not_learned:
        notes.append(f"included {len(points)} point(s) that did not learn "
                     f"(--include-not-learned): {listing}")
        return rows, [], notes
    notes.append(f"excluded {len(points)} point(s) that did not learn (include them with "
                 f"--include-not-learned): {listing}")
    return rows[~bad].reset_index(drop=True), points, notes


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def _need(frame: pd.DataFrame, cols: tuple[str, ...]) -> None:
    source = frame.attrs.get("source")
    for c in cols:
        bad = np.flatnonzero(~(np.isfinite(frame[c].to_numpy(float)) & (frame[c] > 0)))
        if bad.size:
            i = int(bad[0])
            raise DataError(f"column {c!r} must hold positive numbers, "
                            f"got {plain(frame[c].iat[i])!r}",
                            source, int(frame["row"].iat[i]))


def select_rows(frame: pd.DataFrame, law: str,
                annotation: str | None = None) -> tuple[pd.DataFrame, str]:
    """Rows used to fit ``law`` and a one-line note on how they were chosen.

    Model law: rows of the annotation type at the D of its model sweep (``sweep_value``: the D
    with the most distinct N, largest on ties; if D is recorded); data law: rows at the N of
    its data sweep; joint: all rows of the type;
    "annotations": every type. Without ``annotation``, a single type is used as is and
    "human" is chosen among several.
    """
    source = frame.attrs.get("source")
    types = sorted(str(plain(t)) for t in frame["annotation"].unique())
    if law != "annotations":
        if annotation is None:
            if len(types) > 1 and "human" not in types:
                raise DenseScaleError(f"several annotation types {types}; choose one with "
                                      "--annotation")
            annotation = types[0] if len(types) == 1 else "human"
        annotation = str(plain(annotation))
        if annotation not in types:
            raise DataError(f"no rows with annotation {annotation!r} (types: {types})", source)
        frame = frame[frame["annotation"].map(lambda t: str(plain(t))) == annotation]
    note = f"annotation {annotation!r}" if law != "annotations" else f"annotations {types}"
    need = {"model": ("n",), "data": ("d",), "joint": ("n", "d"), "annotations": ("d",)}
    if law not in need:
        raise DenseScaleError(f"unknown law {law!r}; choose model, data, joint or annotations")
    if law in ("model", "data"):
        other = "d" if law == "model" else "n"
        if frame[other].notna().any():
            _need(frame, (other,))
            top = sweep_value(frame, law)
            frame = frame[np.isclose(frame[other], top, rtol=1e-9)]
            note += f", rows of the sweep at {other.upper()} = {top:.4g}"
    _need(frame, need[law])
    return frame.reset_index(drop=True), note


def sweep_value(frame: pd.DataFrame, law: str) -> float:
    """The fixed value of the other axis for a single-axis law: the D (model law) or N (data
    law) with the most distinct values of the swept axis, the largest on ties. For the paper's
    designs that is the largest D (model sweep) and the largest N (data sweep); a data sweep run
    on a mid-size rung, or a held-out point beyond the ladder, does not move it."""
    swept, other = ("n", "d") if law == "model" else ("d", "n")
    counts = frame.groupby(other)[swept].nunique()
    best = counts.max()
    return float(counts[counts == best].index.max())


def X_of(frame: pd.DataFrame, law: str) -> np.ndarray:
    """Feature matrix for ``law``: [n, 1] (N or D) or [n, 2] (N, D)."""
    cols = {"model": ["n"], "data": ["d"], "joint": ["n", "d"], "annotations": ["d"]}[law]
    return frame[cols].to_numpy(dtype=float)


def sigma_of(frame: pd.DataFrame) -> np.ndarray | None:
    """Standard errors when every selected row has one, else None."""
    s = frame["sigma"].to_numpy(dtype=float)
    return s if np.all(np.isfinite(s) & (s > 0)) else None


def read_holdout_file(path: str | Path, frame: pd.DataFrame) -> np.ndarray:
    """Mask of ``frame`` rows listed in a CSV of held-out points (columns among n, d,
    annotation; a row matches when all the listed columns agree)."""
    path = str(path)
    if not Path(path).is_file():
        raise DataError("holdout file not found", path)
    spec = pd.read_csv(path)
    keys = [c for c in ("n", "d", "annotation") if c in spec.columns]
    if not any(k in keys for k in ("n", "d")):
        raise DataError("holdout file needs a column n and/or d", path)
    mask = np.zeros(len(frame), dtype=bool)
    for i in range(len(spec)):
        hit = np.ones(len(frame), dtype=bool)
        for k in keys:
            if k == "annotation":
                hit &= frame[k].to_numpy() == str(spec[k].iat[i])
            else:
                hit &= np.isclose(frame[k].to_numpy(float), float(spec[k].iat[i]), rtol=1e-9)
        if not hit.any():
            raise DataError("held-out point matches no fitted row", path, i + 2)
        mask |= hit
    return mask
