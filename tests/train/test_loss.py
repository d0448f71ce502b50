from __future__ import annotations

import math

import numpy as np
import torch

from densescale.train.loss import ContrastiveLoss, contrastive_loss
from densescale.train.negatives import BatchOrder, random_negatives
from densescale.train.tokens import TokenStore


def test_loss_matches_hand_computation():
    q = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    p = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    n = torch.tensor([[1.0, 1.0], [-1.0, 0.0], [0.0, 0.5]])
    # query 0: pos 2; negs 1, -1, 0  | query 1: pos 2; negs 2, 0, 1
    l0 = -(2 - math.log(math.exp(2) + math.exp(1) + math.exp(-1) + math.exp(0)))
    l1 = -(2 - math.log(math.exp(2) + math.exp(2) + math.exp(0) + math.exp(1)))
    assert math.isclose(contrastive_loss(q, p, n).item(), (l0 + l1) / 2, rel_tol=1e-6)
    # temperature 0.5 doubles every score
    l0t = -(4 - math.log(math.exp(4) + math.exp(2) + math.exp(-2) + math.exp(0)))
    l1t = -(4 - math.log(math.exp(4) + math.exp(4) + math.exp(0) + math.exp(2)))
    got = ContrastiveLoss(temperature=0.5)(q, p, n).item()
    assert math.isclose(got, (l0t + l1t) / 2, rel_tol=1e-6)
    # a masked negative drops out of the denominator
    mask = torch.tensor([[True, False, False], [False, False, False]])
    l0m = -(2 - math.log(math.exp(2) + math.exp(-1) + math.exp(0)))
    assert math.isclose(contrastive_loss(q, p, n, mask).item(), (l0m + l1) / 2, rel_tol=1e-6)


def test_inbatch_loss_and_duplicate_masking():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    s = q @ p.T
    want = torch.nn.functional.cross_entropy(s, torch.arange(3)).item()
    assert math.isclose(contrastive_loss(q, p, inbatch=True).item(), want, rel_tol=1e-6)
    ids = torch.tensor([5, 6, 5])  # pairs 0 and 2 share their positive: not each other's negative
    s_m = s.clone()
    s_m[0, 2] = s_m[2, 0] = float("-inf")
    want_m = torch.nn.functional.cross_entropy(s_m, torch.arange(3)).item()
    got = contrastive_loss(q, p, inbatch=True, pos_ids=ids).item()
    assert math.isclose(got, want_m, rel_tol=1e-6)


def test_random_negatives_exclude_positives_and_are_keyed_by_step():
    excl = np.arange(0, 50)
    a = random_negatives(60, 10, excl, seed=3, step=7)
    assert len(a) == 10 and len(set(a.tolist())) == 10 and a.min() >= 50
    assert np.array_equal(a, random_negatives(60, 10, excl, seed=3, step=7))
    assert not np.array_equal(a, random_negatives(1000, 10, excl, seed=3, step=8)[:10])


def test_batch_order_covers_each_pair_once_per_epoch():
    o = BatchOrder(10, 4, seed=1)
    seen = np.concatenate([o.indices(s) for s in range(5)])  # 20 = two epochs
    assert sorted(seen[:10].tolist()) == list(range(10))
    assert sorted(seen[10:].tolist()) == list(range(10))
    assert np.array_equal(BatchOrder(10, 4, seed=1).indices(3), o.indices(3))


def test_token_store_padding():
    class Tok:
        pad_token_id = 0

        def __call__(self, texts, truncation, max_length, **kw):
            return {"input_ids": [[ord(c) for c in t][:max_length] for t in texts]}

    st = TokenStore.from_texts(Tok(), ["abc", "a", "abcdefgh"], max_len=5, chunk=2)
    b = st.batch(np.array([1, 2, 0]))
    assert b["input_ids"].tolist() == [[97, 0, 0, 0, 0], [97, 98, 99, 100, 101], [97, 98, 99, 0, 0]]
    assert b["attention_mask"].sum(1).tolist() == [1, 5, 3]
