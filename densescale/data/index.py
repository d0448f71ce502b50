"""On-disk corpus index: build once from the source file, then memory-map it.

An index is a folder of flat files (all numbers little-endian int64):

    id.bin, title.bin, text.bin            UTF-8 bytes of every document, concatenated
    id.off.npy, title.off.npy, text.off.npy  n+1 offsets into the matching .bin
    keys.npy                               the ids as fixed-width bytes, sorted (for searchsorted)
    order.npy                              row of each sorted key (stable: first copy first)
    meta.json                              written last; its presence marks a complete index

Random access by row is two offset reads and one slice of a memory map; lookup by id is a
vectorised ``np.searchsorted`` over ``keys.npy``. Nothing is held in Python objects except what a
caller asks for. The folder is built under a temporary name and renamed into place, so a crash
never leaves an index that looks complete; concurrent builders race harmlessly (the loser's copy
is discarded).

The index lives in ``densescale.utils.cache_dir()/index/<name>-<key>``, where ``key`` hashes the
source file's absolute path, size and modification time (and the index format version): editing
the source makes a new index.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from densescale.data import formats
from densescale.data.layouts import Layout
from densescale.utils import cache_dir

log = logging.getLogger(__name__)

INDEX_VERSION = 1
FIELDS = ("id", "title", "text")
_BATCH = 65_536


def index_key(layout: Layout) -> str:
    st = layout.corpus.stat()
    ident = [INDEX_VERSION, str(layout.corpus.resolve()), st.st_size, st.st_mtime_ns,
             layout.corpus_tsv]
    return hashlib.sha1(json.dumps(ident).encode()).hexdigest()[:16]


def index_dir(layout: Layout) -> Path:
    """Where the index of this layout's corpus lives (whether or not it is built yet)."""
    return cache_dir() / "index" / f"{layout.root.name}-{index_key(layout)}"


def is_complete(folder: Path) -> bool:
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return False
    return meta.get("version") == INDEX_VERSION


def ensure_index(layout: Layout, progress: bool | None = None, rebuild: bool = False) -> Path:
    """Path of a complete index of ``layout.corpus``, building it first when needed.

    Args:
        layout: the dataset layout (its corpus file is indexed).
        progress: show a tqdm bar on stderr (default: only when stderr is a terminal).
        rebuild: build again even when a complete index exists.
    """
    out = index_dir(layout)
    if is_complete(out) and not rebuild:
        return out
    clean_stale(out.parent)
    return build_index(layout.corpus, layout.parse_doc, layout.corpus_tsv, out, progress,
                       replace=rebuild)


def warn_duplicates(folder: Path, source: Path) -> int:
    """Warn (every time a dataset is opened) about the duplicate ids recorded in the index."""
    try:
        dups = int(json.loads((folder / "meta.json").read_text()).get("duplicate_ids", 0))
    except (OSError, ValueError, TypeError):
        return 0
    if dups:
        log.warning("warning: %s: %d duplicate document ids; lookups return the first copy "
                    "(run `densescale data validate` for lines)", source, dups)
    return dups


def _size_hint(path: Path) -> int | None:
    return None if path.suffix == ".gz" else path.stat().st_size


