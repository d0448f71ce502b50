"""Contrastive loss: softmax cross-entropy of the positive.

Fang et al., Scaling Laws for Dense Retrieval, SIGIR 2024, Section 3 (Eq. 4):

    L = -(1/B) sum_i log( e^{s(q_i,p_i+)/t} / (e^{s(q_i,p_i+)/t} + sum_j e^{s(q_i,n_j)/t}) )

with s the model's score and t the temperature (1.0 = none, the paper). The score is the inner
product of the embeddings times ``scale``: 1 for the paper's dot product, the model's declared
``score_scale`` for a cosine model (unit-length embeddings, s = scale * cos).

In the paper's setting the negatives n_j are 256 random corpus passages shared by the whole
batch; the other queries' positives are *not* negatives. ``inbatch=True`` adds them (the
MultipleNegativesRankingLoss setting); duplicates of a query's own positive are masked out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def contrastive_loss(
    q: torch.Tensor,  # [B, d] query embeddings
    p: torch.Tensor,  # [B, d] positive embeddings (row i belongs to query i)
    n: torch.Tensor | None = None,  # [M, d] negatives shared by the batch
    neg_mask: torch.Tensor | None = None,  # [B, M] bool, True = not a negative for that query
    inbatch: bool = False,
    pos_ids: torch.Tensor | None = None,  # [B] document ids, to mask duplicate in-batch positives
    temperature: float = 1.0,
    scale: float = 1.0,
) -> torch.Tensor:
    """Mean cross-entropy of each query's positive against its candidates (scalar)."""
    q, p = q.float(), p.float()
    parts: list[torch.Tensor] = []
    if inbatch:
        s = q @ p.T  # [B, B]; diagonal = positives
        if pos_ids is not None:
            eye = torch.eye(len(q), dtype=torch.bool, device=q.device)
            dup = (pos_ids[:, None] == pos_ids[None, :]) & ~eye
            s = s.masked_fill(dup, float("-inf"))
        parts.append(s)
    else:
        parts.append((q * p).sum(-1, keepdim=True))  # [B, 1]
    if n is not None and len(n):
        s_neg = q @ n.float().T  # [B, M]
        if neg_mask is not None:
            s_neg = s_neg.masked_fill(neg_mask, float("-inf"))
        parts.append(s_neg)
    logits = _logits(torch.cat(parts, dim=1), temperature, scale)  # [B, C]
    target = (torch.arange(len(q), device=q.device) if inbatch
              else torch.zeros(len(q), dtype=torch.long, device=q.device))
    return F.cross_entropy(logits, target)


class ContrastiveLoss(nn.Module):
    """``contrastive_loss`` as a module (holds temperature, scale and the in-batch switch)."""

    def __init__(self, temperature: float = 1.0, inbatch: bool = False, scale: float = 1.0):
        super().__init__()
        self.temperature = temperature
        self.inbatch = inbatch
        self.scale = scale

    def forward(self, q: torch.Tensor, p: torch.Tensor, n: torch.Tensor | None = None,
                neg_mask: torch.Tensor | None = None,
                pos_ids: torch.Tensor | None = None) -> torch.Tensor:
        return contrastive_loss(q, p, n, neg_mask, self.inbatch, pos_ids, self.temperature,
                                self.scale)


def inbatch_global_loss(
    q: torch.Tensor,  # [b, d] this rank's query embeddings
    p_all: torch.Tensor,  # [B, d] every rank's positives (all-gathered, rank order)
    n: torch.Tensor | None,  # [M, d] negatives shared by the batch (all-gathered)
    neg_mask: torch.Tensor | None,  # [b, M] bool, True = not a negative for that query
    pos_ids: torch.Tensor,  # [B] document id of every positive of the global batch
    rank: int,
    temperature: float = 1.0,
    scale: float = 1.0,
) -> torch.Tensor:
    """In-batch loss under DDP: every device's positives are candidates (targets offset by rank).

    Equals ``contrastive_loss(..., inbatch=True)`` on the global batch, restricted to this rank's
    queries; duplicates of a query's own positive are masked out.
    """
    b = len(q)
    q = q.float()
    s = q @ p_all.float().T  # [b, B]
    target = torch.arange(b, device=q.device) + rank * b
    mine = pos_ids[rank * b:(rank + 1) * b]
    dup = mine[:, None] == pos_ids[None, :]  # [b, B]
    dup[torch.arange(b, device=q.device), target] = False
    parts = [s.masked_fill(dup, float("-inf"))]
    if n is not None and len(n):
        s_neg = q @ n.float().T  # [b, M]
        parts.append(s_neg.masked_fill(neg_mask, float("-inf")) if neg_mask is not None else s_neg)
    return F.cross_entropy(_logits(torch.cat(parts, 1), temperature, scale), target)


def _logits(scores: torch.Tensor, temperature: float, scale: float) -> torch.Tensor:
    out = scores / temperature
    return out * scale if scale != 1.0 else out
