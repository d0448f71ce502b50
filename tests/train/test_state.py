"""Checkpoint saving survives a crash at any instant (issue: kill between the two renames)."""

from __future__ import annotations

import os

import pytest
import torch

from densescale.errors import ConfigError
from densescale.models import build_model
from densescale.train import state as state_mod
from densescale.train.state import TrainState, load_checkpoint, save_checkpoint

TINY = {"name": "t", "layers": 1, "hidden": 16, "heads": 2, "intermediate": 32}


def _parts():
    model = build_model(TINY, init="scratch", corpus_for_tokenizer=["a b c", "d e f"] * 10,
                        vocab_size=60, proj_dim=8, seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    return model, opt, sched


def test_crash_between_renames_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model, opt, sched = _parts()
    with pytest.raises(ConfigError, match="no checkpoint"):
        load_checkpoint(tmp_path)
    save_checkpoint(tmp_path, model, opt, sched, TrainState(step=3, best=1.5, best_step=3))
    assert load_checkpoint(tmp_path).state.step == 3

    real = os.replace

    def crash_on_second(src, dst):  # moving the old one aside works, the new one never lands
        if os.path.basename(dst) == "checkpoint" and str(src).endswith(".tmp"):
            raise KeyboardInterrupt("killed")
        real(src, dst)

    monkeypatch.setattr(state_mod.os, "replace", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, model, opt, sched, TrainState(step=6))
    monkeypatch.setattr(state_mod.os, "replace", real)
    assert not (tmp_path / "checkpoint").exists()
    ck = load_checkpoint(tmp_path)  # falls back to the complete previous checkpoint
    assert ck.state.step == 3 and ck.state.best == 1.5 and ck.trainer["step"] == 3
    assert (ck.model_dir / "densescale.json").exists()
    # the next save after a recovery replaces it cleanly
    save_checkpoint(tmp_path, model, opt, sched, TrainState(step=9))
    assert load_checkpoint(tmp_path).state.step == 9
    assert not (tmp_path / ".checkpoint.old").exists()


def test_a_second_writer_of_one_output_folder_is_refused(tmp_path, toy_dataset):
    from densescale.train import TrainConfig, train
    from densescale.train.state import output_lock

    out = tmp_path / "run"
    with output_lock(out):  # another training holds the folder
        with pytest.raises(ConfigError, match=rf"{out}: in use by another training \(pid "):
            train(TrainConfig(data=str(toy_dataset), out=str(out), steps=1), progress=False)
        assert not (out / "config.json").exists()  # nothing of the refused run was written
    with output_lock(out):  # released when its holder ends
        pass


def test_a_finished_run_is_never_overwritten_without_overwrite(tmp_path, toy_dataset):
    import json

    from densescale.train import TrainConfig, train

    out = tmp_path / "run"
    base = dict(data=str(toy_dataset), model=TINY, vocab_size=200, steps=2, batch_size=4,
                negatives=4, passage_max_len=16, eval_every=0, selection={"negatives": 8},
                num_threads=1, out=str(out))
    train(TrainConfig(**base, seed=1), progress=False)
    first = (out / "last" / "0_Transformer" / "model.safetensors").read_bytes()
    with pytest.raises(ConfigError, match=r"holds a finished run; give --resume .* --overwrite"):
        train(TrainConfig(**base, seed=2), progress=False)
    assert json.loads((out / "config.json").read_text())["seed"] == 1  # left as it was
    assert (out / "last" / "0_Transformer" / "model.safetensors").read_bytes() == first
    s = train(TrainConfig(**base, seed=2), progress=False, overwrite=True)
    assert s.finished and json.loads((out / "summary.json").read_text())["config"]["seed"] == 2
    assert json.loads((out / "config.json").read_text())["seed"] == 2
    assert (out / "last" / "0_Transformer" / "model.safetensors").read_bytes() != first
