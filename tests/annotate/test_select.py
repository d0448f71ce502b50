"""Passage selection names the qrels line of a pair whose passage is not in the corpus."""

from __future__ import annotations

import json

import pytest

from densescale.annotate.base import select_items
from densescale.data import open_dataset
from densescale.errors import DataError


def test_unknown_passage_names_qrels_file_and_line(tmp_path):
    root = tmp_path / "ds"
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": f"d{i}", "text": f"passage {i}"}) + "\n" for i in range(3)))
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": f"q{i}", "text": f"query {i}"}) + "\n" for i in range(3)))
    qrels = root / "qrels" / "train.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\nq0\td0\t1\nq1\td9\t1\nq2\td2\t1\n")
    ds = open_dataset(root)
    with pytest.raises(DataError) as e:
        select_items(ds, "train")
    assert str(e.value) == f"{qrels}:3: qrel names unknown document 'd9'"
    qrels.write_text("query-id\tcorpus-id\tscore\nq0\td0\t1\nq2\td2\t1\n")
    assert [it.doc_id for it in select_items(open_dataset(root), "train")] == ["d0", "d2"]
