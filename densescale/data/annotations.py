"""Annotation sets: generated (or human) query-positive pairs in BEIR layout next to a corpus.

An annotation set folder holds ``queries.jsonl``, ``qrels/train.tsv`` and ``provenance.json``;
the corpus is the dataset it was generated from (named in the provenance). An optional
``positives.jsonl`` (``{"query_id", "doc_id", "text"}``) gives the positive *text* of a pair when
it is not the whole corpus passage: the Inverse Cloze Task's positive is the passage without
the query sentence. Training uses that text as the positive and still excludes ``doc_id`` from
the sampled negatives.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from densescale.data.formats import Pair, iter_records, parse_jsonl_query, parse_qrel
from densescale.errors import DataError
from densescale.utils import output_error


@dataclass
class AnnotationSet:
    queries: dict[str, str]
    pairs: list[Pair]
    provenance: dict = field(default_factory=dict)
    path: Path | None = None
    positives: dict[str, str] | None = None  # query id -> positive text (positives.jsonl)


def read_annotation_set(path: str | os.PathLike) -> AnnotationSet:
    path = Path(path)
    qpath, rpath = path / "queries.jsonl", path / "qrels" / "train.tsv"
    for p in (qpath, rpath):
        if not p.exists():
            raise DataError("missing file of annotation set", p)
    queries = {qid: text for _, (qid, text) in iter_records(qpath, parse_jsonl_query, tsv=False)}
    pairs: list[Pair] = []
    for lineno, (qid, did, score) in iter_records(rpath, parse_qrel, tsv=True):
        if qid not in queries:
            raise DataError(f"qrel names unknown query {qid!r}", rpath, lineno)
        if score > 0:
            pairs.append(Pair(qid, did))
    prov_path = path / "provenance.json"
    try:
        prov = json.loads(prov_path.read_text("utf-8-sig")) if prov_path.exists() else {}
    except (ValueError, UnicodeDecodeError) as e:
        raise DataError(f"not a JSON document: {e}", prov_path) from None
    return AnnotationSet(queries, pairs, prov, path, _read_positives(path / "positives.jsonl",
                                                                     pairs))


def _read_positives(path: Path, pairs: list[Pair]) -> dict[str, str] | None:
    """positives.jsonl as {query id: text}; every pair must have one when the file exists."""
    if not path.exists():
        return None
    out: dict[str, str] = {}
    with open(path, encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                out[str(rec["query_id"])] = str(rec["text"])
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise DataError(f"bad positive record: {e}", path, lineno) from None
    missing = [p.query_id for p in pairs if p.query_id not in out]
    if missing:
        raise DataError(f"{len(missing)} pairs have no positive text (first: {missing[0]!r})",
                        path)
    return out


def write_annotation_set(
    path: str | os.PathLike, queries: dict[str, str], pairs: list[Pair], provenance: dict
) -> Path:
    """Write atomically: files go to a temporary folder that is renamed into place at the end.

    Raises:
        OutputError: the set cannot be written (names ``path``); the temporary folder is removed
            and ``path`` is left as it was.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        (tmp / "qrels").mkdir(parents=True, exist_ok=True)
        with open(tmp / "queries.jsonl", "w", encoding="utf-8") as f:
            for qid, text in queries.items():
                f.write(json.dumps({"_id": qid, "text": text}, ensure_ascii=False) + "\n")
        with open(tmp / "qrels" / "train.tsv", "w", encoding="utf-8") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            for p in pairs:
                f.write(f"{p.query_id}\t{p.doc_id}\t1\n")
        (tmp / "provenance.json").write_text(json.dumps(provenance, indent=2, ensure_ascii=False))
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except OSError as e:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        raise output_error(path, e) from None
    return path
