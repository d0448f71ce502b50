from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from densescale.errors import ConfigError
from densescale.train import TrainConfig, train

TINY = {"name": "toy", "layers": 1, "hidden": 32, "heads": 2, "intermediate": 64}


def _cfg(data, out, **kw):
    base = dict(data=str(data), model=TINY, init="scratch", vocab_size=200, steps=6, batch_size=8,
                negatives=8, query_max_len=16, passage_max_len=24, lr=1e-3, eval_every=3,
                selection={"negatives": 16, "max_pairs": 50}, checkpoint_every=3, seed=7,
                out=str(out), num_threads=1)
    return TrainConfig(**{**base, **kw})


def _weights(folder):
    w = load_file(str(folder / "0_Transformer" / "model.safetensors"))
    dense = load_file(str(folder / "2_Dense" / "model.safetensors"))
    w.update({f"proj.{k}": v for k, v in dense.items()})
    return w


def _files(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_kill_and_resume_gives_identical_weights(toy_dataset, tmp_path):
    full = train(_cfg(toy_dataset, tmp_path / "a"), progress=False)
    part = train(_cfg(toy_dataset, tmp_path / "b", stop_after_steps=3), progress=False)
    assert not part["finished"] and (tmp_path / "b" / "checkpoint" / "trainer.pt").exists()
    assert not (tmp_path / "b" / "last").exists()
    before = _files(tmp_path / "b")
    with pytest.raises(ConfigError):  # a resumed run must keep the settings that shape the weights
        train(_cfg(toy_dataset, tmp_path / "b", lr=2e-3), resume=True, progress=False)
    assert _files(tmp_path / "b") == before  # a refused resume deletes nothing of the run
    resumed = train(_cfg(toy_dataset, tmp_path / "b"), resume=True, progress=False)
    assert resumed["finished"] and full["finished"]
    wa, wb = _weights(tmp_path / "a" / "last"), _weights(tmp_path / "b" / "last")
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    assert [h["eval"] for h in full["history"] if h["eval"] is not None] == \
           [h["eval"] for h in resumed["history"] if h["eval"] is not None]
    s = json.loads((tmp_path / "a" / "summary.json").read_text())
    for key in ("rung", "n_params", "n_params_total", "d", "steps", "steps_done", "finished",
                "wall_time_s", "train_time_s", "pairs_per_s", "selection_split",
                "selection_metric", "eval_negatives", "chance", "step0_ce", "best_step",
                "best_ce", "last_step", "last_ce", "learned", "not_learned_reason", "history",
                "hardware", "config"):
        assert key in s
    # 48 train pairs minus the 10 carved for selection (toy: no dev split, carved by passage)
    assert s["d"] == 38 and s["rung"] == "toy" and s["selection_split"] == "selection"
    assert s["eval_negatives"] == 16 and s["chance"] == pytest.approx(math.log(17))
    assert s["last_step"] == 6 and s["step0_ce"] == s["history"][0]["eval"]


def test_modes_and_pretrained_minilm_offline(toy_dataset, tmp_path, minilm_dir):
    hard = tmp_path / "hard.tsv"
    hard.write_text("".join(f"q{i}\td{(i + 1) % 60}\n" for i in range(60)))
    for mode, extra in (("inbatch", {"negatives": 0}), ("hard", {"hard_negatives": str(hard)})):
        s = train(_cfg(toy_dataset, tmp_path / mode, negative_mode=mode, steps=2, eval_every=0,
                       **extra), progress=False)
        assert s.finished and s.last_ce is not None and s.last_step == 2
    s = train(_cfg(toy_dataset, tmp_path / "pre", model=str(minilm_dir), init="pretrained", lr=None,
                   steps=2, eval_every=0, eval_at_start=False, pooling="cls"), progress=False)
    assert s.config["init"] == "pretrained" and s.lr == 5e-6 and s.step0_ce is None
    assert s["n_params"] == 6 * 1_774_464 + 384 * 385 + 384 * 768 + 768


def test_scratch_bert_tiny_learns_on_squad(squad_path, tmp_path):
    """A few hundred steps of scratch bert-tiny clearly lower contrastive entropy (squad test)."""
    from sentence_transformers import SentenceTransformer

    cfg = TrainConfig(data=str(squad_path), model="bert-tiny", init="scratch", vocab_size=3000,
                      train_size=4000, steps=200, batch_size=16, negatives=16, query_max_len=24,
                      passage_max_len=40, eval_every=200, out=str(tmp_path / "tiny"),
                      selection={"max_pairs": 200, "negatives": 32, "pool_size": 1000},
                      num_threads=1)
    s = train(cfg, progress=False)
    evals = [h["eval"] for h in s.history if h["eval"] is not None]
    assert s.n_params == 512_128 and len(evals) == 2
    assert evals[-1] < evals[0] - 0.5, evals  # ln(33) = 3.50 at random init
    assert s.best_step == 200 and s.learned and s.not_learned_reason is None
    st = SentenceTransformer(str(tmp_path / "tiny" / "best"), device="cpu")
    assert st.encode(["who wrote hamlet"]).shape == (1, 768)


def test_cli_json(toy_dataset, tmp_path, capsys):
    from densescale.cli import main

    with pytest.raises(SystemExit) as e:
        main(["train", "--data", str(toy_dataset), "--model", "bert-tiny", "--init", "scratch",
              "--vocab-size", "200", "--train-size", "20", "--steps", "2", "--batch-size", "4",
              "--negatives", "4", "--passage-max-len", "16", "--eval-every", "0",
              "--selection-negatives", "8", "--num-threads", "1", "--out", str(tmp_path / "cli"),
              "--json", "--quiet"])
    assert e.value.code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["d"] == 20 and out["steps"] == 2 and out["config"]["batch_size"] == 4
    assert out["config"]["selection"]["negatives"] == 8 and out["eval_negatives"] == 8
    assert (tmp_path / "cli" / "last" / "modules.json").exists()
