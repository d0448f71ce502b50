"""The metric table: SQL-safe keys, old names as aliases, column renames."""

from __future__ import annotations

import re

import pytest

from densescale.errors import ConfigError
from densescale.evaluate.metrics import (
    METRICS,
    RANKING_KEYS,
    canonical,
    canonical_column,
    label,
    legacy_renames,
    measure_name,
    require_known,
)


def test_keys_are_sql_identifiers_and_old_names_are_aliases():
    assert RANKING_KEYS == ("ndcg_at_10", "mrr_at_10", "recall_at_100", "recall_at_1000", "map")
    assert all(re.fullmatch(r"[a-z_][a-z0-9_]*", k) for k in RANKING_KEYS)
    for old, key, measure, lab in [("ndcg@10", "ndcg_at_10", "nDCG@10", "nDCG@10"),
                                   ("mrr@10", "mrr_at_10", "RR@10", "MRR@10"),
                                   ("recall@100", "recall_at_100", "R@100", "Recall@100"),
                                   ("recall@1000", "recall_at_1000", "R@1000", "Recall@1000")]:
        assert canonical(old) == canonical(measure) == canonical(lab) == canonical(key) == key
        assert measure_name(key) == measure_name(old) == measure and label(key) == lab
    assert canonical("AP") == "map" and label("bm25_ndcg_at_10") == "BM25 nDCG@10"
    assert canonical("P@5") == "P@5"  # outside the table: computed under its own name
    assert {m.key for m in METRICS} == set(RANKING_KEYS)
    with pytest.raises(ConfigError, match="known: ndcg_at_10"):
        require_known("ndcg@11")


def test_old_result_columns_are_renamed():
    assert canonical_column("ndcg@10") == "ndcg_at_10"
    assert canonical_column("bm25_recall@1000") == "bm25_recall_at_1000"
    assert canonical_column("mrr@10_stderr") == "mrr_at_10_stderr"
    assert canonical_column("map") == "map" and canonical_column("n") == "n"
    assert canonical_column("nDCG@10") == "nDCG@10"  # only the old column names, exactly
    assert legacy_renames(["n", "ndcg@10", "bm25_ndcg@10", "mrr@10", "mrr_at_10"]) == {
        "ndcg@10": "ndcg_at_10", "bm25_ndcg@10": "bm25_ndcg_at_10"}  # never onto a new column
