"""Read a study's results: the one reader behind ``densescale fit`` and ``densescale report``.

Sources: a CSV or Parquet export, JSON lines (``eval --out``: one row per line; or a JSON
list), the results database (SQLite path or SQLAlchemy URL, table ``runs``), a study spec
(YAML; its design's rows via ``results_frame``) or a folder holding one of ``results.jsonl``,
``results.csv``, ``results.parquet``, ``results.db`` (the first found). Every column of the
source is kept (the metric columns of exports before results schema 4, ``ndcg@10`` ...,
renamed to their SQL-safe keys, ``ndcg_at_10`` ..., by ``metrics.canonical_column``); in front
come the normalised columns the laws and the report read:

* ``n`` (non-embedding parameters) and ``d`` (annotated pairs), as floats (NaN when absent);
* ``annotation`` (str, "human" when the source has no such column);
* ``y`` (the chosen metric as a float; NaN where missing or not a number, so that the laws can
  name the row) and ``sigma`` (its standard error, column ``<metric>_stderr``, or NaN);
* ``heldout`` (bool), ``learned`` (True / False / None, only when the source records it) and
  ``row``: the CSV line number, or the row's id (else position) in the database table.

Example:
    >>> frame = read_results("runs/demo/results.db")                  # finished runs only
    >>> runs = read_results("study.yaml", metric=None, done_only=False)  # every row, as is
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from densescale.errors import DataError
from densescale.evaluate.metrics import canonical, canonical_column, legacy_renames

DEFAULT_METRIC = "contrastive_entropy"
DB_TABLE = "runs"
DB_SUFFIXES = (".db", ".sqlite", ".sqlite3")
PARQUET_SUFFIXES = (".parquet", ".pq")
SPEC_SUFFIXES = (".yaml", ".yml")
JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")
FOLDER_FILES = ("results.jsonl", "results.csv", "results.parquet", "results.db")
FRONT = ("n", "d", "annotation", "y", "sigma", "heldout", "learned", "row")
_TRUE = {"1", "true", "yes", "y", "t", "1.0"}
_FALSE = {"0", "false", "no", "n", "f", "0.0"}
_NONE = {"", "nan", "none", "null", "<na>"}


def _read_db(source: str) -> pd.DataFrame:
    import sqlalchemy as sa

    if "://" in source:
        url = source
    elif Path(source).is_file():
        url = f"sqlite:///{Path(source).resolve()}"
    else:
        raise DataError("study database not found", source)
    try:
        engine = sa.create_engine(url)
        tables = sa.inspect(engine).get_table_names()
    except Exception as e:  # noqa: BLE001 - any driver error becomes a user error
        msg = (str(getattr(e, "orig", None) or e).strip().splitlines() or [type(e).__name__])[0]
        raise DataError(f"cannot open the study database: {msg}", source) from e
    if DB_TABLE not in tables:
        raise DataError(f"table {DB_TABLE!r} not found (tables: {tables or 'none'})", source)
    try:
        df = pd.read_sql_table(DB_TABLE, engine)
    finally:
        engine.dispose()
    ids = df["id"] if "id" in df.columns else pd.Series(dtype=float)
    df["row"] = ids if ids.notna().all() and len(ids) else np.arange(1, len(df) + 1)
    return df


def _read_spec(source: str) -> pd.DataFrame:
    from densescale.study.driver import results_frame

    df = pd.DataFrame(results_frame(source)).reset_index(drop=True)
    df["row"] = np.arange(1, len(df) + 1)                  # position in the design's table
    return df


def _read_json(source: str) -> pd.DataFrame:
    """JSON lines (one object per line, line numbers as ``row``) or one JSON list."""
    import json

    try:
        text = Path(source).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError("not a UTF-8 JSON lines file of result rows", source) from None
    rows, lines = [], []
    if text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"malformed JSON: {e.msg}", source, e.lineno) from None
        lines = list(range(1, len(rows) + 1))
    else:
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise DataError(f"malformed JSON: {e.msg}", source, n) from None
                lines.append(n)
    bad = next((i for i, r in enumerate(rows) if not isinstance(r, dict)), None)
    if bad is not None:
        raise DataError(f"a result row must be a JSON object, got {type(rows[bad]).__name__}",
                        source, lines[bad])
    df = pd.DataFrame(rows)
    df["row"] = lines                                        # line (or list position)
    return df


def _in_folder(source: str) -> str:
    """The results file inside a folder (``eval --out``, ``study export --out``)."""
    for name in FOLDER_FILES:
        if (Path(source) / name).is_file():
            return str(Path(source) / name)
    raise DataError(f"folder holds none of {', '.join(FOLDER_FILES)}", source)


def _read_file(source: str) -> pd.DataFrame:
    if not Path(source).is_file():
        raise DataError("results file not found", source)
    if source.endswith(JSON_SUFFIXES):
        return _read_json(source)
    if source.endswith(PARQUET_SUFFIXES):
        try:
            df = pd.read_parquet(source)
        except Exception as e:  # noqa: BLE001
            raise DataError(f"cannot read as Parquet: {e}", source) from e
        df["row"] = np.arange(1, len(df) + 1)                # 1-based row number
        return df
    try:
        df = pd.read_csv(source)
    except Exception as e:  # noqa: BLE001
        raise DataError(f"cannot parse as CSV: {e}", source) from e
    df["row"] = np.arange(len(df)) + 2                       # line numbers (header = line 1)
    return df


def _flags(df: pd.DataFrame, column: str, source: str, *, missing: bool | None) -> list:
    """A true/false column as Python bools; empty cells become ``missing``."""
    out: list = []
    for v, row in zip(df[column], df["row"], strict=True):
        if isinstance(v, bool | np.bool_):
            out.append(bool(v))
            continue
        s = str(v).strip().lower()
        if s in _TRUE:
            out.append(True)
        elif s in _FALSE:
            out.append(False)
        elif s in _NONE:
            out.append(missing)
        else:
            raise DataError(f"{column} must be true/false, got {v!r}", source, int(row))
    return out


def _numeric(df: pd.DataFrame, column: str) -> pd.Series:
    if column not in df.columns:
        return pd.Series(np.nan, index=df.index, dtype=float)
    return pd.to_numeric(df[column], errors="coerce").astype(float)


def read_results(source: str | Path, metric: str | None = DEFAULT_METRIC, *,
                 done_only: bool = True) -> pd.DataFrame:
    """Read a results table and normalise it (columns: see the module docstring).

    Args:
        source: ``.csv``, ``.parquet`` or ``.jsonl`` export, ``.db``/``.sqlite`` file or
            SQLAlchemy URL (table ``runs``), a ``.yaml``/``.yml`` study spec, or a folder
            holding ``results.{jsonl,csv,parquet,db}``.
        metric: column holding the metric to fit (lower is better), copied to ``y`` with its
            standard error in ``sigma`` (a metric's alias, e.g. ``nDCG@10``, names its
            column); None reads the table without a metric.
        done_only: keep only rows with ``status == 'done'`` (where a ``status`` column exists).

    Returns:
        The table, with ``attrs["source"]`` and ``attrs["metric"]`` set.

    Raises:
        DataError: the source is missing or unreadable, lacks the metric column, has a
            true/false column (heldout, learned) with another value, or has no rows left.
    """
    source = str(source)
    if "://" not in source and Path(source).is_dir():
        source = _in_folder(source)
    if source.endswith(SPEC_SUFFIXES):
        df = _read_spec(source)
    elif "://" in source or source.endswith(DB_SUFFIXES):
        df = _read_db(source)
    else:
        df = _read_file(source)
    df = df.rename(columns=legacy_renames(df.columns))
    if metric is not None:
        metric = canonical_column(canonical(metric))  # nDCG@10, ndcg@10 -> ndcg_at_10
    if metric is not None and metric not in df.columns:
        raise DataError(f"metric column {metric!r} not found (columns: "
                        f"{[c for c in df.columns if c != 'row']})", source)
    if done_only and "status" in df.columns:
        df = df[df["status"].astype(str) == "done"]
    df = df.reset_index(drop=True)
    if df.empty:
        raise DataError("no result rows" + (" with status 'done'" if done_only else ""), source)
    front = {
        "n": _numeric(df, "n"),
        "d": _numeric(df, "d"),
        "annotation": (df["annotation"].astype(str) if "annotation" in df.columns
                       else pd.Series("human", index=df.index)),
    }
    if metric is not None:
        front["y"] = _numeric(df, metric)
        front["sigma"] = _numeric(df, f"{metric}_stderr")
    front["heldout"] = pd.Series(
        _flags(df, "heldout", source, missing=False) if "heldout" in df.columns
        else np.zeros(len(df), dtype=bool), index=df.index, dtype=bool)
    if "learned" in df.columns:
        front["learned"] = pd.Series(_flags(df, "learned", source, missing=None),
                                     index=df.index, dtype=object)
    front["row"] = df["row"].astype(int)
    rest = df[[c for c in df.columns if c not in front and c not in FRONT]]
    out = pd.concat([pd.DataFrame(front), rest], axis=1)
    out.attrs["source"] = source
    out.attrs["metric"] = metric
    return out
