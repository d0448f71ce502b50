"""Bad input that used to slip through or end in a traceback (issue 14, items 5 and 11)."""

from __future__ import annotations

import logging

import pytest

from densescale.cli import main
from densescale.data import open_dataset, read_annotation_set
from densescale.data.validate import validate_dataset
from densescale.errors import DataError

HEADER = "query-id\tcorpus-id\tscore\n"


def _cli(capsys, *args) -> tuple[int, str]:
    with pytest.raises(SystemExit) as ex:
        main([str(a) for a in args])
    return ex.value.code, capsys.readouterr().err


@pytest.mark.parametrize("score", ["nan", "inf", "-inf", "1e400", "NaN"])
def test_non_finite_qrels_score_names_file_and_line(tmp_path, beir_factory, writer, capsys,
                                                    score):
    root = beir_factory(tmp_path / "ds")
    qrels = writer(root / "qrels" / "train.tsv", f"{HEADER}q0\td0\t1\nq1\td2\t{score}\n")
    where = f"{qrels}:3: relevance score {score!r} is not a finite number"
    problems = [str(p) for p in validate_dataset(root).problems]
    assert problems == [where]
    code, err = _cli(capsys, "data", "validate", root)
    assert code == 1
    code, err = _cli(capsys, "data", "info", root)
    assert code == 1 and err == f"error: {where}\n"
    with pytest.raises(DataError, match=":3: relevance score"):
        open_dataset(root).qrels("train")


def test_non_finite_score_in_annotation_set(tmp_path, writer, to_jsonl):
    ann = tmp_path / "ann"
    writer(ann / "queries.jsonl", to_jsonl([{"_id": "g1", "text": "a generated query"}]))
    writer(ann / "qrels" / "train.tsv", f"{HEADER}g1\td0\tinf\n")
    with pytest.raises(DataError, match=r"train\.tsv:2: relevance score 'inf' is not a finite"):
        read_annotation_set(ann)


@pytest.mark.parametrize("bad_id", ["", "   "])
def test_empty_id_rejected_naming_the_line(tmp_path, beir_factory, writer, to_jsonl, bad_id):
    root = beir_factory(tmp_path / "ds")
    docs = [{"_id": f"d{i}", "text": f"doc {i}"} for i in range(6)]
    docs.insert(2, {"_id": bad_id, "text": "no id"})
    corpus = writer(root / "corpus.jsonl", to_jsonl(docs))
    assert [str(p) for p in validate_dataset(root).problems] == [
        f"{corpus}:3: empty id (field '_id' is blank)"]
    with pytest.raises(DataError, match=r"corpus\.jsonl:3: empty id"):
        open_dataset(root)
    queries = writer(root / "queries.jsonl", to_jsonl([{"_id": bad_id, "text": "q"}]))
    writer(root / "corpus.jsonl", to_jsonl(docs[:2] + docs[3:]))
    msgs = [str(p) for p in validate_dataset(root).problems]
    assert f"{queries}:1: empty id (field '_id' is blank)" in msgs


def test_empty_corpus_is_called_empty(tmp_path, beir_factory, writer, capsys):
    root = beir_factory(tmp_path / "ds")
    corpus = writer(root / "corpus.jsonl", "\n")
    msgs = [str(p) for p in validate_dataset(root).problems]
    assert f"{corpus}: corpus is empty (no documents)" in msgs
    code, err = _cli(capsys, "data", "info", root)
    assert code == 1 and err == f"error: {corpus}: corpus is empty (no documents)\n"


def test_bom_is_read_as_utf8_sig(tmp_path, beir_factory, writer):
    root = beir_factory(tmp_path / "ds")
    bom = "\ufeff"
    writer(root / "qrels" / "train.tsv", f"{bom}{HEADER}q0\td0\t1\nq1\td2\t2\n")
    text = (root / "corpus.jsonl").read_text(encoding="utf-8")
    writer(root / "corpus.jsonl", bom + text)
    r = validate_dataset(root)
    assert r.ok, [str(p) for p in r.problems]
    ds = open_dataset(root)
    assert ds.qrels("train") == {"q0": {"d0": 1}, "q1": {"d2": 2}}
    assert ds.corpus[0].id == "d0"


def test_duplicate_ids_warned_on_every_open(tmp_path, beir_factory, writer, to_jsonl, caplog):
    root = beir_factory(tmp_path / "ds")
    docs = [{"_id": f"d{i}", "text": f"doc {i}"} for i in range(6)] + [{"_id": "d1", "text": "x"}]
    corpus = writer(root / "corpus.jsonl", to_jsonl(docs))
    caplog.set_level(logging.WARNING, logger="densescale.data.index")
    for expected in (1, 2):  # the first open builds the index, the second reuses it
        open_dataset(root)
        warned = [r.getMessage() for r in caplog.records if "duplicate document ids" in
                  r.getMessage()]
        assert len(warned) == expected
        assert warned[-1].startswith(f"warning: {corpus}: 1 duplicate document ids")


def test_check_ids_names_qrels_file_and_line(tmp_path, beir_factory, writer):
    root = beir_factory(tmp_path / "ds")
    qrels = writer(root / "qrels" / "train.tsv",
                   f"{HEADER}q0\td0\t1\nq1\tnope\t0\nq1\tgone\t1\nq1\tlost\t1\n")
    ds = open_dataset(root)
    with pytest.raises(DataError) as e:
        ds.check_ids("train")
    assert str(e.value) == f"{qrels}:3: qrel names unknown document 'nope' (2 more)"
    with pytest.raises(DataError, match=r":4: qrel names unknown document 'gone' \(1 more\)"):
        ds.check_ids("train", positives_only=True)
    writer(root / "qrels" / "test.tsv", f"{HEADER}q2\td4\t1\nqx\td5\t1\n")
    with pytest.raises(DataError, match=r"test\.tsv:3: qrel names unknown query 'qx'"):
        open_dataset(root).check_ids("test")
    writer(root / "qrels" / "test.tsv", f"{HEADER}q2\td4\t1\n")
    open_dataset(root).check_ids("test")  # all known: no error
