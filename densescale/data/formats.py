"""Records that flow between stages, and the shared line parsers of the on-disk formats.

Records are plain named tuples, as ir_datasets / ir_measures do. The parsers here are the only
place that knows how a JSONL or TSV line becomes a record; the per-layout readers
(:mod:`densescale.data.layouts`) only say which parser reads which file.

Every parser takes one raw line (``bytes``, without the newline) plus where it came from, and
returns a tuple or raises :class:`~densescale.errors.DataError` naming file and line. The index
builder lets that error propagate; the validator catches it, records it and goes on.
"""

from __future__ import annotations

import gzip
import io
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from densescale.errors import DataError


class Doc(NamedTuple):
    id: str
    title: str
    text: str

    def full_text(self) -> str:
        """Text an encoder sees: "title text" (the BEIR / sentence-transformers convention)."""
        return f"{self.title} {self.text}" if self.title else self.text


class Query(NamedTuple):
    id: str
    text: str


class Qrel(NamedTuple):
    query_id: str
    doc_id: str
    score: int


class Pair(NamedTuple):
    """One annotated (query, positive passage) pair: the unit D counts."""

    query_id: str
    doc_id: str


# First-column names that mark a header row in the TSV files of BEIR, MS MARCO and T2Ranking.
HEADER_NAMES = frozenset({"query-id", "query_id", "qid", "pid", "id", "_id", "docid", "doc_id"})

UTF8_BOM = b"\xef\xbb\xbf"

DocParser = Callable[[bytes, Path, int], tuple[str, str, str]]
QueryParser = Callable[[bytes, Path, int], tuple[str, str]]
QrelParser = Callable[[bytes, Path, int], tuple[str, str, int]]


