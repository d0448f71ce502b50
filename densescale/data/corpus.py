"""Corpus: passages with random access by row and by id, over a memory-mapped index.

    corpus = Corpus.open(index_folder)          # on disk (see densescale.data.index)
    corpus = Corpus(ids, titles, texts)         # small in-memory corpus, same behaviour
    corpus.texts(rows)                          # ["title text", ...]: the training hot path
    corpus.rows_of(ids)                         # vectorised searchsorted over sorted ids
"""

from __future__ import annotations

import json
import mmap
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from densescale.data.formats import Doc
from densescale.data.index import FIELDS, sorted_keys
from densescale.errors import DataError


class _Column:
    """Strings stored as one UTF-8 buffer plus n+1 int64 offsets."""

    def __init__(self, buf: bytes | mmap.mmap, offsets: np.ndarray):
        self.buf = buf
        self.off = offsets

    @classmethod
    def from_strings(cls, values: Sequence[str]) -> _Column:
        parts = [str(v).encode("utf-8") for v in values]
        off = np.zeros(len(parts) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, parts), np.int64, len(parts)), out=off[1:])
        return cls(b"".join(parts), off)

    @classmethod
    def open(cls, folder: Path, name: str) -> _Column:
        off = np.load(folder / f"{name}.off.npy", mmap_mode="r")
        path = folder / f"{name}.bin"
        if path.stat().st_size == 0:
            return cls(b"", off)
        with open(path, "rb") as f:
            return cls(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), off)

    def get(self, row: int) -> str:
        return self.buf[int(self.off[row]):int(self.off[row + 1])].decode("utf-8")

    def take(self, rows: np.ndarray) -> list[str]:
        starts = self.off[rows].tolist()
        ends = self.off[rows + 1].tolist()
        buf = self.buf
        return [buf[a:b].decode("utf-8") if b > a else "" for a, b in zip(starts, ends)]

    def as_uint8(self) -> np.ndarray:
        return np.frombuffer(self.buf, dtype=np.uint8) if len(self.buf) else np.zeros(0, np.uint8)


class IdSequence(Sequence[str]):
    """Row -> document id, decoded lazily (``list(ids)`` materialises it)."""

    def __init__(self, column: _Column, n: int):
        self._col = column
        self._n = n

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i):  # int -> str; slice / int array -> list[str]
        if isinstance(i, slice):
            return self._col.take(np.arange(self._n, dtype=np.int64)[i])
        if isinstance(i, (int, np.integer)):
            if not -self._n <= i < self._n:
                raise IndexError(f"row {i} out of range for {self._n} documents")
            return self._col.get(int(i) % self._n)
        return self._col.take(_as_rows(i, self._n))

    def __iter__(self) -> Iterator[str]:
        for s in range(0, self._n, 65_536):
            yield from self._col.take(np.arange(s, min(s + 65_536, self._n), dtype=np.int64))

    def __eq__(self, other) -> bool:
        return isinstance(other, Sequence) and len(other) == self._n and list(self) == list(other)

    def __array__(self, dtype=None, copy=None):
        return np.array(list(self), dtype=dtype if dtype is not None else object)

    def __repr__(self) -> str:
        head = ", ".join(repr(x) for x in self[:3])
        return f"IdSequence([{head}{', ...' if self._n > 3 else ''}], n={self._n})"


def _as_rows(rows, n: int) -> np.ndarray:
    r = np.asarray(rows, dtype=np.int64).reshape(-1)
    if r.size and (r.min() < -n or r.max() >= n):
        bad = int(r[(r < -n) | (r >= n)][0])
        raise IndexError(f"row {bad} out of range for {n} documents")
    return np.where(r < 0, r + n, r)


