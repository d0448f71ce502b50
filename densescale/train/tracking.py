"""Training curves for an experiment tracker: ``train --report-to tensorboard``.

The loop records every point of its curves in the run's history (``TrainState.history``: the
mean loss and learning rate every ``progress_every`` steps, the selection contrastive entropy
at step 0 and every ``eval_every`` steps). A :class:`Tracker` copies the entries added since
its last call to a tracker; with ``report_to: none`` (the default) it does nothing.

TensorBoard (``pip install 'densescale[tensorboard]'``) gets the scalars

* ``train/loss``: mean InfoNCE loss since the previous point (paper Eq. 2, Section 3.4);
* ``train/lr``: the learning rate after the step;
* ``selection/contrastive_entropy`` (and ``selection/contrastive_entropy_stderr``): the
  checkpoint-selection value (Section 4.1), raw or calibrated as ``selection.metric`` says,

under ``<out>/tensorboard`` (``tensorboard --logdir runs/``). A resumed run drops what the
killed one logged after its checkpoint (``purge_step``) and continues the same curves.

Example:
    >>> track = Tracker.start(cfg, Path(cfg.out), state, main=True)
    >>> ...                     # the loop appends to state.history
    >>> track.update()          # new history entries -> scalars
    >>> track.close()
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from densescale.errors import ConfigError

REPORT_TO = ("none", "tensorboard")
LOG_DIR = "tensorboard"  # inside the run's output folder


def _summary_writer() -> Any:
    """torch's SummaryWriter class, or a ConfigError naming the extra to install."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # torch raises ImportError when the tensorboard package is missing
        raise ConfigError("--report-to tensorboard needs the tensorboard package: "
                          "pip install 'densescale[tensorboard]'") from None
    return SummaryWriter


class Tracker:
    """Copies new history entries of a training run to a tracker's writer (None: no-op)."""

    def __init__(self, history: list[dict[str, Any]], writer: Any = None, seen: int = 0):
        self.history, self.writer, self.seen = history, writer, seen

    @classmethod
    def start(cls, cfg: Any, out: Path, state: Any, main: bool = True) -> Tracker:
        """The tracker ``cfg.report_to`` names, for the process that writes (``main``).

        Entries already in ``state.history`` (a resumed run) were reported by the run that
        wrote them; only new ones are sent.

        Raises:
            ConfigError: an unknown ``report_to``, or tensorboard is not installed.
        """
        kind = getattr(cfg, "report_to", "none") or "none"
        if kind not in REPORT_TO:
            raise ConfigError(f"report_to must be one of {', '.join(REPORT_TO)}, got {kind!r}")
        if kind == "none":
            return cls(state.history, None, len(state.history))
        writer_cls = _summary_writer()  # checked on every process: a missing extra fails early
        if not main:
            return cls(state.history, None, len(state.history))
        purge = state.step + 1 if state.step else None
        writer = writer_cls(log_dir=str(Path(out) / LOG_DIR), purge_step=purge)
        return cls(state.history, writer, len(state.history))

    def update(self) -> None:
        """Send the history entries added since the last call."""
        if self.writer is None or self.seen >= len(self.history):
            return
        flush = False
        for h in self.history[self.seen:]:
            step = int(h["step"])
            if h.get("loss") is not None:
                self.writer.add_scalar("train/loss", float(h["loss"]), step)
            if h.get("lr") is not None:
                self.writer.add_scalar("train/lr", float(h["lr"]), step)
            if h.get("eval") is not None:
                self.writer.add_scalar("selection/contrastive_entropy", float(h["eval"]), step)
                if h.get("eval_stderr") is not None:
                    self.writer.add_scalar("selection/contrastive_entropy_stderr",
                                           float(h["eval_stderr"]), step)
                flush = True
        self.seen = len(self.history)
        if flush:
            self.writer.flush()

    def close(self) -> None:
        """Send what is left and close the writer."""
        self.update()
        if self.writer is not None:
            self.writer.close()
            self.writer = None
