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
from densescale.utils import atomic_write_bytes, atomic_write_json

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


@dataclass
class OutputFolder:
    """What an output folder held before a run, so that a refused run can put it back.

    Attributes:
        path: the folder.
        created: the folders the run created (``path`` and missing parents), deepest first.
        entries: the names ``path`` held (taken under the lock; not the run's own lock file).
        kept: bytes of the files a fresh run rewrites before it starts (``config.json``).
    """

    path: Path
    created: list[Path]
    entries: frozenset[str] = frozenset()
    kept: dict[str, bytes] = field(default_factory=dict)

    def take_stock(self, own_lock: bool) -> None:
        """Record what the folder holds now (call under the lock); ``own_lock``: the lock file
        is the run's own (it did not exist before)."""
        self.entries = frozenset(os.listdir(self.path)) - ({LOCK} if own_lock else set())
        for name in ("config.json",):
            try:
                self.kept[name] = (self.path / name).read_bytes()
            except OSError:
                pass

    def restore(self) -> None:
        """Remove what the run added (the lock file too), rewrite the files it replaced; never
        fails (the run's own error is the one to report)."""
        try:
            names = os.listdir(self.path) if self.path.is_dir() else []
        except OSError:
            names = []
        for name in names:
            if name not in self.entries:
                path = self.path / name
                try:
                    if path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path)
                    else:
                        path.unlink()
                except OSError:
                    pass
        for name, data in self.kept.items():
            try:
                if (self.path / name).read_bytes() != data:
                    atomic_write_bytes(self.path / name, data)
            except OSError:
                pass

    def remove_created(self) -> None:
        """Remove the folders the run created, when empty (deepest first)."""
        for folder in self.created:
            try:
                folder.rmdir()
            except OSError:
                return


class OutputLease:
    """The held lock of ``output_lock``: a run that fails before ``started()`` was refused,
    and its output folder is put back as it was found."""

    def __init__(self) -> None:
        self.refused = True

    def started(self) -> None:
        """The run writes results from now on: a later failure leaves them (and a checkpoint
        to resume from)."""
        self.refused = False


@contextmanager
def output_lock(out: Path, take: bool = True) -> Iterator[OutputLease]:
    """Hold an exclusive lock on the output folder ``out`` (``out/.train.lock``) for a training.

    A second writer is refused with ConfigError naming the holder (pid and host); the kernel
    releases the lock when its process dies, so a killed run never leaves a stale one.
    ``take=False`` (DDP ranks other than 0) does nothing.

    When the body raises before it calls ``lease.started()`` (a run refused on its data, say),
    ``out`` is left as it was found: the files and folders the run added are removed (the lock
    file included, while it is still held), the files it rewrote are restored, and ``out`` is
    removed when the run created it. Nothing that was there before is deleted.
    """
    if not take:
        yield OutputLease()
        return
    import fcntl

    out = Path(out)
    folder = OutputFolder(out, [p for p in (out, *out.parents) if not p.exists()])
    lease = OutputLease()
    own_lock = not (out / LOCK).exists()
    fd, locked, failed = None, False, False
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lease.refused = False  # the folder is another run's: touch nothing
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
            raise ConfigError(f"{out}: in use by another training ({holder}); give another "
                              "--out or wait for it") from None
        folder.take_stock(own_lock)
        locked = True
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        yield lease
    except BaseException:
        failed = True
        if locked and lease.refused:
            folder.restore()  # under the lock: no other run writes here meanwhile
        raise
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock
        if failed and lease.refused:
            folder.remove_created()
