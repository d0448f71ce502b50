"""Fetch known public collections: download to a temporary name, verify, extract, rename.

Nothing half-done is ever left where a complete copy would be: every fetch works inside a hidden
``.<name>.download-*`` folder next to the target and renames the finished folder into place as
its last step; the temporary folder is removed on any failure.

BEIR archives are checked against the md5 published in the BEIR README when one is known; when
none is (or ``md5=None``), the archive's CRCs (``zipfile.testzip``) and the expected files are
checked instead.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import uuid
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from densescale.errors import DataError


@contextmanager
def staging(root: Path, name: str) -> Iterator[Path]:
    """A fresh hidden folder in ``root`` that is always removed afterwards."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{name}.download-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def publish(src: Path, dest: Path) -> Path:
    """Rename a finished folder into place (another process may have won the race)."""
    try:
        os.rename(src, dest)
    except OSError:
        if not dest.is_dir():
            raise
    return dest


def download(url: str, dest: Path, where_to_put: Path | None = None, timeout: float = 60.0) -> str:
    """Stream ``url`` into ``dest``; returns the md5 of the bytes received.

    Raises:
        DataError: network failure, HTTP error, or fewer bytes than the server announced.
    """
    import httpx

    md5 = hashlib.md5()
    hint = f"; offline? put the files at {where_to_put}" if where_to_put else ""
    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as r:
            if r.status_code != 200:
                raise DataError(f"download failed: HTTP {r.status_code} for {url}{hint}")
            total = int(r.headers.get("content-length") or 0) or None
            got = 0
            bar = tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {Path(url).name}",
                       file=sys.stderr, disable=not sys.stderr.isatty())
            with open(dest, "wb") as f, bar:
                for chunk in r.iter_bytes(1 << 20):
                    f.write(chunk)
                    md5.update(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
            if total is not None and got != total:
                raise DataError(f"download truncated: {got} of {total} bytes from {url}")
    except httpx.HTTPError as e:
        raise DataError(f"cannot download {url}: {type(e).__name__}: {e}{hint}") from None
    return md5.hexdigest()


def _safe_members(zf: zipfile.ZipFile) -> list[str]:
    names = zf.namelist()
    for n in names:
        p = PurePosixPath(n)
        if p.is_absolute() or ".." in p.parts:
            raise DataError(f"unsafe path {n!r} in archive")
    return names


def fetch_beir(name: str, root: Path, md5: str | None, base_url: str,
               target_name: str | None = None) -> Path:
    """Download ``<base_url>/<name>.zip``, verify it and extract it as ``root/<target_name>``.

    Args:
        name: BEIR dataset name (the zip holds ``<name>/corpus.jsonl`` etc.).
        root: the data folder.
        md5: published archive checksum, or None to check archive integrity only.
        base_url: BEIR download folder (env DENSESCALE_BEIR_URL overrides the official one).
        target_name: folder name under ``root`` (default ``name``).

    Raises:
        DataError: download, checksum, archive or layout problems; nothing is left in ``root``
            that looks like a dataset.
    """
    target = root / (target_name or name)
    url = f"{base_url}/{name}.zip"
    with staging(root, target.name) as tmp:
        archive = tmp / f"{name}.zip"
        got = download(url, archive, where_to_put=target)
        if md5 is not None and got != md5:
            raise DataError(f"checksum mismatch for {url}: md5 {got}, expected {md5} "
                            f"(corrupted or changed archive; nothing was kept)")
        try:
            with zipfile.ZipFile(archive) as zf:
                names = _safe_members(zf)
                bad = zf.testzip()
                if bad is not None:
                    raise DataError(f"corrupted archive {url}: CRC error in {bad}")
                need = [f"{name}/corpus.jsonl", f"{name}/queries.jsonl"]
                missing = [n for n in need if n not in names]
                if missing or not any(n.startswith(f"{name}/qrels/") and n.endswith(".tsv")
                                      for n in names):
                    raise DataError(f"archive {url} lacks expected files "
                                    f"{missing or [name + '/qrels/*.tsv']}")
                zf.extractall(tmp / "x")
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
            raise DataError(f"corrupted or truncated archive {url}: {e}") from None
        from densescale.data.layouts import detect_layout

        detect_layout(tmp / "x" / name)
        return publish(tmp / "x" / name, target)


def fetch_ir_datasets(name: str, target: Path) -> Path:
    """Export an ``ir_datasets`` collection (e.g. msmarco-passage) into MS MARCO layout.

    Writes ``collection.tsv``, and ``queries.<split>.tsv`` / ``qrels.<split>.tsv`` for the
    ``train`` and ``dev/small`` sub-collections (split names ``train`` and ``dev.small``).
    """
    try:
        import ir_datasets  # type: ignore[import-not-found]
    except ImportError:
        raise DataError(
            f"{name!r} is fetched through ir_datasets, which is not installed: run "
            f"`pip install 'densescale[msmarco]'`, or put collection.tsv, queries.<split>.tsv and "
            f"qrels.<split>.tsv (MS MARCO layout) at {target}") from None
    with staging(target.parent, target.name) as tmp:
        out = tmp / target.name
        out.mkdir()
        base = ir_datasets.load(name)
        with open(out / "collection.tsv", "w", encoding="utf-8") as f:
            for d in base.docs_iter():
                f.write(f"{d.doc_id}\t{_one_line(d.text)}\n")
        for sub, split in (("train", "train"), ("dev/small", "dev.small")):
            ds = ir_datasets.load(f"{name}/{sub}")
            with open(out / f"queries.{split}.tsv", "w", encoding="utf-8") as f:
                for q in ds.queries_iter():
                    f.write(f"{q.query_id}\t{_one_line(q.text)}\n")
            with open(out / f"qrels.{split}.tsv", "w", encoding="utf-8") as f:
                for r in ds.qrels_iter():
                    f.write(f"{r.query_id}\t0\t{r.doc_id}\t{r.relevance}\n")
        return publish(out, target)


def _one_line(text: str) -> str:
    return text.replace("\t", " ").replace("\n", " ").replace("\r", " ")
