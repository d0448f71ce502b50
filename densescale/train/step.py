"""One optimiser step's loss, and the optimiser it feeds.

Fang et al., Scaling Laws for Dense Retrieval, SIGIR 2024, Section 3.4 (training setup).

Each step: B pre-tokenised (query, positive) pairs in a seeded order, ``negatives`` corpus
passages shared by the batch (keyed by (seed, step)), then the contrastive loss
(densescale.train.loss). The encoder runs padded (default: one forward for the queries and one
per length-sorted chunk of passages) or, with ``packed``, unpadded (queries and passages in one
forward, densescale.models.packed). Each passage, shared negatives included,
is encoded and projected once per step.

Speed options (TrainConfig): ``packed``, ``fused_adamw`` and ``compile`` leave the arithmetic
unchanged up to the order of fp32 sums (tests/train/test_speed.py checks the weights after N
steps); ``pooled_ffn`` (default on the padded path) leaves it unchanged bit for bit and only
reuses the feed-forward blocks' buffers (densescale.models.pooled); ``fast_dropout``
(default on CPU) draws the same dropout from another random stream
(densescale.models.dropout); ``dropout=False`` changes the recipe (the paper keeps BERT's
dropout).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn

from densescale.errors import ConfigError
from densescale.models.dropout import install as install_fast_dropout
from densescale.models.encoder import BiEncoder
from densescale.models.flops import encoder_shape, peak_flops, train_flops
from densescale.models.packed import Packed, pack, packed_embed, set_dropout, supports_packing
from densescale.models.pooled import install as install_pooled_ffn
from densescale.train.config import TrainConfig
from densescale.train.data import TrainData
from densescale.train.distributed import Dist, gather, shard
from densescale.train.loss import contrastive_loss, inbatch_global_loss
from densescale.train.negatives import BatchOrder, HardNegatives, random_negatives


class TwoTower(nn.Module):
    """One forward for queries and passages, so DDP sees a single forward per step."""

    def __init__(self, model: BiEncoder, packed_fn: Any = None):
        super().__init__()
        self.model = model
        self.packed_fn = packed_fn or packed_embed

    def forward(self, qb: dict | Packed, chunks: list[dict] | int,
                inverse: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(qb, Packed):  # queries then passages, packed; chunks = number of queries
            emb = self.packed_fn(self.model, qb)  # [b + n_passages, d]
            return emb[:chunks], emb[chunks:]
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
    params = decay + no_decay  # fused: default on CUDA only (no measurable gain on CPU)
    fused = (cfg.fused_adamw if cfg.fused_adamw is not None
             else bool(params) and params[0].device.type == "cuda")
    fused = fused and _fused_ok(params)
    return torch.optim.AdamW(groups, lr=cfg.resolved_lr, betas=(0.9, 0.999), eps=1e-8,
                             fused=bool(fused) or None)


def _fused_ok(params: list[torch.Tensor]) -> bool:
    """torch's fused AdamW takes floating-point tensors on CPU, CUDA (and a few others)."""
    return bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda")
                                for p in params)


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
        set_dropout(model, cfg.dropout)
        # packed: off unless asked; measured slower than the padded path on CPU
        # (bench/RESULTS.md, issue 16), unmeasured on CUDA (bench/gpu_check.sh compares both)
        self.packed = bool(cfg.packed) and supports_packing(model.encoder)
        if cfg.packed and not self.packed:
            raise ConfigError("packed: needs a BERT encoder (BertModel, absolute positions) "
                              "without gradient checkpointing")
        if cfg.fast_dropout and self.packed:
            raise ConfigError("fast_dropout: the packed encoder draws torch's dropout; give "
                              "packed: false or fast_dropout: false")
        fast = bool(cfg.fast_dropout or (cfg.fast_dropout is None and not self.packed))
        if fast and cfg.dropout:
            install_fast_dropout(model.encoder)  # acts on CPU tensors only
        self.pooled_ffn = bool(cfg.pooled_ffn or (cfg.pooled_ffn is None and not self.packed))
        if cfg.pooled_ffn and self.packed:
            raise ConfigError("pooled_ffn: the packed encoder has its own feed-forward; give "
                              "packed: false or pooled_ffn: false")
        if self.pooled_ffn and not install_pooled_ffn(model.encoder) and cfg.pooled_ffn:
            raise ConfigError("pooled_ffn: the encoder has no BERT-family layer with exact "
                              "GELU (BERT, RoBERTa, ELECTRA, XLM-R); give pooled_ffn: false")
        self.dropout_stream = ("off" if not cfg.dropout else
                               "bulk" if fast and dev.type == "cpu" else "torch")
        fn = None
        if cfg.compile:
            if not self.packed:
                raise ConfigError("compile: needs the packed encoder (packed: true)")
            if dev.type == "cpu":  # no pool of compile workers (seen failing on a busy host)
                import torch._inductor.config as inductor_config

                inductor_config.compile_threads = 1
            fn = torch.compile(packed_embed, dynamic=True)
        self.compile_s: float | None = None
        self._fwd_s: list[float] = []
        self.step_fn: nn.Module = TwoTower(model, fn)
        self.flops = _FlopMeter(model)
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
        q_store = data.query_store(idx[my])
        p_store = data.passage_store(idx[my], neg_rows[mine])
        self.flops.add(q_store.lengths, p_store.lengths)
        t0 = time.perf_counter()
        if self.packed:
            packed = pack([q_store, p_store], self.chunk_rows).to(dev)  # 0: one chunk
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=self.bf16):
                q, pn = self.step_fn(packed, len(q_store))  # [b, d], [b + M_shard, d]
        else:
            qb = _to(q_store.batch(np.arange(len(q_store))), dev)
            chunks, inverse = p_store.length_chunks(self.chunk_rows)
            chunks = [_to(c, dev) for c in chunks]
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=self.bf16):
                q, pn = self.step_fn(qb, chunks, inverse.to(dev))  # [b, d], [b + M_shard, d]
        if self.cfg.compile and len(self._fwd_s) < 2:
            self._fwd_s.append(time.perf_counter() - t0)
            if len(self._fwd_s) == 2:  # the first forward compiles (forward and backward)
                self.compile_s = max(0.0, self._fwd_s[0] - self._fwd_s[1])
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


    def utilisation(self, summary: Any) -> None:
        """Fill the summary's model FLOPs, achieved FLOP/s, peak and MFU (this invocation's
        steps give FLOPs per step; the run's pairs/s gives the rate), compile time and the
        dropout stream."""
        summary.compile_s, summary.dropout_stream = self.compile_s, self.dropout_stream
        per_step = self.flops.per_step()
        if per_step is None:
            return
        world = self.dist.world
        peak, source = peak_flops(self.dist.device, self.bf16)
        summary.model_flops_per_step = per_step * world
        summary.peak_flops, summary.peak_source = peak * world, source
        if summary.pairs_per_s:
            rate = per_step * world * summary.pairs_per_s / self.cfg.batch_size
            summary.model_flops_per_s, summary.mfu = rate, rate / (peak * world)


class _FlopMeter:
    """Model FLOPs of the steps this process has run (densescale.models.flops)."""

    def __init__(self, model: BiEncoder):
        self.shape = encoder_shape(model.encoder)
        self.proj = model.proj_dim
        self.total, self.steps = 0.0, 0

    def add(self, q_lengths: np.ndarray, p_lengths: np.ndarray) -> None:
        lengths = np.concatenate([q_lengths, p_lengths])
        self.total += train_flops(lengths, *self.shape, proj_dim=self.proj)
        self.steps += 1

    def per_step(self) -> float | None:
        return self.total / self.steps if self.steps else None


def _to(batch: dict[str, Any], dev: torch.device) -> dict[str, Any]:
    return {k: v.to(dev, non_blocking=True) for k, v in batch.items()}
