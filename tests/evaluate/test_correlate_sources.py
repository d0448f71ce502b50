"""``correlate`` reads every results source through ``study.results.read_results``."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from densescale.cli import app
from densescale.evaluate.correlation import correlate, read_rows

ROWS = [{"model": f"m{i}", "rung": f"r{i}", "n": 1e5 * (i + 1), "d": 100,
         "annotation": "human", "seed": 1, "status": "done", "contrastive_entropy": ce,
         "ndcg_at_10": nd, "recall_at_1000": r}
        for i, (ce, nd, r) in enumerate([(0.9, 0.20, 0.70), (0.6, 0.30, 0.80),
                                          (0.4, 0.33, 0.86), (0.2, 0.45, 0.93)])]
EXPECTED = correlate(ROWS)


def _check(source) -> None:
    rows = read_rows(source)
    assert len(rows) == 4
    got = correlate(rows)
    assert list(got) == ["ndcg_at_10", "recall_at_1000"]
    for k, v in EXPECTED.items():
        assert got[k]["pearson"] == pytest.approx(v["pearson"], abs=1e-12)
        assert got[k]["spearman"] == pytest.approx(-1.0) and got[k]["n"] == 4


def _old_names(df: pd.DataFrame) -> pd.DataFrame:
    """An export of before results schema 4 (``ndcg@10`` columns)."""
    return df.rename(columns={"ndcg_at_10": "ndcg@10", "recall_at_1000": "recall@1000"})


def test_csv_with_old_names_and_a_pending_row(tmp_path):
    df = _old_names(pd.DataFrame(ROWS + [{**ROWS[0], "status": "pending",
                                          "contrastive_entropy": None}]))
    df.to_csv(tmp_path / "r.csv", index=False)
    _check(tmp_path / "r.csv")  # the pending row is left out


def test_parquet(tmp_path):
    _old_names(pd.DataFrame(ROWS)).to_parquet(tmp_path / "r.parquet", index=False)
    _check(tmp_path / "r.parquet")


def test_jsonl_and_eval_out_folder(tmp_path):
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    _check(tmp_path / "results.jsonl")
    _check(tmp_path)  # the folder eval --out writes
    (tmp_path / "bad.jsonl").write_text(json.dumps(ROWS[0]) + "\n{oops\n")
    from densescale.errors import DataError

    with pytest.raises(DataError, match=r"bad.jsonl:2: malformed JSON"):
        read_rows(tmp_path / "bad.jsonl")
    with pytest.raises(DataError, match="folder holds none of results.jsonl"):
        read_rows(tmp_path / "x" if (tmp_path / "x").mkdir() is None else None)


def test_results_database(tmp_path):
    from densescale.study import Store

    store = Store(tmp_path / "results.db")
    for i, r in enumerate(ROWS):
        store.upsert("h", f"p{i}", **{k: v for k, v in r.items() if k != "model"})
    store.upsert("h", "p9", rung="r9", d=1, annotation="human", seed=1)  # pending: left out
    store.close()
    _check(tmp_path / "results.db")
    _check(f"sqlite:///{tmp_path / 'results.db'}")
    res = CliRunner().invoke(app, ["correlate", "--results", str(tmp_path / "results.db"),
                                   "--json", "--plot", str(tmp_path / "plots")])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["n_rows"] == 4 and doc["correlation"]["ndcg_at_10"]["spearman"] == -1.0
    assert (tmp_path / "plots" / "ndcg_at_10_vs_contrastive_entropy.png").is_file()


def test_study_spec(tmp_path, monkeypatch):
    import densescale.study.driver as driver

    seen = []
    monkeypatch.setattr(driver, "results_frame",
                        lambda path: seen.append(path) or pd.DataFrame(ROWS))
    _check(tmp_path / "study.yaml")
    assert seen == [str(tmp_path / "study.yaml")]
