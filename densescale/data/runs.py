"""TREC run files and hard-negative lists: the usual hand-over format of BM25 or any system.

    run = read_trec_run("bm25.trec")                       # {qid: [docid, ...]} best first
    negs = read_hard_negatives("bm25.trec", rank_window=(10, 100), exclude=ds.qrels("train"))

A TREC run line is ``qid Q0 docid rank score tag`` (whitespace separated, 6 columns; the
second column is ignored, as trec_eval does). Every line is checked and a bad one raises
:class:`~densescale.errors.DataError` naming file and line. A query's documents are ordered by
score (highest first), ties by rank, as trec_eval orders them; a document listed twice for one
query is an error.

:func:`read_hard_negatives` also reads the two older hard-negative formats, detected from the
first data line: TSV ``query-id<TAB>doc-id`` (one negative per line, optional header) and JSONL
``{"query_id": ..., "doc_ids": [...]}`` (``qid`` / ``neg`` accepted too).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Container, Iterator, Mapping
from pathlib import Path

from densescale.data.formats import decode, iter_lines
from densescale.errors import DataError

TREC, TSV, JSONL = "trec", "tsv", "jsonl"
_TSV_HEADER = ("query-id", "qid", "query_id")


def parse_run_line(line: bytes, path: Path, lineno: int) -> tuple[str, str, int, float]:
    """One TREC run line -> (query id, doc id, rank, score).

    Raises:
        DataError: not 6 columns, a rank that is not a positive integer or a score that is not
            a finite number (names file and line).
    """
    cols = decode(line, path, lineno).split()
    if len(cols) != 6:
        raise DataError(f"malformed TREC run line: expected 6 columns 'qid Q0 docid rank score "
                        f"tag', got {len(cols)}", path, lineno)
    qid, _, did, rank, score, _ = cols
    try:
        r = int(rank)
    except ValueError:
        raise DataError(f"rank {rank!r} is not an integer", path, lineno) from None
    if r < 0:
        raise DataError(f"rank {rank!r} is negative", path, lineno)
    try:
        s = float(score)
    except ValueError:
        raise DataError(f"score {score!r} is not a number", path, lineno) from None
    if not math.isfinite(s):
        raise DataError(f"score {score!r} is not a finite number", path, lineno)
    return qid, did, r, s


def read_trec_run(path: str | os.PathLike) -> dict[str, list[str]]:
    """Per-query ranked document ids of a TREC run file (``.gz`` read transparently).

    Returns:
        {query id: [doc id, ...]} best first; queries in first-appearance order.

    Raises:
        DataError: a missing file, a bad line, a document repeated for one query, or no lines.
    """
    path = _existing(path, "TREC run")
    entries: dict[str, list[tuple[float, int, str]]] = {}
    seen: dict[str, dict[str, int]] = {}
    for lineno, line in iter_lines(path):
        qid, did, rank, score = parse_run_line(line, path, lineno)
        first = seen.setdefault(qid, {}).setdefault(did, lineno)
        if first != lineno:
            raise DataError(f"document {did!r} listed twice for query {qid!r} (first on line "
                            f"{first})", path, lineno)
        entries.setdefault(qid, []).append((-score, rank, did))
    if not entries:
        raise DataError("TREC run file has no lines", path)
    return {q: [d for _, _, d in sorted(v)] for q, v in entries.items()}


def detect_format(path: str | os.PathLike) -> str:
    """"trec", "tsv" or "jsonl", from the first data line of a hard-negative file.

    JSONL: the line starts with ``{``; TREC: it has 6 whitespace-separated columns (or no tab);
    TSV: anything else with a tab (``query-id<TAB>doc-id``).
    """
    path = Path(path)
    for lineno, line in iter_lines(path):
        text = decode(line, path, lineno)
        if text.lstrip().startswith("{"):
            return JSONL
        if len(text.split()) != 6 and "\t" in text:
            return TSV
        return TREC  # 6 columns, or a line that only a run reader can explain precisely
    raise DataError("hard negatives file has no lines", path)


def read_hard_negatives(path: str | os.PathLike, *, rank_window: tuple[int, int] | None = None,
                        exclude: Mapping[str, Container[str]] | None = None,
                        fmt: str | None = None) -> dict[str, list[str]]:
    """Hard negatives per query from a TREC run, a TSV or a JSONL file (format detected).

    Args:
        path: the file (``.gz`` read transparently).
        rank_window: keep only positions ``lo..hi`` (1-based, inclusive) of each query's list,
            counted before ``exclude`` is applied (for a run: its ranking, best first; for TSV /
            JSONL: file order). E.g. ``(10, 100)`` skips the top 9 of a BM25 run.
        exclude: {query id: documents to drop} (typically the query's judged positives).
        fmt: "trec", "tsv" or "jsonl" to skip detection.

    Returns:
        {query id: [doc id, ...]} without repeats, in ranked / file order.

    Raises:
        DataError: a missing or empty file, a malformed line (file:line), a bad window.
    """
    path = _existing(path, "hard negatives")
    fmt = fmt or detect_format(path)
    if fmt == TREC:
        lists = read_trec_run(path)
    elif fmt in (TSV, JSONL):
        lists = {}
        for qid, docs in (_iter_jsonl(path) if fmt == JSONL else _iter_tsv(path)):
            lists.setdefault(qid, []).extend(docs)
        lists = {q: list(dict.fromkeys(v)) for q, v in lists.items()}
    else:
        raise DataError(f"unknown hard-negative format {fmt!r} (trec, tsv or jsonl)", path)
    if rank_window is not None:
        lo, hi = rank_window
        if not 1 <= lo <= hi:
            raise DataError(f"rank window {lo}..{hi} must satisfy 1 <= lo <= hi", path)
        lists = {q: v[lo - 1:hi] for q, v in lists.items()}
    if exclude is not None:
        lists = {q: [d for d in v if d not in exclude.get(q, ())] for q, v in lists.items()}
    return lists


def _existing(path: str | os.PathLike, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} file not found", path)
    return path


def _iter_tsv(path: Path) -> Iterator[tuple[str, list[str]]]:
    for lineno, line in iter_lines(path):
        cols = decode(line, path, lineno).split("\t")
        if lineno == 1 and cols[0].strip().lower() in _TSV_HEADER:
            continue
        if len(cols) < 2 or not cols[0].strip() or not cols[1].strip():
            raise DataError("expected query-id<TAB>doc-id", path, lineno)
        yield cols[0].strip(), [cols[1].strip()]


def _iter_jsonl(path: Path) -> Iterator[tuple[str, list[str]]]:
    for lineno, line in iter_lines(path):
        try:
            rec = json.loads(decode(line, path, lineno))
        except json.JSONDecodeError as e:
            raise DataError(f"malformed JSON: {e.msg} (column {e.colno})", path, lineno) from None
        if not isinstance(rec, dict):
            raise DataError("expected a JSON object", path, lineno)
        qid = rec.get("query_id", rec.get("qid"))
        docs = rec.get("doc_ids", rec.get("neg"))
        if qid is None or str(qid).strip() == "":
            raise DataError("missing 'query_id' (or 'qid')", path, lineno)
        if not isinstance(docs, list) or not all(isinstance(d, (str, int)) for d in docs):
            raise DataError("'doc_ids' (or 'neg') must be a list of ids", path, lineno)
        yield str(qid), [str(d) for d in docs]
