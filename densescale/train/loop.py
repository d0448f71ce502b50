"""Bi-encoder training loop: fixed steps, best-checkpoint selection.

Fang et al., Scaling Laws for Dense Retrieval, SIGIR 2024, Sections 3.4 and 4.1.

    densescale train --data squad_v11 --model bert-tiny --init scratch --train-size 10000 \
        --steps 500 --out runs/tiny                       # one process (CPU or one GPU)
    torchrun --nproc_per_node 4 -m densescale train ...   # data parallel (DDP)

The pieces live beside this module: the data (``data``), one step's loss (``step``), the losses
(``loss``), DDP (``distributed``), the periodic evaluation (``selection``), the resumable state
and checkpoint (``state``) and the summary (``summary``). At step 0 and every ``eval_every``
steps the model's own contrastive entropy on ``eval_split`` (default: the selection split) is
measured; the best model, step 0 included, goes to out/best, the final one to out/last,
resumable state to out/checkpoint. The summary says whether the run learned (best below its
step 0 and below chance); a NaN or infinite loss raises TrainingDiverged naming the step.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from densescale.errors import ConfigError, TrainingDiverged
from densescale.models.encoder import BiEncoder, build_model
from densescale.models.pooled import pool as pooled_ffn_pool
from densescale.train.config import TrainConfig
from densescale.train.data import TrainData
from densescale.train.distributed import Dist, setup
from densescale.train.negatives import HardNegatives
from densescale.train.selection import chance, evaluate, selection_metric
from densescale.train.state import (
    Checkpoint,
    TrainState,
    checkpoint_dir,
    load_checkpoint,
    output_lock,
    remove_checkpoint,
    save_checkpoint,
)
from densescale.train.step import StepLoss, make_optimizer, make_scheduler
from densescale.train.summary import TrainSummary, verdict
from densescale.train.tracking import Tracker
from densescale.utils import atomic_write_json, git_commit, hardware_info


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True,
          overwrite: bool = False, dataset: Any = None) -> TrainSummary:
    """Train one bi-encoder; write out/{best,last,checkpoint}, out/summary.json.

    Args:
        cfg: the run's settings (TrainConfig).
        resume: continue from out/checkpoint (weights, optimizer, scheduler, RNG, history);
            on CPU the final weights equal those of an uninterrupted run with the same seed.
        progress: tqdm bar (stderr) with loss and pairs/s.
        overwrite: start afresh in an ``out`` that holds a finished run or a checkpoint
            (its results are deleted first); without it such a folder is refused.
        dataset: ``cfg.data`` already opened (``densescale.data.open_dataset``), so that a
            caller that also evaluates parses it once; None = open it here.

    Raises:
        ConfigError: another training holds ``out``, or ``out`` holds a run and neither
            ``resume`` nor ``overwrite`` is given.
        DataError: bad training data. A run refused before its first step leaves ``out`` as
            it found it (``state.output_lock``): what it wrote (config.json, the lock file,
            the folder itself when it made it) is removed.
        TrainingDiverged: the loss or the selection value became NaN or infinite.

    Returns:
        TrainSummary (``.to_dict()`` is out/summary.json).

    Example:
        >>> train(TrainConfig(data="squad_v11", model="bert-tiny", steps=500, out="runs/tiny"))
    """
    if not cfg.data:
        raise ConfigError("data: give a dataset path or name (--data)")
    dist = setup(cfg)
    # one writer per output folder; a run refused before its first step (bad data, say)
    # leaves the folder as it found it
    with output_lock(Path(cfg.out), take=dist.main) as lease:
        if dist.main and not resume:
            _fresh_output(Path(cfg.out), overwrite)
        try:
            return _train(cfg, dist, resume, progress, lease.started, dataset)
        finally:
            pooled_ffn_pool().clear()  # the feed-forward buffers (densescale.models.pooled)


def _fresh_output(out: Path, overwrite: bool) -> None:
    """Refuse (or, with ``overwrite``, clear) an output folder that holds a run or a checkpoint;
    a new run never mixes its files with an earlier one's (a stale best/ is removed)."""
    ck = checkpoint_dir(out)
    done = [name for name in ("summary.json", "last") if (out / name).exists()]
    if (ck or done) and not overwrite:
        what = f"a checkpoint ({ck.name})" if ck else "a finished run"
        raise ConfigError(f"{out}: holds {what}; give --resume to continue it or --overwrite "
                          "to start again, or another --out")
    remove_checkpoint(out)
    for name in (*done, "best"):
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _train(cfg: TrainConfig, dist: Dist, resume: bool, progress: bool,
           started: Callable[[], None] = lambda: None, dataset: Any = None) -> TrainSummary:
    from tqdm import tqdm

    from densescale.data import open_dataset

    log = (lambda m: print(m, file=sys.stderr)) if (dist.main and progress) else (lambda m: None)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    out, t_start = Path(cfg.out), time.perf_counter()
    ds = dataset if dataset is not None else open_dataset(cfg.data, cfg.data_dir)
    ck = _checkpoint(cfg, out) if resume else None
    model = BiEncoder.load(ck.model_dir) if ck else _new_model(cfg, ds, out, dist)
    state = ck.state if ck else TrainState()
    track = Tracker.start(cfg, out, state, dist.main)  # --report-to: curves to a tracker
    model.to(dist.device).train()
    if cfg.grad_checkpointing:
        model.encoder.gradient_checkpointing_enable()
    data = TrainData(cfg, ds, model.tokenizer, log=log)
    hard = (HardNegatives(cfg.hard_negatives, ds.corpus, data.qids)
            if cfg.negative_mode == "hard" else None)
    opt = make_optimizer(model, cfg)
    sched = make_scheduler(opt, cfg)
    _restore_rng(cfg, dist, opt, sched, ck)
    step_loss = StepLoss(cfg, data, model, dist, hard)
    n_info = {"n_params": model.num_non_embedding_params(), "n_params_total": model.num_params()}
    keep = _Keeper(cfg, ds, model, out, state, dist, n_info, log)

    start = state.step
    if start == 0 and cfg.eval_at_start and not state.evals():
        keep.evaluate(0)
    stop_at = cfg.steps if cfg.stop_after_steps is None else min(cfg.steps,
                                                                  start + cfg.stop_after_steps)
    ck_every = cfg.checkpoint_every if cfg.checkpoint_every is not None else cfg.eval_every
    started()  # data, model and step 0 passed: a failure from here on keeps the run's files
    bar = tqdm(total=cfg.steps, initial=start, disable=not (dist.main and progress),
               file=sys.stderr, dynamic_ncols=True,
               desc=f"train {model.rung.name if model.rung else ''}")
    meter = _Meter(state, dist, cfg.batch_size)
    for step in range(start + 1, stop_at + 1):
        loss = step_loss(step - 1)
        loss.backward()
        if cfg.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        meter.add(step, loss)
        if step % cfg.progress_every == 0 or step == stop_at:
            lv, rate = meter.record(step, sched.get_last_lr()[0])
            bar.set_postfix(loss=f"{lv:.4f}", pairs_s=f"{rate:.0f}")
            bar.update(step - bar.n)
        is_eval = (cfg.eval_every and step % cfg.eval_every == 0) or step == cfg.steps
        is_ck = (ck_every and step % ck_every == 0) or step == stop_at
        if is_eval or is_ck:
            meter.pause()  # evaluation and saving are not training time
            if is_eval:
                keep.evaluate(step)
            if is_ck and dist.main and step < cfg.steps:
                save_checkpoint(out, model, opt, sched, state)
            meter.resume()
        track.update()
    bar.close()
    track.close()
    meter.pause()
    finished = state.step >= cfg.steps
    summary = _summary(cfg, model, state, len(data), n_info, t_start, finished, data.tokenize_s)
    step_loss.utilisation(summary)  # model FLOP/s and MFU (densescale.models.flops)
    log(summary.headline())
    if dist.main:
        if finished:
            model.save(out / "last", extra={"step": state.step, **n_info})
        atomic_write_json(out / "summary.json", summary.to_dict())
        if finished:  # last: a kill before this line still finds the checkpoint to resume
            remove_checkpoint(out)
    dist.barrier()
    return summary


