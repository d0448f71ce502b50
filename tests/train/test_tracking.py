"""``--report-to tensorboard``: a run's loss, lr and selection curves as TensorBoard scalars."""

from __future__ import annotations

import sys

import pytest

from densescale.errors import ConfigError
from densescale.train import TrainConfig, train
from densescale.train.state import TrainState
from densescale.train.tracking import Tracker

TINY = {"name": "toy", "layers": 1, "hidden": 32, "heads": 2, "intermediate": 64}


def _cfg(toy_dataset, out, **kw):
    base = dict(data=str(toy_dataset), model=TINY, vocab_size=200, steps=4, batch_size=8,
                negatives=8, query_max_len=16, passage_max_len=24, eval_every=2,
                selection={"negatives": 16}, seed=7, out=str(out), num_threads=1,
                progress_every=1)
    return TrainConfig(**{**base, **kw})


def _scalars(folder) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_gets_the_history_curves(toy_dataset, tmp_path):
    s = train(_cfg(toy_dataset, tmp_path / "run", report_to="tensorboard"), progress=False)
    got = _scalars(tmp_path / "run" / "tensorboard")
    assert {"train/loss", "train/lr", "selection/contrastive_entropy"} <= set(got)
    losses = [(h["step"], h["loss"]) for h in s.history if h.get("loss") is not None]
    evals = [(h["step"], h["eval"]) for h in s.history if h.get("eval") is not None]
    assert [st for st, _ in got["train/loss"]] == [1, 2, 3, 4] == [st for st, _ in losses]
    assert [v for _, v in got["train/loss"]] == pytest.approx([v for _, v in losses], rel=1e-6)
    ce = got["selection/contrastive_entropy"]
    assert [st for st, _ in ce] == [st for st, _ in evals] == [0, 2, 4]
    assert [v for _, v in ce] == pytest.approx([v for _, v in evals], rel=1e-6)
    assert not (tmp_path / "plain" / "tensorboard").exists()
    train(_cfg(toy_dataset, tmp_path / "plain", steps=1), progress=False)  # default: none
    assert not (tmp_path / "plain" / "tensorboard").exists()


def test_missing_tensorboard_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    cfg = TrainConfig(report_to="tensorboard", out=str(tmp_path / "run"))
    with pytest.raises(ConfigError, match=r"pip install 'densescale\[tensorboard\]'"):
        Tracker.start(cfg, tmp_path / "run", TrainState())
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="report_to"):
        TrainConfig(report_to="wandb")


def test_resume_replaces_the_curve_logged_after_the_checkpoint(toy_dataset, tmp_path,
                                                               monkeypatch):
    """A run killed after logging step 3 (checkpoint at 2) and resumed: TensorBoard shows each
    step once, with the resumed run's values (purge_step drops the killed run's steps >= 3),
    and the curve equals an uninterrupted run's."""
    from densescale.train import step as step_mod

    kw = dict(report_to="tensorboard", steps=6, eval_every=3, checkpoint_every=2)
    full = train(_cfg(toy_dataset, tmp_path / "full", **kw), progress=False)
    orig = step_mod.StepLoss.__call__

    def killed_at_step_4(self, s):
        if s == 3:  # 0-based: the loss of step 4
            raise RuntimeError("killed")
        return orig(self, s)

    monkeypatch.setattr(step_mod.StepLoss, "__call__", killed_at_step_4)
    with pytest.raises(RuntimeError, match="killed"):
        train(_cfg(toy_dataset, tmp_path / "run", **kw), progress=False)
    before = _scalars(tmp_path / "run" / "tensorboard")["train/loss"]
    assert [st for st, _ in before] == [1, 2, 3]  # step 3 reached the disk (flushed at eval)
    monkeypatch.setattr(step_mod.StepLoss, "__call__", orig)
    train(_cfg(toy_dataset, tmp_path / "run", **kw), resume=True, progress=False)
    got = _scalars(tmp_path / "run" / "tensorboard")
    want = [(h["step"], h["loss"]) for h in full.history if h.get("loss") is not None]
    assert [st for st, _ in got["train/loss"]] == [1, 2, 3, 4, 5, 6]
    assert [v for _, v in got["train/loss"]] == pytest.approx([v for _, v in want], rel=1e-6)
    assert [st for st, _ in got["selection/contrastive_entropy"]] == [0, 3, 6]
