"""One optimiser step's loss, and the optimiser it feeds.

Fang et al., Scaling Laws for Dense Retrieval, SIGIR 2024, Section 3.4 (training setup).

Each step: B pre-tokenised (query, positive) pairs in a seeded order, ``negatives`` corpus
passages shared by the batch (keyed by (seed, step)), one forward for queries and one for all
passages (dynamic padding, length-sorted chunks), then the contrastive loss
(densescale.train.loss).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from densescale.models.encoder import BiEncoder
from densescale.train.config import TrainConfig
from densescale.train.data import TrainData
from densescale.train.distributed import Dist, gather, shard
from densescale.train.loss import contrastive_loss, inbatch_global_loss
from densescale.train.negatives import BatchOrder, HardNegatives, random_negatives


class TwoTower(nn.Module):
    """One forward for queries and passages, so DDP sees a single forward per step."""

    def __init__(self, model: BiEncoder):
        super().__init__()
        self.model = model

    def forward(self, qb: dict, chunks: list[dict],
                inverse: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = torch.cat([self.model.embed(c) for c in chunks])[inverse]  # [n_passages, d]
        return self.model.embed(qb), p


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW without decay on biases and LayerNorm weights (as HF Trainer, the authors' setup)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "LayerNorm" in name or "bias" in name else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.resolved_lr, betas=(0.9, 0.999), eps=1e-8)


def make_scheduler(opt: torch.optim.Optimizer,
                   cfg: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup_steps``, then linear decay to 0 at ``steps``."""
    w, t = cfg.warmup_steps, cfg.steps

    def factor(s: int) -> float:  # HF get_linear_schedule_with_warmup
        if s < w:
            return s / max(1, w)
        return max(0.0, (t - s) / max(1, t - w))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


class StepLoss:
    """The loss of step s (0-based) on this rank's share of the batch; s fixes batch and negatives.

    Args:
        cfg: the run. data: its pairs. model: the BiEncoder being trained. dist: rank/world.
        hard: hard negatives (negative_mode="hard") or None.
    """

    def __init__(self, cfg: TrainConfig, data: TrainData, model: BiEncoder, dist: Dist,
                 hard: HardNegatives | None):
        self.cfg, self.data, self.dist, self.hard = cfg, data, dist, hard
        dev = dist.device
        self.step_fn: nn.Module = TwoTower(model)
        if dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [dev.index] if dev.type == "cuda" else None
            self.step_fn = DDP(self.step_fn, device_ids=ids)
        self.order = BatchOrder(len(data), cfg.batch_size, cfg.seed)
        self.scale = model.score_scale or 1.0  # cos: the declared multiplier; dot: none
        self.bf16 = cfg.bf16 if cfg.bf16 is not None else dev.type == "cuda"
        self.chunk_rows = (cfg.passage_chunk if cfg.passage_chunk is not None
                           else (0 if dev.type == "cuda" else 64))

    def negatives(self, idx: np.ndarray, pos_rows: np.ndarray, s: int) -> np.ndarray:
        """Corpus rows of the step's shared negatives [M]."""
        cfg, k = self.cfg, self.cfg.negatives
        if cfg.negative_mode == "hard":
            h = self.hard.sample(idx, cfg.hard_negatives_per_query, cfg.seed, s)
            r = random_negatives(self.data.n_corpus, k, pos_rows, cfg.seed, s)
            return np.concatenate([h, r])
        if cfg.negative_mode == "inbatch" and k == 0:
            return np.empty(0, np.int64)
        return random_negatives(self.data.n_corpus, k, pos_rows, cfg.seed, s)

    def __call__(self, s: int) -> torch.Tensor:
        cfg, data, dist, dev = self.cfg, self.data, self.dist, self.dist.device
        idx = self.order.indices(s)  # [B] pair indices (global batch)
        pos_rows = data.pos_rows[idx]  # [B]
        neg_rows = self.negatives(idx, pos_rows, s)  # [M]
        my = dist.local(cfg.batch_size)
        gathered = cfg.gather_negatives and dist.world > 1
        mine = shard(len(neg_rows), dist.rank, dist.world) if gathered else slice(None)
        qb = _to(data.queries.batch(idx[my]), dev)
        chunks, inverse = data.passage_store(idx[my], neg_rows[mine]).length_chunks(
            self.chunk_rows)
        chunks = [_to(c, dev) for c in chunks]
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=self.bf16):
            q, pn = self.step_fn(qb, chunks, inverse.to(dev))  # [b, d], [b + M_shard, d]
        b = len(q)
        p, n = pn[:b], pn[b:]
        if gathered:
            n = gather(n)
        mask = (torch.from_numpy(pos_rows[my][:, None] == neg_rows[None, :]).to(dev)
                if len(neg_rows) else None)
        inbatch = cfg.negative_mode == "inbatch"
        if inbatch and gathered:
            return inbatch_global_loss(q, gather(p), n, mask, torch.from_numpy(pos_rows).to(dev),
                                       dist.rank, cfg.temperature, self.scale)
        return contrastive_loss(q, p, n, mask, inbatch=inbatch,
                                pos_ids=torch.from_numpy(pos_rows[my]).to(dev),
                                temperature=cfg.temperature, scale=self.scale)


def _to(batch: dict[str, Any], dev: torch.device) -> dict[str, Any]:
    return {k: v.to(dev, non_blocking=True) for k, v in batch.items()}
