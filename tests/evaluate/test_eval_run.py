"""``eval --run``: an external TREC run scored like a model's ranking, with no model."""

from __future__ import annotations

import json

import ir_measures
import pytest
from typer.testing import CliRunner

from densescale.cli import app
from densescale.data import open_dataset
from densescale.errors import ConfigError, DataError
from densescale.evaluate.external import run_metrics


def _run_file(path, ranking: dict[str, list[str]]) -> None:
    path.write_text("".join(f"{q} Q0 {d} {i + 1} {100 - i}.5 ext\n"
                            for q, docs in ranking.items() for i, d in enumerate(docs)))


def test_run_metrics_match_ir_measures_and_count_missing_queries(tmp_path):
    from _eval_helpers import make_dataset

    ds = open_dataset(make_dataset(tmp_path / "toy", n_docs=60, n_queries=8))
    qrels = ds.qrels("test")
    qids = sorted(qrels)
    ranking = {q: [f"d{(int(q[1:]) * 7 + j) % 60}" for j in range(20)] for q in qids[:6]}
    for q in qids[:3]:  # put one positive at rank 2 for some queries
        pos = next(iter(qrels[q]))
        ranking[q] = [d for d in ranking[q] if d != pos]
        ranking[q] = (ranking[q][:1] + [pos] + ranking[q][1:])[:20]
    _run_file(tmp_path / "run.trec", ranking)
    got = run_metrics(ds, "test", tmp_path / "run.trec", metrics=("nDCG@10", "RR@10", "R@100"))
    assert got["n_ranked_queries"] == 8 and got["n_run_queries"] == 6 and got["run_depth"] == 20
    run = {q: {d: 100 - i for i, d in enumerate(docs)} for q, docs in ranking.items()}
    table = {"ndcg_at_10": ir_measures.nDCG @ 10, "mrr_at_10": ir_measures.RR @ 10,
             "recall_at_100": ir_measures.R @ 100}
    per_q = {(m.measure, m.query_id): m.value
             for m in ir_measures.iter_calc(list(table.values()), qrels, run)}
    for key, measure in table.items():
        want = sum(per_q.get((measure, q), 0.0) for q in qids) / len(qids)  # missing -> 0
        assert got[key] == pytest.approx(want, abs=1e-12) and want > 0
    _run_file(tmp_path / "other.trec", {"zz": ["d1"]})
    with pytest.raises(DataError, match="ranks none of the 8 queries"):
        run_metrics(ds, "test", tmp_path / "other.trec")


def test_cli_eval_run_with_bm25_beside_it(tmp_path):
    from _eval_helpers import make_dataset

    data = make_dataset(tmp_path / "toy", n_docs=60, n_queries=6)
    qrels = open_dataset(data).qrels("test")
    _run_file(tmp_path / "perfect.trec", {q: list(docs) for q, docs in qrels.items()})
    res = CliRunner().invoke(app, ["eval", "--run", str(tmp_path / "perfect.trec"), "--data",
                                   str(data), "--bm25", "--k", "20", "--metrics",
                                   "nDCG@10,RR@10", "--out", str(tmp_path / "evals"), "--json"])
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout)
    assert row["ndcg_at_10"] == row["mrr_at_10"] == 1.0 and 0 < row["bm25_ndcg_at_10"] <= 1
    assert row["split"] == "test" and row["run"].endswith("perfect.trec")
    saved = json.loads((tmp_path / "evals" / "results.jsonl").read_text())
    assert saved["ndcg_at_10"] == 1.0
    for args in ([], ["--model", "x", "--run", str(tmp_path / "perfect.trec")]):
        res = CliRunner().invoke(app, ["eval", "--data", str(data), *args])
        assert isinstance(res.exception, ConfigError) and "exactly one of --model" in str(
            res.exception)
