"""The one table of ranking-metric names.

Each metric has a canonical *key* (the column name in result rows, JSON, the results database
and CSV/Parquet exports; SQL-safe, so ``SELECT ndcg_at_10 FROM runs`` needs no quoting), the
ir_measures measure it is computed with, a display label, and the aliases users type (the
keys of densescale before results schema 4, ``ndcg@10`` ..., are aliases):

=================  ================  ============  ===========================
key                ir_measures name  label         aliases
=================  ================  ============  ===========================
``ndcg_at_10``     ``nDCG@10``       nDCG@10       ndcg@10, ndcg_cut_10
``mrr_at_10``      ``RR@10``         MRR@10        mrr@10, rr@10
``recall_at_100``  ``R@100``         Recall@100    recall@100, r@100
``recall_at_1000`` ``R@1000``        Recall@1000   recall@1000, r@1000
``map``            ``AP``            MAP           ap, map@1000
=================  ================  ============  ===========================

``canonical`` maps any of them to the key; ``measure_name`` to the ir_measures name;
``canonical_column`` also maps result columns (``bm25_ndcg@10`` -> ``bm25_ndcg_at_10``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from densescale.errors import ConfigError


@dataclass(frozen=True)
class Metric:
    key: str  # column name in results (lower case)
    measure: str  # ir_measures name
    label: str  # for tables and plots
    aliases: tuple[str, ...] = ()


METRICS: tuple[Metric, ...] = (
    Metric("ndcg_at_10", "nDCG@10", "nDCG@10", ("ndcg@10", "ndcg_cut_10", "ndcg_cut.10")),
    Metric("mrr_at_10", "RR@10", "MRR@10", ("mrr@10", "rr@10", "recip_rank@10")),
    Metric("recall_at_100", "R@100", "Recall@100", ("recall@100", "r@100", "recall_100")),
    Metric("recall_at_1000", "R@1000", "Recall@1000", ("recall@1000", "r@1000",
                                                         "recall_1000")),
    Metric("map", "AP", "MAP", ("ap", "map@1000", "ap@1000")),
)
BM25_PREFIX = "bm25_"  # BM25 on the same queries and pool: ``bm25_<key>`` columns
# result columns of densescale before results schema 4 -> their key (see canonical_column)
LEGACY_COLUMNS: dict[str, str] = {a: m.key for m in METRICS for a in m.aliases
                                   if a.replace("@", "_at_") == m.key}
RANKING_KEYS: tuple[str, ...] = tuple(m.key for m in METRICS)
_BY_NAME: dict[str, Metric] = {}
for _m in METRICS:
    for _name in (_m.key, _m.measure, _m.label, *_m.aliases):
        _BY_NAME[_name.lower().replace("(rel=1)", "")] = _m


def lookup(name: str) -> Metric | None:
    """The table entry for a key, ir_measures name, label or alias (case-insensitive)."""
    return _BY_NAME.get(str(name).lower().replace("(rel=1)", ""))


def canonical(name: str) -> str:
    """Result-column key of a metric name; names outside the table are returned as given
    (any ir_measures measure can still be computed, under its own name)."""
    m = lookup(name)
    return m.key if m else str(name)


def canonical_column(name: str) -> str:
    """Column name of a result table in the current schema: the old metric columns
    (``ndcg@10``, ``bm25_ndcg@10``, ``ndcg@10_stderr`` ...) become their SQL-safe key; every
    other column is returned unchanged."""
    s = str(name)
    for old, new in LEGACY_COLUMNS.items():
        for pre in ("", BM25_PREFIX):
            for suf in ("", "_stderr"):
                if s == pre + old + suf:
                    return pre + new + suf
    return s


def legacy_renames(columns: Iterable[str]) -> dict[str, str]:
    """{old column: new column} for the old metric columns among ``columns`` whose new name
    is not also present (feed to ``DataFrame.rename``)."""
    cols = [str(c) for c in columns]
    out = {c: canonical_column(c) for c in cols if canonical_column(c) != c}
    return {o: n for o, n in out.items() if n not in cols}


def measure_name(name: str) -> str:
    """ir_measures name for a metric name (known aliases translated)."""
    m = lookup(name)
    return m.measure if m else str(name)


def label(name: str) -> str:
    """Display label (``nDCG@10``) of a metric name; ``bm25_<key>`` -> ``BM25 <label>``."""
    s = str(name)
    if s.startswith(BM25_PREFIX) and lookup(s[len(BM25_PREFIX):]) is not None:
        return "BM25 " + label(s[len(BM25_PREFIX):])
    m = lookup(name)
    return m.label if m else str(name)


def require_known(name: str) -> Metric:
    m = lookup(name)
    if m is None:
        raise ConfigError(f"unknown metric {name!r} (known: {', '.join(RANKING_KEYS)})")
    return m