def build_index(source: Path, parse: formats.DocParser, tsv: bool, out: Path,
                progress: bool | None = None, replace: bool = False) -> Path:
    """Stream ``source`` into a new index at ``out`` (atomically). Returns ``out``.

    Raises:
        DataError: the first malformed line (file and line named); nothing is left at ``out``.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    t0 = time.perf_counter()
    show = sys.stderr.isatty() if progress is None else progress
    try:
        bar = tqdm(total=_size_hint(source), unit="B", unit_scale=True, disable=not show,
                   desc=f"indexing {source.name}", file=sys.stderr)
        with bar:
            n = _write_columns(tmp, formats.iter_records(source, parse, tsv), bar)
            if bar.total:
                bar.update(bar.total - bar.n)
        dups = _write_keys(tmp)
        st = source.stat()
        meta = {"version": INDEX_VERSION, "n": n, "source": str(source.resolve()),
                "size": st.st_size, "mtime_ns": st.st_mtime_ns, "duplicate_ids": dups,
                "build_seconds": round(time.perf_counter() - t0, 3)}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
        if out.exists() and (replace or not is_complete(out)):
            old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(out, old)  # readers with open memory maps keep working
            shutil.rmtree(old, ignore_errors=True)
        try:
            os.rename(tmp, out)
        except OSError:
            if not is_complete(out):  # nobody else finished it either
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _write_columns(folder: Path, records: Iterable[tuple[int, tuple]],
                   bar: tqdm | None = None) -> int:
    """Append every record's fields to ``<field>.bin``; offsets to ``<field>.off.npy``."""
    bins = {f: open(folder / f"{f}.bin", "wb") for f in FIELDS}
    lens = {f: open(folder / f"{f}.len", "wb") for f in FIELDS}
    n = 0
    try:
        batch: list[tuple] = []

        def flush() -> None:
            for j, f in enumerate(FIELDS):
                parts = [r[j].encode("utf-8") for r in batch]
                bins[f].write(b"".join(parts))
                lens[f].write(np.fromiter(map(len, parts), np.int64, len(parts)).tobytes())
            if bar is not None:
                bar.update(min(sum(len(r[2]) + len(r[1]) + len(r[0]) + 40 for r in batch),
                               (bar.total or 1 << 62) - bar.n))
            batch.clear()

        for _, rec in records:
            batch.append(rec)
            n += 1
            if len(batch) >= _BATCH:
                flush()
        flush()
    finally:
        for fh in (*bins.values(), *lens.values()):
            fh.close()
    for f in FIELDS:
        ln = np.fromfile(folder / f"{f}.len", dtype=np.int64)
        off = np.zeros(len(ln) + 1, dtype=np.int64)
        np.cumsum(ln, out=off[1:])
        np.save(folder / f"{f}.off.npy", off)
        (folder / f"{f}.len").unlink()
    return n


def fixed_width(buf: np.ndarray, offsets: np.ndarray, width: int | None = None,
                chunk: int = 1 << 20) -> np.ndarray:
    """Strings stored as (bytes buffer, offsets) -> numpy ``S<width>`` array, vectorised."""
    lens = np.diff(offsets)
    n = len(lens)
    width = width or max(int(lens.max()) if n else 1, 1)
    out = np.zeros(n * width, dtype=np.uint8)
    for s in range(0, n, chunk):
        e = min(s + chunk, n)
        lo, hi = int(offsets[s]), int(offsets[e])
        ln = lens[s:e]
        dest = np.repeat(np.arange(s, e, dtype=np.int64) * width - offsets[s:e], ln)
        dest += np.arange(lo, hi, dtype=np.int64)
        out[dest] = buf[lo:hi]
    return out.view(f"S{width}")


def sorted_keys(buf: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(sorted keys, row of each key, number of duplicate ids)."""
    keys = fixed_width(buf, offsets)
    order = np.argsort(keys, kind="stable").astype(np.int64)
    keys = keys[order]
    dups = int(np.count_nonzero(keys[1:] == keys[:-1])) if len(keys) > 1 else 0
    return keys, order, dups


def _write_keys(folder: Path) -> int:
    off = np.load(folder / "id.off.npy")
    buf = np.fromfile(folder / "id.bin", dtype=np.uint8)
    keys, order, dups = sorted_keys(buf, off)
    np.save(folder / "keys.npy", keys)
    np.save(folder / "order.npy", order)
    return dups


def clean_stale(parent: Path) -> int:
    """Remove temporary folders of crashed builds older than a day. Returns how many."""
    removed = 0
    for p in parent.glob(".*.tmp-*") if parent.exists() else []:
        if time.time() - p.stat().st_mtime > 86_400:
            shutil.rmtree(p, ignore_errors=True)
            removed += 1
    return removed
