"""Passage selection, the Annotator interface, the resumable runner and provenance.

Every generator turns selected corpus passages into (generated query, source passage) pairs and
writes a standard annotation set (``densescale.data.write_annotation_set``): ``queries.jsonl``,
``qrels/train.tsv``, ``provenance.json``, plus ``failures.jsonl`` (items that got no query, never
silently dropped), ``journal.jsonl`` (when the generator is journaled) and, for ICT,
``positives.jsonl``.

Passage selection (Fang et al., Scaling Laws for Dense Retrieval, SIGIR 2024, Section 5): by default
one item per human-labelled positive *pair* of ``--split`` in file order, so the generated set has
the same number of annotations D as the human set (a SQuAD paragraph with 5 questions gets 5 items
and 5 different generated queries); ``unique_passages`` keeps the first occurrence of each passage
only; ``passages=N`` draws a seeded random sample of N corpus passages instead (the paper's
docT5query run used 500,000).

Query ids are stable: ``f"{method}-{doc_id}-{k}"`` with ``k = occurrence * n + j`` for the j-th of
the n queries of the passage's ``occurrence``-th item (a failed item leaves a gap, never a shift).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np

from densescale import __version__
from densescale.data import Dataset, Doc, Pair, write_annotation_set
from densescale.errors import ConfigError, DenseScaleError
from densescale.utils import OutputError, prepare_output_dir


class Item(NamedTuple):
    """One unit of generation: a passage occurrence in the selection."""

    key: str  # unique in the selection, e.g. "doc17#0"
    doc_id: str
    occurrence: int  # how many earlier items have the same doc_id
    source_query_id: str | None  # the human query of the pair it mirrors (None for sampling)


@dataclass
class Result:
    """What a generator produced for one item: queries, or an error (a failure)."""

    key: str
    doc_id: str
    queries: list[str] = field(default_factory=list)
    positive: str | None = None  # ICT: the positive text (context without the query sentence)
    error: str | None = None
    attempts: int = 1
    usage: dict | None = None  # {"prompt_tokens": …, "completion_tokens": …}

    def to_record(self) -> dict:
        rec: dict = {"type": "failure" if self.error else "result", "key": self.key,
                     "doc_id": self.doc_id, "attempts": self.attempts}
        if self.error:
            rec["error"] = self.error
        else:
            rec["queries"] = self.queries
        if self.positive is not None:
            rec["positive"] = self.positive
        if self.usage:
            rec["usage"] = self.usage
        return rec


def select_items(ds: Dataset, split: str = "train", passages: int | None = None,
                 seed: int = 0, unique_passages: bool = False,
                 limit: int | None = None) -> list[Item]:
    """The items to annotate.

    Args:
        ds: The dataset.
        split: Qrels split whose positive pairs define the default selection.
        passages: When set, a seeded random sample of this many corpus passages (no pairs used).
        seed: Seed of the random sample.
        unique_passages: Keep only the first pair of each passage (default selection only).
        limit: Keep the first ``limit`` items.

    Returns:
        Items in a deterministic order.
    """
    if passages is not None:
        n = len(ds.corpus)
        if passages <= 0 or passages > n:
            raise ConfigError(f"--passages must be in 1..{n} (corpus size), got {passages}")
        rows = np.sort(np.random.default_rng(seed).choice(n, size=passages, replace=False))
        ids = ds.corpus.ids
        items = [Item(f"{ids[r]}#0", ids[r], 0, None) for r in rows.tolist()]
    else:
        items, seen = [], {}
        for p in ds.pairs(split):
            k = seen.get(p.doc_id, 0)
            if unique_passages and k:
                continue
            seen[p.doc_id] = k + 1
            items.append(Item(f"{p.doc_id}#{k}", p.doc_id, k, p.query_id))
        if (ds.corpus.rows_of([it.doc_id for it in items], strict=False) < 0).any():
            ds.check_ids(split, positives_only=True)  # DataError naming qrels file:line
    if limit is not None:
        items = items[: max(0, limit)]
    if not items:
        raise ConfigError("no passages selected (empty split or --limit 0)")
    return items


class Annotator:
    """A query generator. Subclasses set ``method`` and implement :meth:`run`.

    ``run(items, docs, emit)`` calls ``emit(Result)`` once per item, in any order, as results
    arrive (the runner journals each one). ``params()`` and ``model`` go into the provenance.
    """

    method: str = "base"
    model: str | None = None
    prompt: str | None = None
    queries_per_item: int = 1

    def params(self) -> dict:
        return {}

    def run(self, items: Sequence[Item], docs: Sequence[Doc],
            emit: Callable[[Result], None]) -> None:
        raise NotImplementedError

    def extra_provenance(self, records: Sequence[dict]) -> dict:
        return {}


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a folder")
    if out.exists() and any(out.iterdir()):
        markers = ("journal.jsonl", "provenance.json", "generator")
        if not any((out / m).exists() for m in markers):
            raise ConfigError(f"--out {out} is a non-empty folder that is not an annotation set; "
                              "refusing to overwrite it")


def _recover(out: Path) -> None:
    """Finish a swap interrupted between removing ``out`` and renaming the staging folder."""
    staging = _staging(out)
    if not out.exists() and (staging / "provenance.json").exists():
        os.replace(staging, out)


def _staging(out: Path) -> Path:
    return out.with_name(f".{out.name}.staging")


def _link_or_copy(src: Path, dst: Path) -> None:
    if src.is_dir():
        shutil.copytree(src, dst, copy_function=_link_file)
    else:
        _link_file(src, dst)


def _link_file(src, dst) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def finalize(out: Path, queries: dict[str, str], pairs: list[Pair], provenance: dict,
             side_files: dict[str, list[dict]], keep: Sequence[str] = ("journal.jsonl",
                                                                      "generator")) -> Path:
    """Write the annotation set so that ``out`` only ever holds a complete set (or the run state).

    The set is built in a staging folder (``write_annotation_set``), side files are added, the
    run state named in ``keep`` (journal, fine-tuned generator) is hard-linked in, and the staging
    folder replaces ``out``.

    Raises:
        OutputError: the set cannot be written (read-only or full disk); the staging folder is
            removed and ``out`` is left as it was.
    """
    try:
        return _finalize(out, queries, pairs, provenance, side_files, keep)
    except OSError as e:
        staging = _staging(out)
        shutil.rmtree(staging.with_name(staging.name + ".tmp"), ignore_errors=True)
        if out.exists():  # else the swap is half done: _recover() completes it on the next run
            shutil.rmtree(staging, ignore_errors=True)
        reason = e.reason if isinstance(e, OutputError) else f"cannot write ({e.strerror or e})"
        raise OutputError(out, reason) from None


def _finalize(out: Path, queries: dict[str, str], pairs: list[Pair], provenance: dict,
              side_files: dict[str, list[dict]], keep: Sequence[str]) -> Path:
    staging = _staging(out)
    if staging.exists():
        shutil.rmtree(staging)
    write_annotation_set(staging, queries, pairs, provenance)
    for name, records in side_files.items():
        with open(staging / name, "w", encoding="utf-8") as f:
            for rec in records:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
    for name in keep:
        if (out / name).exists():
            _link_or_copy(out / name, staging / name)
    if out.exists():
        old = out.with_name(f".{out.name}.old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(out, old)
        os.replace(staging, out)
        shutil.rmtree(old)
    else:
        os.replace(staging, out)
    return out


def run_annotation(annotator: Annotator, ds: Dataset, items: Sequence[Item], out: str | os.PathLike,
                   args: dict, journaled: bool = True, retry_failed: bool = False,
                   fsync_every: int = 1, progress: bool = True,
                   max_failure_rate: float | None = None) -> dict:
    """Generate for every item not yet done, then write the annotation set to ``out``.

    Args:
        annotator: The generator.
        ds: Source dataset.
        items: Selected items (from :func:`select_items`).
        out: Output folder (also holds the journal while the run is in progress).
        args: Arguments that determine the output (journal header hash + provenance).
        journaled: Append results to ``out/journal.jsonl`` and resume from it.
        retry_failed: On resume, generate again for items recorded as failures.
        fsync_every: Journal records per fsync.
        progress: Show a tqdm bar on stderr.
        max_failure_rate: Largest share of failed items that still publishes the set; a run
            with more failures (or with no query at all) publishes nothing.

    Returns:
        The provenance dict written to ``out/provenance.json``.

    Raises:
        AnnotationFailed: too many items failed; the journal keeps what succeeded.
    """
    from tqdm import tqdm

    from densescale.annotate.journal import Journal

    out = Path(out)
    _recover(out)
    _check_out(out)
    prepare_output_dir(out)
    prepare_output_dir(out.parent)  # the set is staged beside ``out``, then renamed
    records: dict[str, dict] = {}
    journal = None
    if journaled:
        journal = Journal(out / "journal.jsonl", args, annotator.method, fsync_every=fsync_every)
        records = {k: r for k, r in journal.records.items()
                   if r["type"] == "result" or not retry_failed}
    valid = {it.key for it in items}
    todo = [it for it in items if it.key not in records]
    docs = ds.corpus.docs(ds.corpus.rows_of([it.doc_id for it in todo])) if todo else []
    bar = tqdm(total=len(items), initial=len(items) - len(todo), disable=not progress,
               desc=f"annotate {annotator.method}", unit="psg", dynamic_ncols=True)
    failed = [0]

    def emit(res: Result) -> None:
        if res.key not in valid:
            raise RuntimeError(f"generator returned an unknown item {res.key!r}")
        if res.key in records and records[res.key]["type"] == "result":
            return  # never duplicate
        if not res.error and not res.queries:
            res.error = "generator returned no query"
        rec = res.to_record()
        records[res.key] = rec
        if journal is not None:
            journal.append(rec)
        if res.error:
            failed[0] += 1
            bar.set_postfix(failed=failed[0], refresh=False)
        bar.update(1)

    try:
        if todo:
            annotator.run(todo, docs, emit)
    finally:
        bar.close()
        if journal is not None:
            journal.close()
    missing = [it.key for it in items if it.key not in records]
    if missing:
        raise RuntimeError(f"{len(missing)} items got no result (first: {missing[0]})")
    check_failures(items, records, out, max_failure_rate, journaled)
    return _write_set(annotator, ds, items, records, out, args)


class AnnotationFailed(DenseScaleError):
    """Too many items failed: the annotation set is not published (exit status 1)."""


def check_failures(items: Sequence[Item], records: dict[str, dict], out: Path,
                   max_failure_rate: float | None, journaled: bool = True) -> None:
    """Raise AnnotationFailed when no item got a query or failures exceed ``max_failure_rate``."""
    failed = [records[it.key] for it in items if records[it.key]["type"] == "failure"]
    rate = len(failed) / len(items)
    limit = 1.0 if max_failure_rate is None else max_failure_rate
    if not failed or (rate <= limit and len(failed) < len(items)):
        return
    why = (f"over --max-failure-rate {limit:.0%}" if rate > limit else "no item got a query")
    kept = (f"the journal {out / 'journal.jsonl'} keeps the {len(items) - len(failed)} "
            "successes; fix the cause and rerun with --retry-failed" if journaled
            else "rerun once the cause is fixed")
    raise AnnotationFailed(f"{out}: {len(failed)} of {len(items)} items failed ({rate:.0%}, "
                           f"{why}); first error: {failed[0].get('error')}. The annotation set "
                           f"was not published; {kept}")


def _write_set(annotator: Annotator, ds: Dataset, items: Sequence[Item], records: dict[str, dict],
               out: Path, args: dict) -> dict:
    method = annotator.method
    queries: dict[str, str] = {}
    pairs: list[Pair] = []
    positives: list[dict] = []
    failures: list[dict] = []
    n = annotator.queries_per_item
    for it in items:
        rec = records[it.key]
        if rec["type"] == "failure":
            failures.append({"key": it.key, "doc_id": it.doc_id, "source_query_id":
                             it.source_query_id, "error": rec.get("error"),
                             "attempts": rec.get("attempts")})
            continue
        for j, q in enumerate(rec["queries"][:n]):
            qid = f"{method}-{it.doc_id}-{it.occurrence * n + j}"  # stable despite failures
            queries[qid] = q
            pairs.append(Pair(qid, it.doc_id))
            if rec.get("positive") is not None:
                positives.append({"query_id": qid, "doc_id": it.doc_id, "text": rec["positive"]})
    ordered = [records[it.key] for it in items]
    prompt = annotator.prompt
    provenance = {
        "method": method,
        "model": annotator.model,
        "prompt": prompt,
        "prompt_sha256": sha256_text(prompt) if prompt is not None else None,
        "parameters": annotator.params(),
        "seed": args.get("seed"),
        "args": args,
        "counts": {"passages_selected": len(items),
                   "unique_passages": len({it.doc_id for it in items}),
                   "queries_written": len(queries), "pairs_written": len(pairs),
                   "failures": len(failures)},
        "source": {"dataset": ds.name, "path": str(ds.path.resolve()),
                   "split": args.get("split"), "selection": args.get("selection")},
        "densescale_version": __version__,
        "created": datetime.now(UTC).isoformat(),
    }
    provenance.update(annotator.extra_provenance(ordered))
    side = {"failures.jsonl": failures}
    if positives:
        side["positives.jsonl"] = positives
    finalize(out, queries, pairs, provenance, side)
    return provenance
