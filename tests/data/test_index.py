"""Index lifecycle: built once, reused, rebuilt when the source changes, never half-built."""

from __future__ import annotations

import os

import numpy as np
import pytest

from densescale.data import open_dataset
from densescale.data.index import ensure_index, fixed_width, index_dir, is_complete
from densescale.data.layouts import detect_layout
from densescale.errors import DataError


def test_index_reused_and_invalidated(tmp_path, beir_factory, to_jsonl, writer):
    root = beir_factory(tmp_path / "tiny")
    layout = detect_layout(root)
    first = ensure_index(layout)
    stamp = (first / "meta.json").stat().st_mtime_ns
    assert ensure_index(detect_layout(root)) == first  # reused, not rebuilt
    assert (first / "meta.json").stat().st_mtime_ns == stamp
    writer(root / "corpus.jsonl", to_jsonl([{"_id": "z", "text": "only doc"}]))
    os.utime(root / "corpus.jsonl", ns=(1, 2))  # different size and mtime -> different key
    ds = open_dataset(root)
    assert ds.corpus.index_path != first and list(ds.corpus.ids) == ["z"]


def test_rebuild_replaces(tmp_path, beir_factory):
    layout = detect_layout(beir_factory(tmp_path / "tiny"))
    a = ensure_index(layout)
    stamp = (a / "meta.json").stat().st_mtime_ns
    b = ensure_index(layout, rebuild=True)
    assert a == b and is_complete(b) and (b / "meta.json").stat().st_mtime_ns != stamp
    assert not [p for p in b.parent.iterdir() if p.name.startswith(".")]


def test_failed_build_leaves_nothing_complete(tmp_path, writer, to_jsonl):
    root = tmp_path / "bad"
    good = [{"_id": f"d{i}", "text": "t"} for i in range(100)]
    writer(root / "corpus.jsonl", to_jsonl(good) + '{"_id": "x"}\n')  # missing text on line 101
    writer(root / "queries.jsonl", to_jsonl([{"_id": "q", "text": "y"}]))
    with pytest.raises(DataError, match=r"corpus\.jsonl:101: missing field 'text'"):
        open_dataset(root)
    out = index_dir(detect_layout(root))
    assert not out.exists() and not list(out.parent.glob(f".{out.name}*"))


def test_crash_during_build_is_not_mistaken_for_an_index(tmp_path, beir_factory, monkeypatch):
    import densescale.data.index as index

    layout = detect_layout(beir_factory(tmp_path / "tiny"))

    def boom(folder):
        raise KeyboardInterrupt  # e.g. the user pressed Ctrl-C while sorting keys

    monkeypatch.setattr(index, "_write_keys", boom)
    with pytest.raises(KeyboardInterrupt):
        ensure_index(layout)
    assert not is_complete(index_dir(layout))
    monkeypatch.undo()
    assert len(open_dataset(layout.root).corpus) == 6


def test_duplicate_ids_first_copy_wins(tmp_path, writer, to_jsonl):
    root = tmp_path / "dup"
    writer(root / "corpus.jsonl", to_jsonl([{"_id": "a", "text": "1"}, {"_id": "b", "text": "2"},
                                            {"_id": "a", "text": "3"}]))
    writer(root / "queries.jsonl", to_jsonl([{"_id": "q", "text": "y"}]))
    c = open_dataset(root).corpus
    assert len(c) == 3 and c.rows_of(["a", "b"]).tolist() == [0, 1]


def test_fixed_width_keys_vectorised():
    words = ["", "a", "bcd", "é", "xyzw"]
    parts = [w.encode() for w in words]
    off = np.cumsum([0] + [len(p) for p in parts])
    keys = fixed_width(np.frombuffer(b"".join(parts), np.uint8), off, chunk=2)
    assert keys.tolist() == parts
