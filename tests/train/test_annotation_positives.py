"""Training on an annotation set whose positives.jsonl gives the positive text (ICT)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from densescale.data import Pair, open_dataset, read_annotation_set, write_annotation_set
from densescale.errors import DataError
from densescale.models.tokenizer import load_tokenizer
from densescale.train import TrainConfig
from densescale.train.data import TrainData


def _ict_set(tmp_path, toy_dataset, with_positives=True, drop_one=False):
    ds = open_dataset(toy_dataset)
    held = ds.selection().held_out_docs  # passages of the selection queries: never trained on
    rows = [r for r in range(len(ds.corpus)) if ds.corpus[r].id not in held][:8]
    pairs = [Pair(f"g{i}", ds.corpus[r].id) for i, r in enumerate(rows)]
    queries = {p.query_id: f"pseudo query {i}" for i, p in enumerate(pairs)}
    out = write_annotation_set(tmp_path / "ann", queries, pairs, {"method": "ict"})
    if with_positives:
        rows = [{"query_id": p.query_id, "doc_id": p.doc_id, "text": f"context only {i}"}
                for i, p in enumerate(pairs)][: 7 if drop_one else 8]
        (out / "positives.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return ds, out


def test_positive_texts_replace_corpus_passages(tmp_path, toy_dataset, minilm_dir):
    ds, ann = _ict_set(tmp_path, toy_dataset)
    aset = read_annotation_set(ann)
    assert aset.positives["g3"] == "context only 3"
    tok = load_tokenizer(str(minilm_dir))
    cfg = TrainConfig(data=str(toy_dataset), annotations=str(ann), steps=2, negatives=4,
                      passage_max_len=16, pretokenize_corpus=True)
    data = TrainData(cfg, ds, tok, log=lambda *_: None)
    store = data.passage_store(np.array([3, 5]), np.array([10, 11, 12]))  # 2 positives + 3 negs
    want = _token_ids(tok, ["context only 3", "context only 5"] + ds.corpus.texts([10, 11, 12]))
    got = [store.flat[store.offsets[i]:store.offsets[i + 1]].tolist() for i in range(len(store))]
    assert got == want
    # the source passage of each pair is still known, so it can be excluded from negatives
    assert data.pos_rows.tolist() == ds.corpus.rows_of([p.doc_id for p in aset.pairs]).tolist()


def test_annotation_pairs_on_held_out_passages_are_dropped(tmp_path, toy_dataset, minilm_dir):
    """A generated query for a passage of the selection split never becomes a training pair."""
    ds = open_dataset(toy_dataset)
    held = sorted(ds.selection().held_out_docs)
    kept = [d for d in ds.corpus.ids if d not in set(held)][:5]
    pairs = [Pair(f"h{i}", d) for i, d in enumerate(held[:3])] + \
        [Pair(f"k{i}", d) for i, d in enumerate(kept)]
    ann = write_annotation_set(tmp_path / "mixed", {p.query_id: "some query" for p in pairs},
                               pairs, {"method": "test"})
    cfg = TrainConfig(data=str(toy_dataset), annotations=str(ann), steps=2, negatives=4,
                      passage_max_len=16)
    data = TrainData(cfg, ds, load_tokenizer(str(minilm_dir)), log=lambda *_: None)
    assert [p.doc_id for p in data.pairs] == kept and data.held_out == 3


def _token_ids(tok, texts):
    return [tok(t, truncation=True, max_length=16)["input_ids"] for t in texts]


def test_missing_positive_text_is_an_error(tmp_path, toy_dataset):
    _, ann = _ict_set(tmp_path, toy_dataset, drop_one=True)
    with pytest.raises(DataError, match="no positive text"):
        read_annotation_set(ann)


def test_without_positives_file_the_corpus_passage_is_the_positive(tmp_path, toy_dataset):
    _, ann = _ict_set(tmp_path, toy_dataset, with_positives=False)
    assert read_annotation_set(ann).positives is None
