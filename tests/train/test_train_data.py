"""TrainData tokenises only the training pairs that the run's steps draw."""

from __future__ import annotations

import numpy as np
import pytest

from densescale.data import open_dataset
from densescale.models.tokenizer import load_tokenizer
from densescale.train import TrainConfig
from densescale.train.data import TrainData
from densescale.train.negatives import BatchOrder


def _data(toy_dataset, tok, steps):
    cfg = TrainConfig(data=str(toy_dataset), steps=steps, batch_size=4, negatives=2,
                      query_max_len=8, passage_max_len=16, seed=5, pretokenize_corpus=False)
    return TrainData(cfg, open_dataset(toy_dataset), tok, log=lambda *_: None)


def _same(a, b):
    assert np.array_equal(a.lengths, b.lengths) and np.array_equal(a.flat, b.flat)


def test_only_the_drawn_pairs_are_tokenised_and_give_the_same_batches(toy_dataset, minilm_dir):
    tok = load_tokenizer(str(minilm_dir))
    part, full = _data(toy_dataset, tok, 3), _data(toy_dataset, tok, 1000)  # 1000: every pair
    order = BatchOrder(len(part), 4, 5)
    drawn = np.unique(np.concatenate([order.indices(s) for s in range(3)]))
    assert len(drawn) == 12 < len(part) == len(full)
    assert int((part.queries.lengths > 0).sum()) == 12  # the others were never tokenised
    assert len(part.passages) < len(full.passages)
    for s in range(3):
        idx = order.indices(s)
        _same(part.query_store(idx), full.query_store(idx))
        _same(part.passage_store(idx, np.array([1, 2])), full.passage_store(idx, np.array([1, 2])))
    undrawn = np.setdiff1d(np.arange(len(part)), drawn)[:1]
    with pytest.raises(RuntimeError, match="not tokenised"):
        part.query_store(undrawn)
    with pytest.raises(RuntimeError, match="not tokenised"):
        part.passage_store(undrawn, np.array([1]))