class Corpus:
    """Passages with random access by row and by id."""

    def __init__(self, ids: Sequence[str], titles: Sequence[str], texts: Sequence[str]):
        """An in-memory corpus (small data, tests). Use :meth:`open` for an on-disk index."""
        if not len(ids) == len(titles) == len(texts):
            raise ValueError("ids, titles and texts must have the same length")
        cols = {"id": _Column.from_strings(ids), "title": _Column.from_strings(titles),
                "text": _Column.from_strings(texts)}
        keys, order, _ = sorted_keys(cols["id"].as_uint8(), cols["id"].off)
        self._setup(cols, keys, order, len(ids), None)

    @classmethod
    def open(cls, folder: str | Path) -> Corpus:
        """Memory-map a complete index folder built by :mod:`densescale.data.index`."""
        folder = Path(folder)
        meta = json.loads((folder / "meta.json").read_text())
        self = cls.__new__(cls)
        cols = {f: _Column.open(folder, f) for f in FIELDS}
        keys = np.load(folder / "keys.npy", mmap_mode="r")
        order = np.load(folder / "order.npy", mmap_mode="r")
        self._setup(cols, keys, order, int(meta["n"]), folder)
        return self

    def _setup(self, cols: dict[str, _Column], keys: np.ndarray, order: np.ndarray, n: int,
               folder: Path | None) -> None:
        self._cols, self._keys, self._order, self._n, self.index_path = cols, keys, order, n, folder
        self._width = keys.dtype.itemsize if n else 1

    # Memory maps do not pickle: ship the folder (or the in-memory columns) and reopen.
    def __getstate__(self) -> dict:
        if self.index_path is not None:
            return {"folder": str(self.index_path)}
        return {"cols": {f: (bytes(c.buf), np.asarray(c.off)) for f, c in self._cols.items()},
                "keys": np.asarray(self._keys), "order": np.asarray(self._order), "n": self._n}

    def __setstate__(self, state: dict) -> None:
        if "folder" in state:
            other = Corpus.open(state["folder"])
            self.__dict__.update(other.__dict__)
        else:
            cols = {f: _Column(b, o) for f, (b, o) in state["cols"].items()}
            self._setup(cols, state["keys"], state["order"], state["n"], None)

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, row: int) -> Doc:
        r = int(_as_rows([row], self._n)[0])
        return Doc(*(self._cols[f].get(r) for f in FIELDS))

    def __repr__(self) -> str:
        where = f", index={str(self.index_path)!r}" if self.index_path else ""
        return f"Corpus(n={self._n}{where})"

    @property
    def ids(self) -> Sequence[str]:
        """Row -> doc id (a lazy sequence; ``list(corpus.ids)`` materialises it)."""
        return IdSequence(self._cols["id"], self._n)

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and bool(self.rows_of([doc_id], strict=False)[0] >= 0)

    def rows_of(self, doc_ids: Sequence[str], strict: bool = True) -> np.ndarray:
        """Row of each id, vectorised (binary search over the sorted ids).

        Args:
            doc_ids: document ids (a single ``str`` is treated as one id).
            strict: raise on an unknown id (default); else its row is -1.

        Returns:
            int64 array, shape [len(doc_ids)].

        Raises:
            DataError: an unknown id when ``strict``, naming the first one.
        """
        if isinstance(doc_ids, str):
            doc_ids = [doc_ids]
        enc = [d.encode("utf-8") for d in doc_ids]
        if not enc:
            return np.zeros(0, dtype=np.int64)
        if self._n == 0:
            rows = np.full(len(enc), -1, dtype=np.int64)
        else:
            lens = np.fromiter(map(len, enc), np.int64, len(enc))
            q = np.array(enc, dtype=f"S{self._width}")          # longer ids get truncated...
            pos = np.minimum(np.searchsorted(self._keys, q), self._n - 1)
            found = (self._keys[pos] == q) & (lens <= self._width)  # ...and so never match
            rows = np.where(found, self._order[pos], -1).astype(np.int64)
        if strict and (rows < 0).any():
            bad = doc_ids[int(np.flatnonzero(rows < 0)[0])]
            raise DataError(f"unknown document id {bad!r}")
        return rows

    def get(self, doc_id: str) -> Doc:
        return self[int(self.rows_of([doc_id])[0])]

    def docs(self, rows: Sequence[int] | np.ndarray) -> list[Doc]:
        r = _as_rows(rows, self._n)
        return [Doc(*t) for t in zip(*(self._cols[f].take(r) for f in FIELDS))]

    def titles(self, rows: Sequence[int] | np.ndarray) -> list[str]:
        return self._cols["title"].take(_as_rows(rows, self._n))

    def texts(self, rows: Sequence[int] | np.ndarray) -> list[str]:
        """Encoder input for each row: "title text" (title omitted when empty)."""
        r = _as_rows(rows, self._n)
        titles = self._cols["title"].take(r)
        texts = self._cols["text"].take(r)
        return [f"{a} {b}" if a else b for a, b in zip(titles, texts)]

    def iter_batches(self, batch_size: int = 10_000) -> Iterator[tuple[np.ndarray, list[str]]]:
        """(rows, texts) in row order, ``batch_size`` at a time."""
        for start in range(0, self._n, batch_size):
            rows = np.arange(start, min(start + batch_size, self._n), dtype=np.int64)
            yield rows, self.texts(rows)


__all__ = ["Corpus", "IdSequence"]
