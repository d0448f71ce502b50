"""Read result tables for fitting: CSV, a study database (SQLite / SQLAlchemy URL) or a study
spec (YAML, resolved by ``densescale.study.results_frame``).

Normalised frame columns: ``n`` (non-embedding parameters), ``d`` (annotation pairs),
``annotation``, ``y`` (the chosen metric), ``sigma`` (its standard error or NaN), ``heldout``
(bool) and ``row`` (CSV line number, or the row's position in the database table).

Example:
    >>> frame = read_results("results.csv")                       # or "study.db", "spec.yaml"
    >>> rows, note = select_rows(frame, "model", annotation="human")
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pandas as pd

from densescale.errors import DataError, DenseScaleError

DEFAULT_METRIC = "contrastive_entropy"
DB_TABLE = "runs"
DB_REQUIRED = ("n", "d", "annotation", "status")
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f", "", "nan", "none"}


def _is_db(source: str) -> bool:
    return "://" in source or source.endswith((".db", ".sqlite", ".sqlite3"))


def _read_db(source: str, metric: str) -> pd.DataFrame:
    import sqlalchemy as sa

    if "://" not in source:
        if not Path(source).is_file():
            raise DataError("study database not found", source)
        url = f"sqlite:///{Path(source).resolve()}"
    else:
        url = source
    try:
        engine = sa.create_engine(url)
        tables = sa.inspect(engine).get_table_names()
    except Exception as e:  # noqa: BLE001 - any driver error becomes a user error
        raise DataError(f"cannot open the study database: {e}", source) from e
    if DB_TABLE not in tables:
        raise DataError(f"table {DB_TABLE!r} not found (tables: {tables or 'none'})", source)
    df = pd.read_sql_table(DB_TABLE, engine)
    engine.dispose()
    missing = [c for c in (*DB_REQUIRED, metric) if c not in df.columns]
    if missing:
        raise DataError(f"table {DB_TABLE!r} lacks column(s) {missing}", source)
    df["row"] = np.arange(len(df))
    return df[df["status"].astype(str) == "done"].reset_index(drop=True)


def _read_spec(source: str) -> pd.DataFrame:
    try:
        study = importlib.import_module("densescale.study")
    except ImportError as e:
        raise DenseScaleError("reading a study spec needs densescale.study, which is not "
                              f"available ({e})") from e
    fn = getattr(study, "results_frame", None)
    if fn is None:
        raise DenseScaleError("densescale.study.results_frame(spec_path) does not exist yet; "
                              "pass a CSV or the study database instead")
    df = pd.DataFrame(fn(source)).reset_index(drop=True)
    df["row"] = np.arange(len(df))
    if "status" in df.columns:
        df = df[df["status"].astype(str) == "done"].reset_index(drop=True)
    return df


def _as_bool(values: pd.Series, source: str, rows: pd.Series) -> np.ndarray:
    out = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        if isinstance(v, bool | np.bool_):
            out[i] = bool(v)
            continue
        s = str(v).strip().lower()
        if s in _TRUE:
            out[i] = True
        elif s not in _FALSE:
            raise DataError(f"heldout must be true/false, got {v!r}", source, int(rows.iloc[i]))
    return out


def read_results(source: str | Path, metric: str = DEFAULT_METRIC) -> pd.DataFrame:
    """Read a results table and normalise it (see module docstring).

    Args:
        source: ``.csv`` file, ``.db``/``.sqlite`` file or SQLAlchemy URL (table ``runs``),
            or a ``.yaml``/``.yml`` study spec. Where a ``status`` column exists, only rows
            with ``status == 'done'`` are kept.
        metric: column holding the metric to fit (lower is better).
    """
    source = str(source)
    if source.endswith((".yaml", ".yml")):
        df = _read_spec(source)
    elif _is_db(source):
        df = _read_db(source, metric)
    else:
        if not Path(source).is_file():
            raise DataError("results file not found", source)
        try:
            df = pd.read_csv(source)
        except Exception as e:  # noqa: BLE001
            raise DataError(f"cannot parse as CSV: {e}", source) from e
        df["row"] = np.arange(len(df)) + 2                 # line numbers (header = line 1)
        if "status" in df.columns:                         # a study export: finished runs only
            df = df[df["status"].astype(str) == "done"].reset_index(drop=True)
    if metric not in df.columns:
        raise DataError(f"metric column {metric!r} not found (columns: "
                        f"{[c for c in df.columns if c != 'row']})", source)
    out = pd.DataFrame({
        "n": pd.to_numeric(df["n"], errors="coerce") if "n" in df else np.nan,
        "d": pd.to_numeric(df["d"], errors="coerce") if "d" in df else np.nan,
        "annotation": df["annotation"].astype(str) if "annotation" in df else "human",
        "y": pd.to_numeric(df[metric], errors="coerce"),
        "sigma": (pd.to_numeric(df[f"{metric}_stderr"], errors="coerce")
                  if f"{metric}_stderr" in df else np.nan),
        "heldout": (_as_bool(df["heldout"], source, df["row"]) if "heldout" in df
                    else np.zeros(len(df), dtype=bool)),
        "row": df["row"].astype(int),
    })
    out.attrs["source"] = source
    out.attrs["metric"] = metric
    if out.empty:
        raise DataError("no result rows (with status 'done')", source)
    for i in range(len(out)):
        y = out["y"].iat[i]
        if not (np.isfinite(y) and y > 0):
            raise DataError(f"{metric} must be a positive number, got {df[metric].iat[i]!r}",
                            source, int(out["row"].iat[i]))
    return out


def _need(frame: pd.DataFrame, cols: tuple[str, ...]) -> None:
    source = frame.attrs.get("source")
    for c in cols:
        bad = np.flatnonzero(~(np.isfinite(frame[c].to_numpy(float)) & (frame[c] > 0)))
        if bad.size:
            i = int(bad[0])
            raise DataError(f"column {c!r} must hold positive numbers, got {frame[c].iat[i]!r}",
                            source, int(frame["row"].iat[i]))


def select_rows(frame: pd.DataFrame, law: str,
                annotation: str | None = None) -> tuple[pd.DataFrame, str]:
    """Rows used to fit ``law`` and a one-line note on how they were chosen.

    Model law: rows of the annotation type at the largest D present (if D is recorded);
    data law: rows at the largest N (if N is recorded); joint: all rows of the type;
    "annotations": every type. Without ``annotation``, a single type is used as is and
    "human" is chosen among several.
    """
    source = frame.attrs.get("source")
    types = sorted(frame["annotation"].unique())
    if law != "annotations":
        if annotation is None:
            if len(types) > 1 and "human" not in types:
                raise DenseScaleError(f"several annotation types {types}; choose one with "
                                      "--annotation")
            annotation = types[0] if len(types) == 1 else "human"
        if annotation not in types:
            raise DataError(f"no rows with annotation {annotation!r} (types: {types})", source)
        frame = frame[frame["annotation"] == annotation]
    note = f"annotation {annotation!r}" if law != "annotations" else f"annotations {types}"
    need = {"model": ("n",), "data": ("d",), "joint": ("n", "d"), "annotations": ("d",)}
    if law not in need:
        raise DenseScaleError(f"unknown law {law!r}; choose model, data, joint or annotations")
    if law in ("model", "data"):
        other = "d" if law == "model" else "n"
        if frame[other].notna().any():
            _need(frame, (other,))
            top = frame[other].max()
            frame = frame[np.isclose(frame[other], top, rtol=1e-9)]
            note += f", rows at the largest {other.upper()} = {top:.4g}"
    _need(frame, need[law])
    return frame.reset_index(drop=True), note


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