def _checkpoint(cfg: TrainConfig, out: Path) -> Checkpoint:
    """The checkpoint to resume from; the settings that shape the weights must not change."""
    ck = load_checkpoint(out)
    saved = TrainConfig.make(**json.loads((out / "config.json").read_text()))
    if diff := cfg.diff(saved):
        raise ConfigError(f"--resume: config differs from the checkpoint's: {diff}")
    return ck


def _new_model(cfg: TrainConfig, ds, out: Path, dist: Dist) -> BiEncoder:
    """A fresh model for the run (seeded); writes out/config.json on the main rank."""
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "config.json", cfg.to_dict())
    model = build_model(cfg.model, init=cfg.init, tokenizer=cfg.tokenizer,
                        corpus_for_tokenizer=ds.corpus if cfg.init == "scratch" else None,
                        proj_dim=cfg.proj_dim, pooling=cfg.pooling, seed=cfg.seed,
                        vocab_size=cfg.vocab_size, query_max_len=cfg.query_max_len,
                        passage_max_len=cfg.passage_max_len, source=cfg.source,
                        similarity=cfg.similarity,
                        scale=cfg.scale if cfg.similarity == "cos" else None)
    model.meta.update({"train_data": str(cfg.data), "train_size": cfg.train_size})
    return model