def open_binary(path: str | Path) -> io.BufferedIOBase:
    """Open a file for reading bytes; ``.gz`` files are decompressed transparently."""
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def iter_lines(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, raw line without newline) for every non-blank line.

    A UTF-8 byte-order mark at the start of the file is dropped (files are read as utf-8-sig).

    Raises:
        DataError: a truncated or corrupt gzip stream (names the file and the last line read).
    """
    path = Path(path)
    lineno = 0
    try:
        with open_binary(path) as f:
            for lineno, raw in enumerate(f, 1):  # noqa: B007 - lineno used after the loop
                line = raw.rstrip(b"\r\n")
                if lineno == 1 and line.startswith(UTF8_BOM):
                    line = line[len(UTF8_BOM):]
                if line.strip():
                    yield lineno, line
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        if path.suffix != ".gz" and isinstance(e, OSError):
            raise DataError(f"cannot read after line {lineno}: {e.strerror or e}", path) from None
        raise DataError(f"cannot read compressed stream after line {lineno}: {e}", path) from None


def decode(line: bytes, path: Path, lineno: int) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"undecodable bytes (not UTF-8) at byte {e.start}", path, lineno) from None


def is_header(line: bytes, lineno: int) -> bool:
    """True for a TSV header row (only ever the first line)."""
    if lineno != 1:
        return False
    first = line.split(b"\t", 1)[0].split(b" ", 1)[0].strip().decode("utf-8", "replace").lower()
    return first in HEADER_NAMES


def _json_object(line: bytes, path: Path, lineno: int) -> dict:
    text = decode(line, path, lineno)
    try:
        rec = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"malformed JSON: {e.msg} (column {e.colno})", path, lineno) from None
    if not isinstance(rec, dict):
        raise DataError(f"expected a JSON object, got {type(rec).__name__}", path, lineno)
    return rec


def _field(rec: dict, key: str, path: Path, lineno: int, required: bool = True) -> str:
    value = rec.get(key)
    if value is None:
        if required:
            raise DataError(f"missing field {key!r}", path, lineno)
        return ""
    if isinstance(value, (dict, list)):
        raise DataError(f"field {key!r} must be a string, got {type(value).__name__}", path, lineno)
    value = str(value)
    if key == "_id" and not value.strip():
        raise DataError("empty id (field '_id' is blank)", path, lineno)
    return value


def parse_jsonl_doc(line: bytes, path: Path, lineno: int) -> tuple[str, str, str]:
    """BEIR ``corpus.jsonl``: {"_id", "title" (optional), "text"} -> (id, title, text)."""
    rec = _json_object(line, path, lineno)
    return (_field(rec, "_id", path, lineno), _field(rec, "title", path, lineno, required=False),
            _field(rec, "text", path, lineno))


def parse_jsonl_query(line: bytes, path: Path, lineno: int) -> tuple[str, str]:
    """BEIR ``queries.jsonl``: {"_id", "text"} -> (id, text)."""
    rec = _json_object(line, path, lineno)
    return _field(rec, "_id", path, lineno), _field(rec, "text", path, lineno)


def _tsv_two(line: bytes, path: Path, lineno: int, what: str) -> tuple[str, str]:
    cols = decode(line, path, lineno).split("\t")
    if len(cols) != 2:
        raise DataError(f"malformed TSV: expected 2 tab-separated columns ({what}), "
                        f"got {len(cols)}", path, lineno)
    if not cols[0].strip():
        raise DataError("missing id (first column is empty)", path, lineno)
    return cols[0].strip(), cols[1]


def parse_tsv_doc(line: bytes, path: Path, lineno: int) -> tuple[str, str, str]:
    """MS MARCO / T2Ranking ``collection.tsv``: pid <TAB> passage -> (id, "", text)."""
    pid, text = _tsv_two(line, path, lineno, "pid, passage")
    return pid, "", text


def parse_tsv_query(line: bytes, path: Path, lineno: int) -> tuple[str, str]:
    """MS MARCO / T2Ranking ``queries.<split>.tsv``: qid <TAB> text."""
    return _tsv_two(line, path, lineno, "qid, text")


def parse_qrel(line: bytes, path: Path, lineno: int) -> tuple[str, str, int]:
    """Any qrels line -> (query id, doc id, score).

    Accepts BEIR (``qid TAB docid TAB score``), TREC 4-column (``qid iter docid rel``, tab or
    space separated, as MS MARCO) and T2Ranking retrieval qrels (``qid TAB pid``, score 1).
    """
    text = decode(line, path, lineno)
    cols = text.split("\t") if "\t" in text else text.split()
    cols = [c.strip() for c in cols]
    if len(cols) == 2:
        qid, did, score = cols[0], cols[1], "1"
    elif len(cols) == 3:
        qid, did, score = cols
    elif len(cols) == 4:
        qid, did, score = cols[0], cols[2], cols[3]
    else:
        raise DataError(f"malformed TSV: expected 2, 3 or 4 columns in a qrels line, "
                        f"got {len(cols)}", path, lineno)
    if not qid or not did:
        raise DataError("missing query or document id", path, lineno)
    try:
        value = float(score)
    except ValueError:
        raise DataError(f"relevance score {score!r} is not a number", path, lineno) from None
    if not math.isfinite(value):
        raise DataError(f"relevance score {score!r} is not a finite number", path, lineno)
    if value != int(value):
        raise DataError(f"relevance score {score!r} is not an integer", path, lineno)
    return qid, did, int(value)


def iter_records(path: str | Path, parse: Callable[[bytes, Path, int], tuple],
                 tsv: bool) -> Iterator[tuple[int, tuple]]:
    """(line number, parsed record) for every data line of a file; raises on the first bad line.

    Args:
        path: the file (``.gz`` read transparently).
        parse: one of the ``parse_*`` functions of this module.
        tsv: skip a header row on line 1 (TSV files of BEIR / T2Ranking have one).
    """
    path = Path(path)
    for lineno, line in iter_lines(path):
        if tsv and is_header(line, lineno):
            continue
        yield lineno, parse(line, path, lineno)


def read_positive_pairs(path: str | Path) -> list[Pair]:
    """Positive (score > 0) pairs of a qrels file in any supported layout, in file order."""
    return [Pair(q, d) for _, (q, d, s) in iter_records(path, parse_qrel, tsv=True) if s > 0]
