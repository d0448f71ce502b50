"""Streaming validation of a dataset folder: counts per split, and every problem by file and line.

    report = validate_dataset("path/to/scifact", max_problems=100)
    report.ok, report.counts, report.problems

One pass over each file, line by line; only the sets of document and query ids are kept in
memory (MS MARCO: 8.8M short strings), never the texts. Problems found: malformed JSON / TSV,
missing or empty id, missing text field, undecodable bytes, duplicate ids, empty texts, an empty
corpus, non-finite or non-integer relevance scores, qrels pointing to unknown queries or
documents, truncated gzip streams, missing files. All are counted; the first
``max_problems`` are kept with their file and line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from densescale.data import formats
from densescale.data.layouts import Layout, detect_layout
from densescale.errors import DataError


@dataclass
class Problem:
    path: str | None
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else f"{self.path}"
        return f"{where}: {self.message}" if self.path else self.message


@dataclass
class Report:
    path: str
    layout: str | None = None
    counts: dict = field(default_factory=dict)   # docs, queries, splits: {split: {...}}
    problems: list[Problem] = field(default_factory=list)
    n_problems: int = 0
    max_problems: int = 100

    @property
    def ok(self) -> bool:
        return self.n_problems == 0

    def add(self, path: Path | str | None, line: int | None, message: str) -> None:
        self.n_problems += 1
        if len(self.problems) < self.max_problems:
            self.problems.append(Problem(str(path) if path is not None else None, line, message))

    def add_error(self, e: DataError) -> None:
        msg = str(e)
        prefix = f"{e.path}:{e.line}: " if e.line is not None else f"{e.path}: "
        self.add(e.path, e.line, msg[len(prefix):] if e.path and msg.startswith(prefix) else msg)

    def to_dict(self) -> dict:
        return {"path": self.path, "layout": self.layout, "ok": self.ok, "counts": self.counts,
                "n_problems": self.n_problems, "problems": [asdict(p) for p in self.problems],
                "problems_truncated": self.n_problems > len(self.problems)}

    def to_text(self) -> str:
        c = self.counts
        lines = [f"{self.path} ({self.layout or 'unknown layout'})",
                 f"  docs     {c.get('docs', 0):>10,}", f"  queries  {c.get('queries', 0):>10,}"]
        if c.get("splits"):
            lines.append(f"  {'split':<12}{'queries':>10}{'qrels':>10}{'queries>=1pos':>15}"
                         f"{'pos docs':>10}")
            for s, v in c["splits"].items():
                lines.append(f"  {s:<12}{v['queries']:>10,}{v['qrels']:>10,}"
                             f"{v['queries_with_positive']:>15,}{v['positive_docs']:>10,}")
        if self.ok:
            lines.append("OK: no problems found")
        else:
            lines.append(f"{self.n_problems} problem(s)"
                         + (f", first {len(self.problems)} shown:" if self.n_problems >
                            len(self.problems) else ":"))
            lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


def _data_lines(path: Path, tsv: bool, report: Report) -> Iterator[tuple[int, bytes]]:
    """(line number, raw line) of a file, header row skipped; a truncated or corrupt gzip is
    reported and ends the file (nothing more can be read from it)."""
    lines = formats.iter_lines(path)
    while True:
        try:
            lineno, line = next(lines)
        except StopIteration:
            return
        except DataError as e:
            report.add_error(e)
            return
        if not (tsv and formats.is_header(line, lineno)):
            yield lineno, line


def _scan(path: Path, parse, tsv: bool, report: Report, ids: set[str], what: str,
          text_index: int) -> int:
    """Parse every line of a corpus / queries file into ``ids``; returns the record count."""
    n = 0
    for lineno, line in _data_lines(path, tsv, report):
        try:
            rec = parse(line, path, lineno)
        except DataError as e:
            report.add_error(e)
            continue
        n += 1
        rid = rec[0]
        if rid in ids:
            report.add(path, lineno, f"duplicate {what} id {rid!r}")
        else:
            ids.add(rid)
        if not rec[text_index].strip():
            report.add(path, lineno, f"empty text for {what} {rid!r}")
    return n


def _scan_qrels(path: Path, report: Report, qids: set[str], dids: set[str]) -> dict:
    queries: set[str] = set()
    positive: set[str] = set()
    pos_docs: set[str] = set()
    n = 0
    for lineno, line in _data_lines(path, True, report):
        try:
            qid, did, score = formats.parse_qrel(line, path, lineno)
        except DataError as e:
            report.add_error(e)
            continue
        n += 1
        queries.add(qid)
        if qid not in qids:
            report.add(path, lineno, f"qrel points to unknown query {qid!r}")
        if did not in dids:
            report.add(path, lineno, f"qrel points to unknown document {did!r}")
        if score > 0:
            positive.add(qid)
            pos_docs.add(did)
    return {"queries": len(queries), "qrels": n, "queries_with_positive": len(positive),
            "positive_docs": len(pos_docs)}


def validate_dataset(path: str | Path, max_problems: int = 100,
                     layout: Layout | None = None) -> Report:
    """Check every file of a dataset folder; never raises on bad data (it is reported).

    Args:
        path: the dataset folder.
        max_problems: how many problems to keep in the report (all are counted).
        layout: an already detected layout (default: detect from ``path``).
    """
    report = Report(str(path), max_problems=max_problems)
    try:
        layout = layout or detect_layout(Path(path))
    except DataError as e:
        report.add_error(e)
        return report
    report.layout = layout.name
    dids: set[str] = set()
    report.counts["docs"] = _scan(layout.corpus, layout.parse_doc, layout.corpus_tsv, report,
                                  dids, "document", 2)
    if report.counts["docs"] == 0:
        report.add(layout.corpus, None, "corpus is empty (no documents)")
    qids: set[str] = set()
    nq = 0
    for qpath in layout.queries:
        nq += _scan(qpath, layout.parse_query, layout.queries_tsv, report, qids, "query", 1)
    report.counts["queries"] = nq
    report.counts["splits"] = {s: _scan_qrels(p, report, qids, dids)
                               for s, p in sorted(layout.qrels.items())}
    if not layout.qrels:
        report.add(layout.root, None, "no qrels files found")
    return report
