"""TREC run files and hard-negative lists (TREC / TSV / JSONL), on SciFact ids."""

from __future__ import annotations

import gzip
import json

import pytest

from densescale.data import open_dataset, read_hard_negatives, read_trec_run
from densescale.data.runs import detect_format
from densescale.errors import DataError


@pytest.fixture(scope="module")
def scifact(scifact_path):
    return open_dataset(scifact_path)


def _run_lines(ds, n_queries=3, depth=12):
    """A BM25-like run over real SciFact ids: per test query its positive first, then others."""
    qrels = ds.qrels("test")
    ids = list(ds.corpus.ids[:depth])
    lines, expect = [], {}
    for qid in list(qrels)[:n_queries]:
        pos = next(iter(qrels[qid]))
        ranked = [pos] + [d for d in ids if d != pos][: depth - 1]
        expect[qid] = ranked
        lines += [f"{qid} Q0 {d} {r} {100 - r:.3f} bm25" for r, d in enumerate(ranked, 1)]
    return lines, expect


def test_read_trec_run_orders_by_score_and_reads_gzip(scifact, tmp_path):
    lines, expect = _run_lines(scifact)
    path = tmp_path / "bm25.trec"
    path.write_text("\n".join(reversed(lines)) + "\n")  # file order must not matter
    assert read_trec_run(path) == {q: expect[q] for q in reversed(list(expect))}
    gz = tmp_path / "bm25.trec.gz"
    gz.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    assert read_trec_run(gz) == expect
    for qid, docs in expect.items():  # every id is a real SciFact document
        assert (scifact.corpus.rows_of(docs) >= 0).all()


@pytest.mark.parametrize("line, message", [
    ("1 Q0 d1 1 0.5", "expected 6 columns"),
    ("1 Q0 d1 first 0.5 run", "rank 'first' is not an integer"),
    ("1 Q0 d1 1 high run", "score 'high' is not a number"),
    ("1 Q0 d1 1 nan run", "not a finite number"),
    ("1 Q0 d0 2 0.4 run", "listed twice for query '1' \\(first on line 1\\)"),
])
def test_bad_run_lines_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.trec"
    path.write_text(f"1 Q0 d0 1 0.9 run\n{line}\n")
    with pytest.raises(DataError, match=f"bad.trec:2: .*{message}"):
        read_trec_run(path)


def test_hard_negatives_from_a_run_with_window_and_positives_excluded(scifact, tmp_path):
    lines, expect = _run_lines(scifact)
    path = tmp_path / "run.txt"
    path.write_text("\n".join(lines) + "\n")
    assert detect_format(path) == "trec"
    qrels = scifact.qrels("test")
    got = read_hard_negatives(path, exclude=qrels)
    assert got == {q: v[1:] for q, v in expect.items()}  # the positive (rank 1) is dropped
    window = read_hard_negatives(path, rank_window=(3, 5))
    assert window == {q: v[2:5] for q, v in expect.items()}
    with pytest.raises(DataError, match="rank window 5..3"):
        read_hard_negatives(path, rank_window=(5, 3))


def test_hard_negatives_tsv_and_jsonl_are_detected(scifact, tmp_path):
    _, expect = _run_lines(scifact)
    tsv = tmp_path / "negs.tsv"
    tsv.write_text("query-id\tcorpus-id\n" + "".join(f"{q}\t{d}\n" for q, v in expect.items()
                                                      for d in v + v[:1]))
    jl = tmp_path / "negs.jsonl"
    jl.write_text("".join(json.dumps({"qid": q, "neg": v}) + "\n" for q, v in expect.items()))
    assert (detect_format(tsv), detect_format(jl)) == ("tsv", "jsonl")
    assert read_hard_negatives(tsv) == expect == read_hard_negatives(jl)  # repeats dropped


def test_bad_hard_negative_files(tmp_path):
    missing = tmp_path / "none.tsv"
    with pytest.raises(DataError, match="none.tsv: hard negatives file not found"):
        read_hard_negatives(missing)
    (tmp_path / "a.tsv").write_text("q1\td1\nq2\t\n")
    with pytest.raises(DataError, match="a.tsv:2: expected query-id<TAB>doc-id"):
        read_hard_negatives(tmp_path / "a.tsv")
    (tmp_path / "b.jsonl").write_text('{"qid": "q1", "neg": ["d1"]}\n{"qid": "q2", "neg": "d"}\n')
    with pytest.raises(DataError, match="b.jsonl:2: 'doc_ids' \\(or 'neg'\\) must be a list"):
        read_hard_negatives(tmp_path / "b.jsonl")
    (tmp_path / "c.txt").write_text("\n\n")
    with pytest.raises(DataError, match="c.txt: hard negatives file has no lines"):
        read_hard_negatives(tmp_path / "c.txt")
