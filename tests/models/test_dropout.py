"""The bulk-stream dropout (densescale.models.dropout): torch's dropout arithmetic and
distribution from another random stream, seeded by torch; installed and removed cleanly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import AutoModel

from densescale.models.dropout import (
    ATTENTION_NAME,
    FastDropout,
    fast_dropout,
    install,
    keep_scale,
    uninstall,
)
from densescale.models.encoder import build_model, pad_batch

TINY = {"name": "toy", "layers": 2, "hidden": 32, "heads": 2, "intermediate": 64}


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_mask_has_the_dropout_distribution(p):
    n = 1_000_000
    m = keep_scale((1000, 1000), p, seed=3)
    assert m.shape == (1000, 1000) and m.dtype == torch.float32
    dropped = float((m == 0).float().mean())
    assert abs(dropped - p) < 5 * (p * (1 - p) / n) ** 0.5  # binomial, 5 sigma
    kept = m[m != 0]
    assert torch.all(kept == torch.tensor(1.0 / (1.0 - p), dtype=torch.float32))
    # neighbouring elements are independent: P(both dropped) = p^2
    both = float(((m[:, :-1] == 0) & (m[:, 1:] == 0)).float().mean())
    assert abs(both - p * p) < 5 * (p * p * (1 - p * p) / n) ** 0.5
    assert torch.equal(m, keep_scale((1000, 1000), p, seed=3))
    assert not torch.equal(m, keep_scale((1000, 1000), p, seed=4))


@pytest.mark.parametrize("p", [0.1, 0.5, 0.3])
def test_mask_is_a_32_bit_threshold_on_the_stream(p):
    """keep_i <=> hi_i * 2^24 + lo_i >= round(p * 2^32): high bytes 8 bits per element from
    PCG64(seed), 24-bit low parts (top bits of the next 32-bit words) drawn after them for the
    elements whose high byte ties."""
    n, seed = 100_003, 5
    t = round(p * 2 ** 32)
    gen = np.random.PCG64(seed)
    hi = gen.random_raw(-(-n // 8)).view(np.uint8)[:n].astype(np.uint64)
    ties = np.flatnonzero(hi == t >> 24)
    lo = np.zeros(n, np.uint64)
    if t & 0xFFFFFF:
        lo[ties] = gen.random_raw(-(-ties.size // 2)).view(np.uint32)[:ties.size] >> 8
        kept_ties = int(np.count_nonzero((hi * 2 ** 24 + lo)[ties] >= t))
        assert 0 < kept_ties < ties.size  # the sample exercises both outcomes of a tie
    expected = np.where(hi * 2 ** 24 + lo >= t, np.float32(1.0 / (1.0 - p)), np.float32(0.0))
    assert np.array_equal(keep_scale((n,), p, seed).numpy(), expected)


def test_fast_dropout_is_torch_arithmetic_seeded_by_torch():
    x = torch.randn(64, 33, requires_grad=True)
    torch.manual_seed(11)
    seed = int(torch.randint(2 ** 62, (1,)).item())
    torch.manual_seed(11)
    y = fast_dropout(x, 0.1)
    mask = keep_scale(x.shape, 0.1, seed)
    assert torch.equal(y, x * mask)  # torch: x * keep * 1/(1-p), element by element
    y.sum().backward()
    assert torch.equal(x.grad, mask)
    torch.manual_seed(11)
    assert torch.equal(fast_dropout(x, 0.1), y)  # torch.manual_seed fixes the mask
    assert not torch.equal(fast_dropout(x, 0.1), y)  # the next call draws a new one
    assert fast_dropout(x, 0.1, training=False) is x and fast_dropout(x, 0.0) is x
    # other dtypes go to torch's dropout
    xb = torch.ones(1000, dtype=torch.bfloat16)
    yb = fast_dropout(xb, 0.5)
    assert yb.dtype == torch.bfloat16 and 300 < int((yb == 0).sum()) < 700


def _bert():
    m = build_model(TINY, init="scratch", seed=1, vocab_size=200)
    m.train()
    return m


def _run(m, batch):
    out = m.embed(batch)
    out.pow(2).sum().backward()
    grads = {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}
    m.zero_grad()
    return out.detach(), grads


def test_installed_model_equals_torch_path_when_nothing_is_dropped():
    """With p so small that no element is dropped, the installed model (bulk masks on hidden
    states and attention probabilities, its own attention arithmetic) gives SDPA's embeddings and
    gradients; so the only difference at p = 0.1 is which elements the stream drops."""
    rng = np.random.default_rng(0)
    seqs = [list(rng.integers(1, 200, rng.integers(2, 20))) for _ in range(9)]  # padded batch
    batch = pad_batch(seqs, 0)
    ref = _bert()
    for d in ref.modules():
        if isinstance(d, torch.nn.Dropout):
            d.p = 0.0
    a, ga = _run(ref, batch)
    m = _bert()
    install(m.encoder)
    n_fast = 0
    for d in m.modules():
        if isinstance(d, torch.nn.Dropout):
            assert type(d) is FastDropout
            d.p, n_fast = 1e-12, n_fast + 1  # threshold 0: every element kept, scale 1.0
    assert n_fast == 1 + 3 * TINY["layers"]  # embeddings; attention, its output, FFN per layer
    assert m.encoder.config._attn_implementation == ATTENTION_NAME
    b, gb = _run(m, batch)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert ga.keys() == gb.keys()
    for n in ga:
        if "key.bias" in n:  # its gradient is ~0 (softmax is shift-invariant): rounding noise
            continue
        scale = float(ga[n].abs().max()) or 1.0
        torch.testing.assert_close(gb[n], ga[n], rtol=1e-4, atol=1e-5 * scale, msg=n)


def test_install_is_undone_and_never_saved(tmp_path):
    m = _bert()
    install(m.encoder)
    m.eval()
    with torch.no_grad():  # eval: the attention falls back to SDPA, dropout is the identity
        e1 = m.embed(pad_batch([[5, 6, 7], [8, 9]], 0))
    m.encoder.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert ATTENTION_NAME not in json.dumps(saved)
    assert AutoModel.from_pretrained(tmp_path).config._attn_implementation == "sdpa"
    uninstall(m.encoder)
    assert m.encoder.config._attn_implementation == "sdpa"
    assert not any(type(d) is FastDropout for d in m.modules())
    with torch.no_grad():
        e2 = m.embed(pad_batch([[5, 6, 7], [8, 9]], 0))
    assert torch.equal(e1, e2)


def test_gradient_checkpointing_recomputes_the_same_masks():
    """Recomputation in backward restores torch's RNG state, hence the same bulk-stream seeds:
    gradients equal those of the run without checkpointing."""
    batch = pad_batch([[5, 6, 7, 8, 9, 10], [11, 12, 13]], 0)
    grads = []
    for checkpointing in (False, True):
        m = _bert()
        install(m.encoder)
        if checkpointing:
            m.encoder.gradient_checkpointing_enable()
        torch.manual_seed(3)
        grads.append(_run(m, batch)[1])
    assert grads[0].keys() == grads[1].keys()
    assert all(torch.equal(grads[0][k], grads[1][k]) for k in grads[0])
    torch.manual_seed(4)  # and the masks did matter: another seed gives other gradients
    m = _bert()
    install(m.encoder)
    other = _run(m, batch)[1]
    assert not all(torch.equal(grads[0][k], other[k]) for k in other)


def test_additive_mask_gives_masked_fills_softmax_and_never_mixes_masks():
    from densescale.models.dropout import _additive

    g = torch.Generator().manual_seed(0)
    w = torch.randn(3, 2, 5, 5, generator=g) * 30
    masks = [torch.rand(3, 1, 5, 5, generator=g) > 0.4 for _ in range(2)]
    for m in masks:
        m[..., 0] = True  # every query attends to at least one key
    for _ in range(2):  # the second pass reads the cache
        for m in masks:
            add = _additive(m, torch.float32)
            ref = torch.softmax(w.masked_fill(~m, torch.finfo(torch.float32).min), -1)
            assert torch.equal(torch.softmax(w + add, -1), ref)
    assert _additive(masks[1], torch.float32) is _additive(masks[1], torch.float32)
    assert _additive(masks[1], torch.float64).dtype == torch.float64
    f = torch.zeros(3, 1, 5, 5)
    assert _additive(f, torch.float32) is f  # an additive mask is used as given
