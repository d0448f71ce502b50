"""Bi-encoder training loop (Fang et al. 2024, Section 3.4): fixed steps, best-on-test checkpoint.

    densescale train --data squad_v11 --model bert-tiny --init scratch --train-size 10000 \
        --steps 500 --out runs/tiny                       # one process (CPU or one GPU)
    torchrun --nproc_per_node 4 -m densescale train ...   # data parallel (DDP)

Each step: B pre-tokenised (query, positive) pairs in a seeded order, ``negatives`` random corpus
passages shared by the batch (keyed by (seed, step)), one forward for queries and one for all
passages (dynamic padding), cross-entropy of the positive (densescale.train.loss), AdamW, linear
decay, clipping. Every ``eval_every`` steps the contrastive entropy of ``eval_split`` is measured;
the best model goes to out/best, the final one to out/last, resumable state to out/checkpoint.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from densescale.errors import ConfigError, DataError
from densescale.models.encoder import BiEncoder, build_model
from densescale.train.config import TrainConfig
from densescale.train.loss import contrastive_loss
from densescale.train.negatives import BatchOrder, HardNegatives, random_negatives
from densescale.train.tokens import TokenStore
from densescale.utils import atomic_write_json, git_commit, hardware_info


# ----------------------------------------------------------------------------- data
class TrainData:
    """Pairs (as corpus rows), their tokenised queries, and tokenised passages."""

    def __init__(self, cfg: TrainConfig, ds, tokenizer, log=print):
        from densescale.data import read_annotation_set

        pos_texts = None  # query id -> positive text, when it is not the corpus passage (ICT)
        if cfg.annotations:
            aset = read_annotation_set(cfg.annotations)
            pairs, queries, pos_texts = aset.pairs, aset.queries, aset.positives
        else:
            pairs, queries = ds.pairs(cfg.split), ds.queries()
        if not pairs:
            raise DataError(f"no positive pairs in split {cfg.split!r}", cfg.annotations or ds.path)
        pairs = _subset(pairs, cfg.train_size, cfg.seed if cfg.subset_seed is None else cfg.subset_seed)
        try:
            q_texts = [queries[p.query_id] for p in pairs]
        except KeyError as e:
            raise DataError(f"pair names unknown query {e.args[0]!r}", cfg.annotations or ds.path) from None
        self.pairs = pairs
        self.pos_rows = ds.corpus.rows_of([p.doc_id for p in pairs])  # [D]
        self.qids = [p.query_id for p in pairs]
        self.corpus = ds.corpus
        self.n_corpus = len(ds.corpus)
        self.tokenizer = tokenizer
        self.max_len = cfg.passage_max_len
        t0 = time.perf_counter()
        self.queries = TokenStore.from_texts(tokenizer, q_texts, cfg.query_max_len)  # per pair
        pre = cfg.pretokenize_corpus
        if pre is None:  # tokenise the whole corpus once when that is less work than per step
            pre = self.n_corpus <= max(cfg.steps * max(cfg.negatives, 1), len(set(self.pos_rows.tolist())))
        self.pretokenized = bool(pre)
        self.positives: TokenStore | None = None  # own positive texts (ICT), pair -> row
        if pos_texts is not None:
            self.positives = TokenStore.from_texts(
                tokenizer, [pos_texts[p.query_id] for p in pairs], self.max_len)
        if self.pretokenized:
            self.passages = TokenStore.from_texts(tokenizer, _all_texts(ds.corpus), self.max_len)
            self._pos_index = self.pos_rows  # store row == corpus row
        elif self.positives is None:
            uniq, inv = np.unique(self.pos_rows, return_inverse=True)
            self.passages = TokenStore.from_texts(tokenizer, ds.corpus.texts(uniq), self.max_len)
            self._pos_index = inv.astype(np.int64)  # pair -> store row
        else:  # positives come from self.positives, negatives are tokenised per step
            self.passages = self.positives
        self.tokenize_s = time.perf_counter() - t0
        log(f"tokenised {len(pairs):,} queries and {len(self.passages):,} passages in "
            f"{self.tokenize_s:.1f}s (corpus {'pre-tokenised' if self.pretokenized else 'per step'})")

    def passage_store(self, pair_idx: np.ndarray, neg_rows: np.ndarray) -> TokenStore:
        """Token ids of the pairs' positives followed by the negative rows (B + M texts)."""
        if self.positives is not None:
            pos = self.positives.take(pair_idx)
            if len(neg_rows) == 0:
                return pos
            neg = (self.passages.take(neg_rows) if self.pretokenized else TokenStore.from_texts(
                self.tokenizer, self.corpus.texts(neg_rows), self.max_len))
            return TokenStore.concat([pos, neg])
        if self.pretokenized:
            return self.passages.take(np.concatenate([self._pos_index[pair_idx], neg_rows]))
        pos = self.passages.take(self._pos_index[pair_idx])
        if len(neg_rows) == 0:
            return pos
        neg = TokenStore.from_texts(self.tokenizer, self.corpus.texts(neg_rows), self.max_len)
        return TokenStore.concat([pos, neg])


