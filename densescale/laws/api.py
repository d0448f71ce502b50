"""``fit_law``: everything ``densescale fit`` does to a results frame, as one JSON-able dict.

The frame comes from ``densescale.study.results.read_results`` (or is built by hand with the
same columns); the laws never read the study's files themselves.

Example:
    >>> from densescale.study.results import read_results
    >>> doc = fit_law(read_results("runs/demo/results.db"), "model", bootstrap=1000)
    >>> doc["fit"]["alpha"], doc["fit"]["r2"], doc["fit"]["r2_log"], doc["excluded"]
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from densescale.errors import DenseScaleError
from densescale.laws.compare import compare_annotations
from densescale.laws.fit import DataSizeLaw, ModelSizeLaw
from densescale.laws.frame import (
    X_of,
    check_metric,
    read_holdout_file,
    select_rows,
    sigma_of,
    split_learned,
)
from densescale.laws.joint import JointLaw
from densescale.laws.validate import SPLITS, holdout_mask, holdout_validate
from densescale.utils import atomic_write_json

ESTIMATORS = {"model": ModelSizeLaw, "data": DataSizeLaw, "joint": JointLaw}
LAWS = ("model", "data", "joint", "annotations")


class ValidityWarning(UserWarning):
    """Points left out (or kept) because of their ``learned`` flag, or validity unknown."""


def json_safe(obj: Any) -> Any:
    """``obj`` with NaN/inf floats as None and numpy scalars/paths as Python values, so that
    the fit document is strict JSON (``null`` where a value is undefined, e.g. R² of constant
    data)."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return str(obj) if isinstance(obj, Path) else obj


def _min_points(law: str) -> int:
    cls = ESTIMATORS["data" if law == "annotations" else law]
    return len(cls.constants) + 1


def _refuse_too_few(rows: pd.DataFrame, law: str, excluded: list[dict], note: str) -> None:
    need = _min_points(law)
    groups = rows.groupby("annotation") if law == "annotations" else [(None, rows)]
    cols = {"model": ["n"], "data": ["d"], "joint": ["n", "d"], "annotations": ["d"]}[law]
    for name, sub in groups:
        have = len(sub[cols].drop_duplicates())
        if have < need:
            what = f"annotation {name!r}: " if name is not None else ""
            why = (f"; {len(excluded)} point(s) were excluded as not learned "
                   "(--include-not-learned keeps them)" if excluded else "")
            raise DenseScaleError(
                f"{what}the {law} law has {need - 1} constants and needs at least {need} valid "
                f"points with distinct {'/'.join(c.upper() for c in cols)}; {have} left "
                f"({note}){why}")


def fit_law(frame: pd.DataFrame, law: str = "model", *, method: str = "lsq",
            holdout: str | None = None, bootstrap: int = 0, bootstrap_mode: str = "resample",
            level: float = 0.95, seed: int = 0, annotation: str | None = None,
            include_not_learned: bool = False, huber_delta: float | None = None,
            out: Path | None = None, plot: Path | None = None) -> dict[str, Any]:
    """Fit one law to a results frame, with validity checks and diagnostics.

    Args:
        frame: normalised results (columns n, d, annotation, y, sigma, heldout, row; optional
            learned, invalid_reason, rung); ``attrs`` "source" and "metric" name them.
        law: "model", "data", "joint" or "annotations" (one data law per annotation type).
        method: "lsq" (least squares, the paper's, default) or "huber" (log residuals).
        holdout: None (the frame's ``heldout`` column), "largest", "largest-n", "largest-d" or
            a CSV of held-out points.
        bootstrap, bootstrap_mode, level, seed: confidence intervals (see BaseLaw).
        annotation: annotation type (default: the only one, else "human").
        include_not_learned: keep points whose ``learned`` is False (excluded by default).
        huber_delta: Huber threshold on log residuals; None chooses it from the data.
        out: write the fit JSON here.
        plot: write figures (the law and its residuals) to this folder.

    Returns:
        The document ``densescale fit --json`` prints: law, source, metric, method, selection,
        n_rows, excluded (points left out, with reasons), warnings, fit (constants, r2, r2_log,
        loo, leverage, ...) or laws/crossings, holdout, plots.

    Raises:
        DataError: a non-finite or non-positive metric value (naming the row).
        DenseScaleError: an unknown law, or too few valid points for it.
    """
    if law not in LAWS:
        raise DenseScaleError(f"--law must be one of {LAWS}, got {law!r}")
    source, metric = frame.attrs.get("source"), frame.attrs.get("metric") or "y"
    check_metric(frame)
    rows, note = select_rows(frame, law, annotation)
    rows, excluded, notes = split_learned(rows, include_not_learned)
    for msg in notes:
        warnings.warn(msg, ValidityWarning, stacklevel=2)
    _refuse_too_few(rows, law, excluded, note)
    doc: dict[str, Any] = {"law": law, "source": str(source), "metric": metric,
                           "method": method, "selection": note, "n_rows": len(rows),
                           "excluded": excluded, "warnings": notes}
    kw = dict(method=method, bootstrap=bootstrap, level=level, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")              # recorded in each fit's "warnings"
        if law == "annotations":
            cmp = compare_annotations(rows, huber_delta=huber_delta, **kw)
            doc.update(cmp.to_dict())
            if plot:
                from densescale.laws import plots

                doc["plots"] = [str(p) for p in plots.plot_annotations(cmp, rows, plot,
                                                                       metric=metric)]
            if out:
                atomic_write_json(out, json_safe(doc))
            return doc
        X, y, sigma = X_of(rows, law), rows["y"].to_numpy(float), sigma_of(rows)
        if holdout in SPLITS:
            mask = holdout_mask(X, law, holdout)
        elif holdout:
            mask = read_holdout_file(holdout, rows)
        else:
            mask = rows["heldout"].to_numpy(bool)
        est = ESTIMATORS[law](bootstrap_mode=bootstrap_mode, huber_delta=huber_delta, **kw)
        if mask.any():
            hd = holdout_validate(est, X, y, mask, sigma).to_dict()
            hd.pop("fit")
            doc["holdout"] = hd
        else:
            est.fit(X, y, sigma)
    doc["fit"] = est.to_dict()
    if out:
        atomic_write_json(out, json_safe({**doc["fit"], "metric": metric, "source": str(source),
                                          "selection": note, "excluded": excluded,
                                          "holdout": doc.get("holdout")}))
    if plot:
        doc["plots"] = [str(p) for p in _plots(est, law, X, y, mask, plot, metric)]
    return doc


def _plots(est, law: str, X: np.ndarray, y: np.ndarray, mask: np.ndarray, plot: Path,
           metric: str) -> list[Path]:
    from densescale.laws import plots

    kw = dict(heldout=mask, metric=metric)
    if law == "model":
        paths = plots.plot_model_law(est, X, y, plot, **kw)
        paths += plots.plot_model_law_loglog(est, X, y, plot, **kw)
    elif law == "data":
        paths = plots.plot_data_law(est, X, y, plot, **kw)
    else:
        paths = plots.plot_joint(est, X, y, plot, **kw)
    return paths + plots.plot_residuals(est, plot, metric=metric, stem=f"residuals_{law}")
