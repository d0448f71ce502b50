"""Dropout with a bulk random stream: BERT's dropout, cheaper on CPU.

torch draws a CPU dropout mask element by element (``bernoulli_``: one Mersenne-Twister double
per element, ~12 ns): on a bert-tiny step that is a fifth of the time, more than any matmul
but one (bench/RESULTS.md, issue 16). Here the mask comes from numpy's PCG64 in bulk (8
random bits per element, ~0.5 ns; see ``keep_scale``) and is applied as ``x * mask`` with mask
in {0, 1/(1-p)}: the same dropout, the same per-element arithmetic as torch's
(``x * keep * 1/(1-p)``), the same distribution (P(keep) = 1 - p to 2^-32), only another random
stream. The stream is seeded from torch's generator on every call, so ``torch.manual_seed``
(and a checkpoint's saved RNG state) fixes every mask, as with torch's own dropout.

``install(model)`` puts it in every ``nn.Dropout`` of a model and, for Hugging Face models on
the attention-function registry (transformers >= 4.48, attention "sdpa"), in the attention
probabilities; ``uninstall(model)`` restores both. It acts on CPU float32 tensors in training
only: on CUDA, torch's Philox dropout is already fast, and in eval dropout is the identity.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import torch
from torch import nn

ATTENTION_NAME = "densescale_fast_dropout"
_SEED_HIGH = 2 ** 62


def keep_scale(shape: torch.Size | tuple[int, ...], p: float, seed: int) -> torch.Tensor:
    """float32 mask of ``shape``: 1/(1-p) with probability 1 - p (to 2^-32), else 0; from
    PCG64(seed).

    Element i is kept when the 32-bit number ``hi_i * 2^24 + lo_i`` is at least
    ``t = round(p * 2^32)``. The high bytes come 8 bits per element from the stream; a 24-bit
    low part (the top bits of the next 32-bit words, in element order) is drawn only where the
    high byte ties with ``t``'s, one element in 256. So p is exact to 2^-32 at a quarter of the
    random bits of a 32-bit word per element (bench/RESULTS.md, issue 16: with 32-bit words the
    masks were 7% of a bert-mini step)."""
    n = int(np.prod(shape)) if len(shape) else 1
    t = min(round(p * 2 ** 32), 2 ** 32 - 1)
    hi, lo = t >> 24, t & 0xFFFFFF
    gen = np.random.PCG64(seed)
    high = gen.random_raw(-(-n // 8)).view(np.uint8)[:n]
    keep = np.greater(high, hi) if lo else np.greater_equal(high, hi)
    if lo:
        ties = np.flatnonzero(high == hi)
        if ties.size:
            low = gen.random_raw(-(-ties.size // 2)).view(np.uint32)[:ties.size] >> 8
            keep[ties] = low >= lo
    mask = np.multiply(keep, np.float32(1.0 / (1.0 - p)), dtype=np.float32)
    return torch.from_numpy(mask).view(shape)


def fast_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """``nn.functional.dropout`` with the bulk random stream on CPU (torch's on other devices):
    ``x * mask`` with mask in {0, 1/(1-p)}, i.e. torch's ``x * keep * 1/(1-p)`` per element."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0 or x.dtype != torch.float32:
        return nn.functional.dropout(x, p, training)
    seed = int(torch.randint(_SEED_HIGH, (1,)).item())  # torch's generator fixes the stream
    return x * keep_scale(x.shape, p, seed)


class FastDropout(nn.Dropout):
    """An ``nn.Dropout`` (same ``p``, same state) that draws its mask with ``fast_dropout``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_dropout(x, self.p, self.training)


def _attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
               attention_mask: torch.Tensor | None, scaling: float | None = None,
               dropout: float = 0.0, **kwargs: Any) -> tuple[torch.Tensor, Any]:
    """transformers' attention function: softmax(Q * scaling K^T + mask) -> dropout -> @V, the
    arithmetic of SDPA's reference path, with the bulk-stream dropout; SDPA itself whenever there
    is no dropout to apply (eval, p = 0, CUDA)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if dropout == 0.0 or not module.training or query.device.type != "cpu":
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, **kwargs)
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    w = torch.matmul(query * scaling, key.transpose(2, 3))  # [b, heads, q, k]; q scaled as SDPA
    if attention_mask is not None:  # in place, broadcast over heads: no copy in backward
        w.add_(_additive(attention_mask, w.dtype))
    w = fast_dropout(torch.softmax(w, dim=-1), dropout)
    out = torch.matmul(w, value)  # [b, heads, q, d]
    return out.transpose(1, 2).contiguous(), None


_MASK_CACHE: list[Any] = [None]  # (weakref to the last bool mask, its additive form): one slot


def _additive(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """An additive attention mask: 0 where ``mask`` (bool, True = attend) attends, the dtype's
    lowest value elsewhere; a float mask as given. ``w + lowest`` rounds to ``lowest`` (softmax
    weight exactly 0), as ``masked_fill`` gives, but the add is a cheap broadcast pass with an
    identity backward (``masked_fill_`` with a broadcast bool mask measured ~10x slower and
    clones the gradient). The last conversion is cached: every layer gets the same mask."""
    if mask.dtype != torch.bool:
        return mask
    last = _MASK_CACHE[0]  # read and written as one tuple: threads never mix two entries
    if last is not None and last[0]() is mask and last[1].dtype == dtype:
        return last[1]
    add = torch.zeros((), dtype=dtype, device=mask.device).expand(mask.shape).masked_fill(
        ~mask, torch.finfo(dtype).min)
    _MASK_CACHE[0] = (weakref.ref(mask), add)
    return add


def _register() -> bool:
    """Register the attention function (and SDPA's mask for it); False on transformers < 4.48."""
    try:
        from transformers import AttentionInterface
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask
    except ImportError:
        return False
    AttentionInterface.register(ATTENTION_NAME, _attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION_NAME, sdpa_mask)
    return True


def install(model: nn.Module) -> nn.Module:
    """Use the bulk-stream dropout in ``model`` (in place; returns it)."""
    for m in model.modules():
        if type(m) is nn.Dropout:
            m.__class__ = FastDropout
        cfg = getattr(m, "config", None)
        if (cfg is not None and getattr(cfg, "_attn_implementation", None) == "sdpa"
                and _register()):  # its eval path stays SDPA; an "eager" model is left alone
            m._densescale_attn = cfg._attn_implementation  # on the module, not the config
            cfg._attn_implementation = ATTENTION_NAME
    return model


def uninstall(model: nn.Module) -> nn.Module:
    """Undo ``install``: torch's dropout and the attention the model had."""
    for m in model.modules():
        if type(m) is FastDropout:
            m.__class__ = nn.Dropout
        original = m.__dict__.pop("_densescale_attn", None)
        if original is not None:
            m.config._attn_implementation = original
    return model
