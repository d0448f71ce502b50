"""Tiny dataset writers shared by the data-layer tests (exposed as fixtures)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest


def write(path: Path, text: str, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(text.encode("utf-8")))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def make_beir(root: Path, gz: bool = False, n_docs: int = 6) -> Path:
    docs = [{"_id": f"d{i}", "title": f"T{i}" if i % 2 == 0 else "", "text": f"text of doc {i}"}
            for i in range(n_docs)]
    queries = [{"_id": f"q{i}", "text": f"query {i}"} for i in range(4)]
    write(root / "corpus.jsonl", jsonl(docs), gz)
    write(root / "queries.jsonl", jsonl(queries), gz)
    write(root / "qrels" / "train.tsv",
          "query-id\tcorpus-id\tscore\nq0\td0\t1\nq0\td1\t1\nq1\td2\t1\nq1\td3\t0\n", gz)
    write(root / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq2\td4\t2\nq3\td5\t1\n", gz)
    return root


@pytest.fixture
def beir_factory():
    """make_beir(root, gz=False, n_docs=6) -> root: a 6-doc, 4-query BEIR folder."""
    return make_beir


@pytest.fixture
def writer():
    """write(path, text, gz=False) -> path actually written."""
    return write


@pytest.fixture
def to_jsonl():
    """to_jsonl(records) -> JSONL text."""
    return jsonl
