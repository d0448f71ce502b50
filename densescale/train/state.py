"""Resumable training state and its checkpoint (out/checkpoint/), saved so a kill never loses it.

A checkpoint folder holds the model (``model/``), ``trainer.pt`` (optimizer, scheduler, RNG) and
``state.json`` (TrainState, written last). Saving writes a temporary sibling folder, moves the
previous checkpoint to ``.checkpoint.old``, moves the new one into place and only then deletes
the old one. A crash between those two moves leaves ``.checkpoint.old`` complete, and
``load_checkpoint`` falls back to it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from densescale.errors import ConfigError
from densescale.utils import atomic_write_json

CHECKPOINT = "checkpoint"
OLD = ".checkpoint.old"
LOCK = ".train.lock"


@dataclass
class TrainState:
    """What a resumed run needs beyond weights and optimizer.

    Attributes:
        step: optimiser steps done.
        history: loss entries ({"step", "loss", "lr"}) and evaluations ({"step", "eval", ...}).
        best: lowest selection contrastive entropy so far (None before any evaluation).
        best_step: the step it was measured at.
        train_time_s: seconds spent in training steps (evaluation excluded).
        pairs_seen: (query, positive) pairs processed.
    """

    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best: float | None = None
    best_step: int | None = None
    train_time_s: float = 0.0
    pairs_seen: int = 0

    def evals(self) -> list[dict[str, Any]]:
        return [h for h in self.history if h.get("eval") is not None]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainState:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class Checkpoint:
    """A loaded checkpoint: model folder, trainer state dict, TrainState."""

    model_dir: Path
    trainer: dict[str, Any]
    state: TrainState


def save_checkpoint(out: Path, model: Any, opt: torch.optim.Optimizer, sched: Any,
                    state: TrainState) -> Path:
    """Write out/checkpoint/ for ``state.step`` (model, trainer.pt, state.json); crash-safe."""
    out = Path(out)
    tmp = out / f".checkpoint.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save(tmp / "model")
    trainer = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "step": state.step,
               "rng_torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        trainer["rng_cuda"] = torch.cuda.get_rng_state_all()
    torch.save(trainer, tmp / "trainer.pt")
    atomic_write_json(tmp / "state.json", state.to_dict())  # last: marks the folder complete
    final, old = out / CHECKPOINT, out / OLD
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)  # a stale copy: `final` is complete
        os.replace(final, old)
    os.replace(tmp, final)  # a crash before this line leaves `old` complete
    shutil.rmtree(old, ignore_errors=True)
    return final


def checkpoint_dir(out: Path) -> Path | None:
    """The complete checkpoint folder of ``out`` (the previous one after a crash mid-save)."""
    for cand in (Path(out) / CHECKPOINT, Path(out) / OLD):
        if (cand / "state.json").exists():
            return cand
    return None


def load_checkpoint(out: Path) -> Checkpoint:
    """The checkpoint of ``out``.

    Raises:
        ConfigError: there is none (nothing to resume).
    """
    ck = checkpoint_dir(out)
    if ck is None:
        raise ConfigError(f"--resume: no checkpoint in {out} (nothing to resume)")
    trainer = torch.load(ck / "trainer.pt", map_location="cpu", weights_only=True)
    state = TrainState.from_dict(json.loads((ck / "state.json").read_text()))
    return Checkpoint(ck / "model", trainer, state)


def remove_checkpoint(out: Path) -> None:
    for name in (CHECKPOINT, OLD):
        shutil.rmtree(Path(out) / name, ignore_errors=True)


@contextmanager
def output_lock(out: Path, take: bool = True) -> Iterator[None]:
    """Hold an exclusive lock on the output folder ``out`` (``out/.train.lock``) for a training.

    A second writer is refused with ConfigError naming the holder (pid and host); the kernel
    releases the lock when its process dies, so a killed run never leaves a stale one.
    ``take=False`` (DDP ranks other than 0) does nothing.
    """
    if not take:
        yield
        return
    import fcntl

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
            raise ConfigError(f"{out}: in use by another training ({holder}); give another "
                              "--out or wait for it") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