def _restore_rng(cfg: TrainConfig, dist: Dist, opt, sched, ck: Checkpoint | None) -> None:
    """Optimizer and scheduler state, and the dropout RNG stream (init is already done)."""
    if ck is not None:
        opt.load_state_dict(ck.trainer["optimizer"])
        sched.load_state_dict(ck.trainer["scheduler"])
    torch.manual_seed(cfg.seed + dist.rank)
    if ck is None:
        return
    if dist.world == 1:
        torch.set_rng_state(ck.trainer["rng_torch"])
    if "rng_cuda" in ck.trainer and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(ck.trainer["rng_cuda"])
    if dist.world > 1:
        torch.manual_seed(cfg.seed * 1_000_003 + dist.rank + int(ck.trainer["step"]))


class _Keeper:
    """Evaluates the model at a step and keeps the best one in out/best (main rank)."""

    def __init__(self, cfg: TrainConfig, ds, model: BiEncoder, out: Path, state: TrainState,
                 dist: Dist, n_info: dict, log: Callable[[str], None]):
        self.cfg, self.ds, self.model, self.out, self.state = cfg, ds, model, out, state
        self.dist, self.n_info, self.log = dist, n_info, log

    def evaluate(self, step: int) -> None:
        """Measure (main rank), keep the best; every rank raises together on divergence."""
        if self.cfg.eval_split is None:
            return
        error = None
        if self.dist.main:
            try:
                self._measure(step)
            except TrainingDiverged as e:
                error = e
        if self.dist.reduce_max(int(error is not None)):
            raise error or TrainingDiverged("selection value is not finite (rank 0)", step)
        self.dist.barrier()

    def _measure(self, step: int) -> None:
        cfg, state = self.cfg, self.state
        ce, se, raw = evaluate(self.model, self.ds, cfg, step)
        state.history.append({"step": step, "loss": None, "eval": ce, "eval_stderr": se,
                              "eval_raw": raw})
        if state.best is None or ce < state.best:
            state.best, state.best_step = ce, step
            self.model.save(self.out / "best", extra={
                "step": step, "contrastive_entropy": ce, "selection_split": cfg.eval_split,
                "selection_metric": selection_metric(self.model), **self.n_info})
        self.log(f"step {step}: selection CE {ce:.4f} ± {se:.4f} "
                 f"({cfg.eval_split}, W={cfg.selection.negatives}) | best "
                 f"{state.best:.4f} @ step {state.best_step}")


