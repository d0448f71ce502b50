"""Q, K and V as one matmul (densescale.models.qkv): BERT's training forward and gradients to fp32
tolerance, under every attention implementation and both dropout streams; eval untouched."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from transformers import BertConfig, BertModel

from densescale.models import dropout as fast_dropout
from densescale.models.qkv import FusedQKVBertSelfAttention, install, uninstall


def _bert(attn: str, heads: int = 2, hidden: int = 64) -> BertModel:
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=300, hidden_size=hidden, num_hidden_layers=2,
                     num_attention_heads=heads, intermediate_size=2 * hidden,
                     attn_implementation=attn)
    return BertModel(cfg, add_pooling_layer=False)


def _step(model: BertModel, ids: torch.Tensor, mask: torch.Tensor, seed: int):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)  # the same dropout masks on both sides
    h = model(input_ids=ids, attention_mask=mask).last_hidden_state
    r = torch.randn(h.shape, generator=torch.Generator().manual_seed(5))
    (h * r * mask[..., None]).sum().backward()  # not sum(h^2): LayerNorm makes that constant
    return h.detach(), {n: p.grad.clone() for n, p in model.named_parameters()
                        if p.grad is not None}


def _batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 300, (7, 23), generator=g)
    mask = torch.ones_like(ids)
    for i in range(7):
        mask[i, 5 + 3 * i:] = 0  # padded rows of different lengths
    return ids, mask


# head sizes 32 (scaling 2^-2.5: not a power of two) and 16 (2^-2: exact)
@pytest.mark.parametrize("attn,stream,heads", [("sdpa", "bulk", 2), ("sdpa", "torch", 2),
                                               ("eager", "torch", 4), ("sdpa", "off", 4)])
def test_fused_training_step_equals_transformers(attn, stream, heads):
    plain = _bert(attn, heads)
    if stream == "off":
        for m in plain.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
    fused = copy.deepcopy(plain)
    if stream == "bulk":
        fast_dropout.install(plain)
        fast_dropout.install(fused)
    assert install(fused) == 2
    assert all(type(m) is FusedQKVBertSelfAttention for m in fused.modules()
               if "SelfAttention" in type(m).__name__)
    plain.train()
    fused.train()
    ids, mask = _batch()
    for seed in (3, 4):  # dropout on: the same masks are drawn in the same order
        h0, g0 = _step(plain, ids, mask, seed)
        h1, g1 = _step(fused, ids, mask, seed)
        torch.testing.assert_close(h1, h0, rtol=1e-5, atol=1e-5)
        assert g0.keys() == g1.keys()
        for n in g0:
            if "key.bias" in n:  # its gradient is 0 up to rounding (softmax ignores a shift)
                assert float(g1[n].abs().max()) < 1e-4 * float(g0[n.replace("bias", "weight")]
                                                                .abs().max())
                continue
            scale = float(g0[n].abs().max()) or 1.0
            torch.testing.assert_close(g1[n], g0[n], rtol=1e-4, atol=1e-5 * scale,
                                       msg=lambda m, n=n: f"{n}: {m}")
    # the parameters are the three linears: the state dict does not change
    assert plain.state_dict().keys() == fused.state_dict().keys()


def test_eval_and_uninstall_keep_transformers_forward():
    plain = _bert("sdpa")
    fused = copy.deepcopy(plain)
    install(fused)
    plain.eval()
    fused.eval()
    ids, mask = _batch()
    with torch.no_grad():
        assert torch.equal(plain(input_ids=ids, attention_mask=mask).last_hidden_state,
                           fused(input_ids=ids, attention_mask=mask).last_hidden_state)
    clone = pickle.loads(pickle.dumps(fused))  # the class is importable: models pickle
    assert type(clone.encoder.layer[0].attention.self) is FusedQKVBertSelfAttention
    uninstall(fused)
    assert not any(type(m) is FusedQKVBertSelfAttention for m in fused.modules())