def _all_texts(corpus) -> list[str]:
    out: list[str] = []
    for _, texts in corpus.iter_batches(50_000):
        out.extend(texts)
    return out


def _subset(pairs: list, size: int | None, seed: int) -> list:
    """The first ``size`` pairs of a seeded order (nested: a smaller D is a prefix of a larger)."""
    if size is None or size >= len(pairs):
        if size is not None and size > len(pairs):
            raise ConfigError(f"train_size {size} > {len(pairs)} available pairs")
        return list(pairs)
    try:
        from densescale.data.subsets import nested_subsets
    except ImportError:
        order = np.random.default_rng(seed).permutation(len(pairs))
        return [pairs[i] for i in order[:size]]
    return list(nested_subsets(pairs, [size], seed)[size])


# ----------------------------------------------------------------------------- model pieces
class _TwoTower(nn.Module):
    """One forward for queries and passages, so DDP sees a single forward per step."""

    def __init__(self, model: BiEncoder):
        super().__init__()
        self.model = model

    def forward(self, qb: dict, chunks: list[dict], inverse: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = torch.cat([self.model.embed(c) for c in chunks])[inverse]  # [n_passages, d], input order
        return self.model.embed(qb), p


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW without decay on biases and LayerNorm weights (as HF Trainer, the authors' setup)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "LayerNorm" in name or "bias" in name else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.resolved_lr, betas=(0.9, 0.999), eps=1e-8)


def _scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    w, t = cfg.warmup_steps, cfg.steps

    def factor(s: int) -> float:  # HF get_linear_schedule_with_warmup
        if s < w:
            return s / max(1, w)
        return max(0.0, (t - s) / max(1, t - w))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


# ----------------------------------------------------------------------------- evaluation
def evaluate(model: BiEncoder, ds, cfg: TrainConfig) -> tuple[float, float]:
    """Contrastive entropy (mean, stderr) of ``cfg.eval_split``; RNG state left untouched."""
    from densescale.evaluate import contrastive_entropy

    with torch.random.fork_rng(devices=[]):
        res = contrastive_entropy(model, ds, cfg.eval_split, negatives=cfg.eval_negatives,
                                  repeats=cfg.eval_repeats, seed=cfg.eval_seed,
                                  pool_size=cfg.eval_pool_size, max_pairs=cfg.eval_pairs)
    return float(res.mean), float(res.stderr)


# ----------------------------------------------------------------------------- checkpoints
def _save_checkpoint(out: Path, model: BiEncoder, opt, sched, step: int, state: dict) -> None:
    """out/checkpoint/: model (safetensors), trainer.pt (optimizer, scheduler, RNG), state.json."""
    tmp = out / f".checkpoint.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save(tmp / "model")
    trainer = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "step": step,
               "rng_torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        trainer["rng_cuda"] = torch.cuda.get_rng_state_all()
    torch.save(trainer, tmp / "trainer.pt")
    atomic_write_json(tmp / "state.json", {**state, "step": step})
    final, old = out / "checkpoint", out / f".checkpoint.{os.getpid()}.old"
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def _load_checkpoint(out: Path) -> tuple[Path, dict, dict]:
    import json

    ck = out / "checkpoint"
    if not (ck / "state.json").exists():
        raise ConfigError(f"--resume: no checkpoint in {out} (nothing to resume)")
    trainer = torch.load(ck / "trainer.pt", map_location="cpu", weights_only=True)
    return ck / "model", trainer, json.loads((ck / "state.json").read_text())


# ----------------------------------------------------------------------------- distributed
def _dist_setup(cfg: TrainConfig) -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        from densescale.utils import device

        return 0, 1, device(cfg.device)
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and (cfg.device is None or cfg.device.startswith("cuda"))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(local)
    dev = torch.device(f"cuda:{local}") if use_cuda else torch.device("cpu")
    if cfg.batch_size % world:
        raise ConfigError(f"batch_size {cfg.batch_size} not divisible by WORLD_SIZE {world}")
    if cfg.gather_negatives and cfg.negatives % world:
        raise ConfigError(f"gather_negatives: negatives {cfg.negatives} not divisible by WORLD_SIZE {world}")
    return dist.get_rank(), world, dev


def _gather(x: torch.Tensor, world: int) -> torch.Tensor:
    """All-gather with gradient (each rank's shard, concatenated in rank order)."""
    import torch.distributed.nn.functional as dnn

    return torch.cat(dnn.all_gather(x.contiguous()), dim=0)


# ----------------------------------------------------------------------------- train
def train(cfg: TrainConfig, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train one bi-encoder; write out/{best,last,checkpoint}, out/summary.json; return the summary.

    Args:
        cfg: the run's settings (TrainConfig).
        resume: continue from out/checkpoint (weights, optimizer, scheduler, RNG, history);
            on CPU the final weights equal those of an uninterrupted run with the same seed.
        progress: tqdm bar (stderr) with loss and pairs/s.

    Returns:
        dict: rung, n_params (non-embedding N), n_params_total, d (pairs), steps, wall_time_s,
        pairs_per_s, best_step, best_contrastive_entropy, final_contrastive_entropy, history,
        hardware, config.

    Example:
        >>> train(TrainConfig(data="squad_v11", model="bert-tiny", steps=500, out="runs/tiny"))
    """
    from tqdm import tqdm

    from densescale.data import open_dataset

    if not cfg.data:
        raise ConfigError("data: give a dataset path or name (--data)")
    rank, world, dev = _dist_setup(cfg)
    main = rank == 0
    log = (lambda m: print(m, file=sys.stderr)) if (main and progress) else (lambda m: None)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    out = Path(cfg.out)
    t_start = time.perf_counter()

    ds = open_dataset(cfg.data, cfg.data_dir)
    state: dict[str, Any] = {"history": [], "best": None, "best_step": None, "train_time_s": 0.0,
                             "pairs_seen": 0}
    start = 0
    if resume:
        model_dir, trainer_state, state = _load_checkpoint(out)
        import json

        saved = TrainConfig.make(**json.loads((out / "config.json").read_text()))
        if diff := cfg.diff(saved):
            raise ConfigError(f"--resume: config differs from the checkpoint's: {diff}")
        model = BiEncoder.load(model_dir)
        start = int(trainer_state["step"])
    else:
        if main:
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_json(out / "config.json", cfg.to_dict())
        model = build_model(cfg.model, init=cfg.init, tokenizer=cfg.tokenizer,
                            corpus_for_tokenizer=ds.corpus if cfg.init == "scratch" else None,
                            proj_dim=cfg.proj_dim, pooling=cfg.pooling, seed=cfg.seed,
                            vocab_size=cfg.vocab_size, query_max_len=cfg.query_max_len,
                            passage_max_len=cfg.passage_max_len, source=cfg.source)
        model.meta.update({"train_data": str(cfg.data), "train_size": cfg.train_size})
    model.to(dev).train()
    if cfg.grad_checkpointing:
        model.encoder.gradient_checkpointing_enable()
    data = TrainData(cfg, ds, model.tokenizer, log=log)
    d = len(data.pairs)
    hard = (HardNegatives(cfg.hard_negatives, ds.corpus, data.qids)
            if cfg.negative_mode == "hard" else None)

    opt = _optimizer(model, cfg)
    sched = _scheduler(opt, cfg)
    if resume:
        opt.load_state_dict(trainer_state["optimizer"])
        sched.load_state_dict(trainer_state["scheduler"])
    torch.manual_seed(cfg.seed + rank)  # dropout stream (init already done)
    if resume:
        if world == 1:
            torch.set_rng_state(trainer_state["rng_torch"])
        if "rng_cuda" in trainer_state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(trainer_state["rng_cuda"])
        if world > 1:
            torch.manual_seed(cfg.seed * 1_000_003 + rank + start)

    step_fn: nn.Module = _TwoTower(model)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        step_fn = DDP(step_fn, device_ids=[dev.index] if dev.type == "cuda" else None)
    order = BatchOrder(d, cfg.batch_size, cfg.seed)
    b_local = cfg.batch_size // world
    use_bf16 = cfg.bf16 if cfg.bf16 is not None else dev.type == "cuda"
    chunk_rows = cfg.passage_chunk if cfg.passage_chunk is not None else (0 if dev.type == "cuda" else 64)
    ck_every = cfg.checkpoint_every if cfg.checkpoint_every is not None else cfg.eval_every
    n_info = {"n_params": model.num_non_embedding_params(), "n_params_total": model.num_params()}
    history: list[dict] = state["history"]

    def do_eval(step: int) -> None:
        if cfg.eval_split is None:
            return
        if main:
            ce, se = evaluate(model, ds, cfg)
            history.append({"step": step, "loss": None, "eval": ce, "eval_stderr": se})
            if state["best"] is None or ce < state["best"]:
                state["best"], state["best_step"] = ce, step
                model.save(out / "best", extra={"step": step, "contrastive_entropy": ce, **n_info})
            log(f"step {step}: contrastive entropy {ce:.4f} ± {se:.4f} (best {state['best']:.4f} "
                f"@ {state['best_step']})")
        if world > 1:
            torch.distributed.barrier()

    if start == 0 and cfg.eval_at_start and not any(h.get("eval") is not None for h in history):
        do_eval(0)
    stop_at = cfg.steps if cfg.stop_after_steps is None else min(cfg.steps, start + cfg.stop_after_steps)
    bar = tqdm(total=cfg.steps, initial=start, disable=not (main and progress), file=sys.stderr,
               desc=f"train {model.rung.name if model.rung else ''}", dynamic_ncols=True)
    loss_sum, loss_n = torch.zeros((), device=dev), 0
    t_seg = time.perf_counter()
    seg_pairs = 0
    step = start
    for step in range(start + 1, stop_at + 1):
        s = step - 1  # 0-based index used for sampling
        idx = order.indices(s)  # [B] pair indices (global batch)
        pos_rows = data.pos_rows[idx]  # [B]
        neg_rows = _negatives(cfg, data, hard, idx, pos_rows, s)  # [M]
        my = slice(rank * b_local, (rank + 1) * b_local)
        shard = _shard(len(neg_rows), rank, world) if (cfg.gather_negatives and world > 1) else slice(None)
        qb = {k: v.to(dev, non_blocking=True) for k, v in data.queries.batch(idx[my]).items()}
        chunks, inverse = data.passage_store(idx[my], neg_rows[shard]).length_chunks(chunk_rows)
        chunks = [{k: v.to(dev, non_blocking=True) for k, v in c.items()} for c in chunks]
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16):
            q, pn = step_fn(qb, chunks, inverse.to(dev))  # [b, d], [b + M_shard, d]
        p, n = pn[:b_local], pn[b_local:]
        if cfg.gather_negatives and world > 1:
            n = _gather(n, world)
            if cfg.negative_mode == "inbatch":
                p_all = _gather(p, world)
        mask = torch.from_numpy(pos_rows[my][:, None] == neg_rows[None, :]).to(dev) if len(neg_rows) else None
        if cfg.negative_mode == "inbatch" and cfg.gather_negatives and world > 1:
            loss = _inbatch_global_loss(q, p_all, n, mask, pos_rows, rank, b_local, cfg.temperature, dev)
        else:
            loss = contrastive_loss(q, p, n, mask, inbatch=cfg.negative_mode == "inbatch",
                                    pos_ids=torch.from_numpy(pos_rows[my]).to(dev),
                                    temperature=cfg.temperature)
        loss.backward()
        if cfg.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        loss_sum += loss.detach()
        loss_n += 1
        seg_pairs += cfg.batch_size
        if step % cfg.progress_every == 0 or step == stop_at:
            elapsed = time.perf_counter() - t_seg
            lv = float(loss_sum) / loss_n
            history.append({"step": step, "loss": lv, "eval": None, "lr": sched.get_last_lr()[0]})
            bar.set_postfix(loss=f"{lv:.4f}", pairs_s=f"{(state['pairs_seen'] + seg_pairs) / max(state['train_time_s'] + elapsed, 1e-9):.0f}")
            bar.update(step - bar.n)
            loss_sum.zero_()
            loss_n = 0
        is_eval = (cfg.eval_every and step % cfg.eval_every == 0) or step == cfg.steps
        is_ck = (ck_every and step % ck_every == 0) or step == stop_at
        if is_eval or is_ck:
            state["train_time_s"] += time.perf_counter() - t_seg
            state["pairs_seen"] += seg_pairs
            seg_pairs = 0
            if is_eval:
                do_eval(step)
            if is_ck and main and step < cfg.steps:
                _save_checkpoint(out, model, opt, sched, step, state)
            t_seg = time.perf_counter()
    bar.close()
    state["train_time_s"] += time.perf_counter() - t_seg
    state["pairs_seen"] += seg_pairs
    finished = step >= cfg.steps
    summary = _summary(cfg, model, state, d, n_info, t_start, finished, data)
    if main:
        if finished:
            model.save(out / "last", extra={"step": step, **n_info})
            shutil.rmtree(out / "checkpoint", ignore_errors=True)
        atomic_write_json(out / "summary.json", summary)
    if world > 1:
        torch.distributed.barrier()
    return summary


def _negatives(cfg: TrainConfig, data: TrainData, hard, idx: np.ndarray, pos_rows: np.ndarray,
               s: int) -> np.ndarray:
    k = cfg.negatives
    if cfg.negative_mode == "hard":
        h = hard.sample(idx, cfg.hard_negatives_per_query, cfg.seed, s)
        r = random_negatives(data.n_corpus, k, pos_rows, cfg.seed, s)
        return np.concatenate([h, r])
    if cfg.negative_mode == "inbatch" and k == 0:
        return np.empty(0, np.int64)
    return random_negatives(data.n_corpus, k, pos_rows, cfg.seed, s)


def _shard(m: int, rank: int, world: int) -> slice:
    per = math.ceil(m / world)
    return slice(rank * per, min(m, (rank + 1) * per))


def _inbatch_global_loss(q, p_all, n, mask, pos_rows, rank, b_local, temperature, dev):
    """In-batch loss with every device's positives as candidates (targets offset by rank)."""
    import torch.nn.functional as F

    q = q.float()
    s = q @ p_all.float().T  # [b, B]
    ids = torch.from_numpy(pos_rows).to(dev)
    mine = ids[rank * b_local:(rank + 1) * b_local]
    target = torch.arange(b_local, device=dev) + rank * b_local
    dup = (mine[:, None] == ids[None, :])
    dup[torch.arange(b_local), target] = False
    parts = [s.masked_fill(dup, float("-inf"))]
    if n is not None and len(n):
        parts.append((q @ n.float().T).masked_fill(mask, float("-inf")))
    return F.cross_entropy(torch.cat(parts, 1) / temperature, target)


def _summary(cfg, model, state, d, n_info, t_start, finished, data) -> dict[str, Any]:
    evals = [h for h in state["history"] if h.get("eval") is not None]
    return {
        "rung": model.rung.name if model.rung else None,
        **n_info,
        "d": d,
        "steps": cfg.steps,
        "steps_done": max([h["step"] for h in state["history"]] or [0]),
        "finished": finished,
        "wall_time_s": time.perf_counter() - t_start,
        "train_time_s": state["train_time_s"],
        "pairs_per_s": state["pairs_seen"] / state["train_time_s"] if state["train_time_s"] else None,
        "tokenize_s": data.tokenize_s,
        "best_step": state["best_step"],
        "best_contrastive_entropy": state["best"],
        "final_contrastive_entropy": evals[-1]["eval"] if evals else None,
        "lr": cfg.resolved_lr,
        "history": state["history"],
        "hardware": hardware_info(),
        "git_commit": git_commit(),
        "config": cfg.to_dict(),
    }
