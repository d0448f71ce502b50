"""The one table of ranking-metric names.

Each metric has a canonical *key* (the column name in result rows, the results database and CSV
exports), the ir_measures measure it is computed with, a display label, and the aliases users
type. ``canonical`` maps any of them to the key; ``measure_name`` to the ir_measures name.
"""

from __future__ import annotations

from dataclasses import dataclass

from densescale.errors import ConfigError


@dataclass(frozen=True)
class Metric:
    key: str  # column name in results (lower case)
    measure: str  # ir_measures name
    label: str  # for tables and plots
    aliases: tuple[str, ...] = ()


METRICS: tuple[Metric, ...] = (
    Metric("ndcg@10", "nDCG@10", "nDCG@10", ("ndcg_cut_10", "ndcg_cut.10")),
    Metric("mrr@10", "RR@10", "MRR@10", ("rr@10", "recip_rank@10")),
    Metric("recall@100", "R@100", "Recall@100", ("r@100", "recall_100")),
    Metric("recall@1000", "R@1000", "Recall@1000", ("r@1000", "recall_1000")),
    Metric("map", "AP", "MAP", ("ap", "map@1000", "ap@1000")),
)
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


def measure_name(name: str) -> str:
    """ir_measures name for a metric name (known aliases translated)."""
    m = lookup(name)
    return m.measure if m else str(name)


def label(name: str) -> str:
    m = lookup(name)
    return m.label if m else str(name)


def require_known(name: str) -> Metric:
    m = lookup(name)
    if m is None:
        raise ConfigError(f"unknown metric {name!r} (known: {', '.join(RANKING_KEYS)})")
    return m