_NEVER = 1 << 62  # larger than any step


class _Meter:
    """Mean loss between history entries, the first non-finite step, and the timed segments
    (training only) that give pairs/s. Per step it only adds tensors: no device sync."""

    def __init__(self, state: TrainState, dist: Dist, batch_size: int):
        self.state, self.dist, self.batch_size = state, dist, batch_size
        self.loss_sum, self.n = torch.zeros((), device=dist.device), 0
        self.first_bad = torch.zeros((), dtype=torch.long, device=dist.device)
        self.pairs, self.t0 = 0, time.perf_counter()  # of the current timed segment

    def add(self, step: int, loss: torch.Tensor) -> None:
        loss = loss.detach()
        self.loss_sum += loss
        self.first_bad = torch.where((self.first_bad == 0) & ~torch.isfinite(loss), step,
                                     self.first_bad)
        self.n, self.pairs, self.state.step = self.n + 1, self.pairs + self.batch_size, step

    def check(self) -> None:
        """Raise TrainingDiverged naming the first step whose loss was NaN or infinite."""
        mine = int(self.first_bad)  # 0 = none; ranks agree on the earliest bad step
        bad = _NEVER - self.dist.reduce_max(_NEVER - mine if mine else 0)
        if bad != _NEVER:
            raise TrainingDiverged("training loss is not finite (NaN or inf): lower lr, "
                                   "temperature or scale", bad)

    def record(self, step: int, lr: float) -> tuple[float, float]:
        """Append the mean loss since the last entry to the history; (loss, pairs/s)."""
        self.check()
        lv = float(self.loss_sum) / self.n
        self.state.history.append({"step": step, "loss": lv, "eval": None, "lr": lr})
        self.loss_sum.zero_()
        self.n = 0
        busy = self.state.train_time_s + time.perf_counter() - self.t0
        return lv, (self.state.pairs_seen + self.pairs) / max(busy, 1e-9)

    def pause(self) -> None:
        self.check()
        self.state.train_time_s += time.perf_counter() - self.t0
        self.state.pairs_seen += self.pairs
        self.pairs = 0

    def resume(self) -> None:
        self.t0 = time.perf_counter()


def _summary(cfg: TrainConfig, model: BiEncoder, state: TrainState, d: int, n_info: dict,
             t_start: float, finished: bool, tokenize_s: float) -> TrainSummary:
    evals = state.evals()
    step0 = next((h["eval"] for h in evals if h["step"] == 0), None)
    w, ch = cfg.selection.negatives, chance(cfg)
    learned, reason = verdict(step0, state.best, state.best_step, ch, w)
    return TrainSummary(
        rung=model.rung.name if model.rung else None, **n_info, d=d, steps=cfg.steps,
        steps_done=state.step, finished=finished,
        wall_time_s=time.perf_counter() - t_start, train_time_s=state.train_time_s,
        pairs_per_s=state.pairs_seen / state.train_time_s if state.train_time_s else None,
        tokenize_s=tokenize_s, lr=cfg.resolved_lr, similarity=model.similarity,
        score_scale=model.score_scale, selection_split=cfg.eval_split,
        selection_metric=selection_metric(model), eval_negatives=w, chance=ch, step0_ce=step0,
        best_step=state.best_step, best_ce=state.best,
        last_step=evals[-1]["step"] if evals else None,
        last_ce=evals[-1]["eval"] if evals else None, learned=learned,
        not_learned_reason=reason, history=state.history, hardware=hardware_info(),
        git_commit=git_commit(), config=cfg.to_dict())
