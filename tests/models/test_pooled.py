"""BERT's feed-forward block on pooled buffers (densescale.models.pooled): bit for bit the
Hugging Face module's outputs and gradients, buffers reused only when nothing holds them."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from densescale.models import pooled
from densescale.models.encoder import build_model, pad_batch

TINY = {"name": "toy", "layers": 2, "hidden": 32, "heads": 2, "intermediate": 64}


def _bert(**kw):
    m = build_model(TINY, init="scratch", seed=1, vocab_size=200, **kw)
    m.train()
    return m


def _batches(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return [pad_batch([list(rng.integers(1, 200, rng.integers(2, 30))) for _ in range(r)], 0)
            for r in rng.integers(3, 12, n)]  # padded batches of varying shapes


def _step(m, batch, seed):
    torch.manual_seed(seed)  # the same dropout masks on both sides
    out = m.embed(batch)
    out.pow(2).sum().backward()
    grads = {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}
    m.zero_grad()
    return out.detach(), grads


@pytest.fixture(autouse=True)
def _fresh_pool():
    pooled.pool().clear()
    yield
    pooled.pool().clear()


def test_outputs_and_gradients_equal_the_module_bit_for_bit():
    ref, m = _bert(), _bert()
    assert pooled.install(m.encoder) == TINY["layers"]
    assert pooled.install(m.encoder) == 0  # installing twice changes nothing
    sizes = []
    for i, batch in enumerate(_batches(6)):
        a, ga = _step(ref, batch, i)
        b, gb = _step(m, batch, i)  # dropout on: the module's masks, in the same order
        assert torch.equal(a, b)
        assert ga.keys() == gb.keys() and all(torch.equal(ga[k], gb[k]) for k in ga)
        sizes.append(len(pooled.pool()._bufs))
    # reused: 2 saved tensors per layer + 1 gradient buffer at most, whatever the shapes
    assert 0 < sizes[-1] <= 2 * TINY["layers"] + 1


def test_a_buffer_is_not_reused_while_autograd_holds_it():
    """retain_graph keeps the saved tensors: another forward must not overwrite them."""
    ref, m = _bert(), _bert()
    pooled.install(m.encoder)
    b1, b2 = _batches(2, seed=3)
    grads = []
    for model in (ref, m):
        torch.manual_seed(5)
        loss = model.embed(b1).pow(2).sum()
        loss.backward(retain_graph=True)
        model.zero_grad()
        torch.manual_seed(6)
        model.embed(b2).pow(2).sum().backward()  # would reuse the buffers if they were free
        model.zero_grad()
        loss.backward()  # the first graph again
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()
                      if p.grad is not None})
    assert all(torch.equal(grads[0][k], grads[1][k]) for k in grads[0])


def test_falls_back_to_the_module_where_it_cannot_be_exact():
    ref, m = _bert(), _bert()
    pooled.install(m.encoder)
    batch = _batches(1)[0]
    for model in (ref, m):
        model.eval()
    with torch.no_grad():
        assert torch.equal(ref.embed(batch), m.embed(batch))
    ref.train(), m.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(_step(ref, batch, 1)[0], _step(m, batch, 1)[0])
    assert pooled.pool().nbytes == 0  # none of these used the pool


def test_only_exact_gelu_layers_are_patched_and_uninstall_restores():
    approx = build_model(TINY, init="scratch", seed=1, vocab_size=200)
    approx.encoder.config.hidden_act = "gelu_new"
    from transformers.activations import ACT2FN

    for layer in approx.encoder.encoder.layer:
        layer.intermediate.intermediate_act_fn = ACT2FN["gelu_new"]  # tanh approximation
    assert pooled.install(approx.encoder) == 0
    m = _bert()
    pooled.install(m.encoder)
    c = copy.deepcopy(m)  # a copy's layers run on the copy's weights
    layer = c.encoder.encoder.layer[0]
    assert layer.feed_forward_chunk.__self__ is layer
    _step(m, _batches(1)[0], 0)
    assert pooled.pool().nbytes > 0
    pooled.uninstall(m.encoder)
    assert pooled.pool().nbytes == 0
    assert all("feed_forward_chunk" not in lyr.__dict__ for lyr in m.encoder.encoder.layer)
