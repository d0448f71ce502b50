"""BERT self-attention with Q, K and V as one matmul in training (CPU).

transformers' ``BertSelfAttention`` projects the hidden states with three [H, H] linears, then
its attention scales Q by 1/sqrt(d). In training on CPU, ``install(model)`` makes each of them
run one [3H, H] matmul on the concatenated weights (rows of ``query`` pre-multiplied by the
scaling), gives the attention Q, K and V as contiguous [batch, heads, length, d] tensors and a
scaling of 1. Fewer, larger GEMMs; the backward has one input-gradient GEMM instead of three and
their two sums, and no pass that scales Q.

The arithmetic is BERT's: each output element is the same dot product over H, and for head
sizes that are powers of 4 (64 in every BERT shape) 1/sqrt(d) is a power of two, so scaling
the weight rows instead of the product is exact. Only the order of fp32 sums inside the GEMM
may differ (tests/models/test_qkv.py: embeddings and gradients equal to fp32 tolerance). The
parameters stay the three linears: checkpoints and the saved model do not change. Evaluation,
other devices, caches and decoders keep transformers' forward.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.bert.modeling_bert import BertSelfAttention, eager_attention_forward


class FusedQKVBertSelfAttention(BertSelfAttention):
    """``BertSelfAttention`` (same parameters, same state) with Q, K and V as one matmul in
    training on CPU; transformers' forward everywhere else."""

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
                cache: Any = None, **kwargs: Any) -> tuple[torch.Tensor, Any]:
        if (cache is not None or kwargs.get("past_key_values") is not None or not self.training
                or self.is_decoder or hidden_states.device.type != "cpu"
                or hidden_states.dim() != 3):
            return super().forward(hidden_states, attention_mask, cache=cache, **kwargs)
        s = self.scaling
        weight = torch.cat([self.query.weight * s, self.key.weight, self.value.weight])  # [3H, H]
        bias = torch.cat([self.query.bias * s, self.key.bias, self.value.bias])
        b, n, _ = hidden_states.shape
        qkv = nn.functional.linear(hidden_states, weight, bias)  # [b, n, 3H]
        qkv = qkv.view(b, n, 3, -1, self.attention_head_size).permute(2, 0, 3, 1, 4).contiguous()
        query, key, value = qkv.unbind(0)  # each [b, heads, n, d], contiguous
        attend = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation,
                                                       eager_attention_forward)
        out, weights = attend(self, query, key, value, attention_mask,
                              dropout=self.dropout.p, scaling=1.0, **kwargs)
        return out.reshape(b, n, -1).contiguous(), weights


def install(model: nn.Module) -> int:
    """Fuse Q, K and V in every ``BertSelfAttention`` of ``model`` (in place; acts in training
    on CPU); returns how many modules it changed (0 for other architectures)."""
    changed = 0
    for m in model.modules():
        if type(m) is BertSelfAttention:
            m.__class__ = FusedQKVBertSelfAttention
            changed += 1
    return changed


def uninstall(model: nn.Module) -> nn.Module:
    """Undo ``install``."""
    for m in model.modules():
        if type(m) is FusedQKVBertSelfAttention:
            m.__class__ = BertSelfAttention
    return model
