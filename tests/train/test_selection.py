"""Checkpoint selection on the selection split, the validity verdict, divergence, cos models."""

from __future__ import annotations

import json
import math

import pytest
import torch

from densescale.data import open_dataset
from densescale.errors import ConfigError, TrainingDiverged
from densescale.models import load_encoder
from densescale.models.tokenizer import load_tokenizer
from densescale.train import TrainConfig, train
from densescale.train.data import TrainData
from densescale.train.summary import verdict

TINY = {"name": "toy", "layers": 1, "hidden": 32, "heads": 2, "intermediate": 64}


def test_tiny_d_run_that_never_beats_its_start_is_not_learned(scifact_path, tmp_path):
    """D = 16 SciFact pairs, 30 steps of the paper's dot product: memorised, worse on the held-out
    selection queries than the untrained model, so step 0 is selected and the run is invalid."""
    cfg = TrainConfig(data=str(scifact_path), model=TINY, vocab_size=2000, train_size=16,
                      steps=30, batch_size=8, negatives=16, query_max_len=24, passage_max_len=48,
                      eval_every=10, selection={"pool_size": 1000, "max_pairs": 80},
                      out=str(tmp_path / "run"), num_threads=1, progress_every=10)
    s = train(cfg, progress=False)
    evals = [(h["step"], h["eval"]) for h in s.history if h["eval"] is not None]
    assert [st for st, _ in evals] == [0, 10, 20, 30]
    assert s.selection_split == "selection" and s.selection_metric == "raw"
    assert s.step0_ce == evals[0][1] and s.last_step == 30 and s.last_ce == evals[-1][1]
    assert s.best_step in (0, 10) and s.best_ce == min(ce for _, ce in evals)
    assert s.learned is False and "not below step-0" in s.not_learned_reason
    assert s.chance == pytest.approx(math.log(257))
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["learned"] is False and saved["best_step"] == s.best_step
    best = json.loads((tmp_path / "run" / "best" / "densescale.json").read_text())
    assert best["step"] == s.best_step and best["selection_split"] == "selection"


def test_verdict_rules():
    assert verdict(5.2, 4.0, 100, math.log(257), 256) == (True, None)
    ok, why = verdict(5.2, 5.2, 0, math.log(257), 256)
    assert not ok and why == "best 5.2000 @ step 0 not below step-0 5.2000"
    ok, why = verdict(6.0, 5.6, 40, math.log(257), 256)
    assert not ok and why == "best 5.6000 not below chance ln(257)=5.5491"
    assert verdict(None, 4.0, 10, math.log(257), 256) == (True, None)  # no step 0: chance only
    assert verdict(None, None, None, math.log(257), 256)[0] is False


def _toy_cfg(toy_dataset, out, **kw):
    base = dict(data=str(toy_dataset), model=TINY, vocab_size=200, steps=4, batch_size=8,
                negatives=8, query_max_len=16, passage_max_len=24, eval_every=2,
                selection={"negatives": 16}, seed=7, out=str(out), num_threads=1,
                progress_every=1)
    return TrainConfig(**{**base, **kw})


def test_diverged_run_raises_naming_the_step(toy_dataset, tmp_path):
    with pytest.raises(TrainingDiverged, match=r"^step 2: training loss is not finite") as e:
        train(_toy_cfg(toy_dataset, tmp_path / "div", lr=1e30), progress=False)
    assert e.value.step == 2
    assert not (tmp_path / "div" / "summary.json").exists()  # never recorded as a result


@pytest.mark.parametrize(("key", "value"), [("lr", float("inf")), ("lr", float("nan")),
                                            ("temperature", float("nan")), ("scale", math.inf),
                                            ("weight_decay", math.nan), ("seed", -1)])
def test_non_finite_settings_fail_validation_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=rf"^{key}: must be"):
        TrainConfig.make(**{key: value})


def test_cos_model_trains_selects_with_its_scale_and_reloads(toy_dataset, tmp_path):
    from densescale.train.selection import evaluate

    cfg = _toy_cfg(toy_dataset, tmp_path / "cos", similarity="cos", scale=10.0)
    s = train(cfg, progress=False)
    assert s.similarity == "cos" and s.score_scale == 10.0
    assert s.selection_metric == "calibrated" and s.finished
    enc = load_encoder(tmp_path / "cos" / "best")
    assert enc.similarity == "cos" and enc.score_scale == 10.0
    emb = enc.encode(["alpha beta w3", "river city"], "query")
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(2))
    # the reloaded best model scores exactly what selection measured (scale included)
    ce, _, raw = evaluate(enc, open_dataset(toy_dataset), cfg, s.best_step)
    assert ce == pytest.approx(s.best_ce, abs=1e-5)
    best = next(h for h in s.history if h["step"] == s.best_step and h["eval"] is not None)
    assert raw == pytest.approx(best["eval_raw"], abs=1e-5)  # the raw cosine: the paper's value
    assert raw != pytest.approx(ce, abs=1e-3)


def test_legacy_flat_eval_keys_map_into_selection():
    cfg = TrainConfig.make(eval_negatives=16, eval_pairs=32, eval_pool_size=1000, eval_seed=3,
                           eval_repeats=2)
    assert cfg.selection.model_dump(include={"negatives", "max_pairs", "pool_size", "seed",
                                             "repeats"}) == {
        "negatives": 16, "max_pairs": 32, "pool_size": 1000, "seed": 3, "repeats": 2}
    assert TrainConfig.make(**cfg.to_dict()) == cfg
    assert TrainConfig().eval_split == "selection" and TrainConfig().eval_at_start


@pytest.mark.parametrize("name", ["scifact", "squad"])
def test_training_pairs_never_touch_the_selection_split(name, scifact_path, squad_path,
                                                        minilm_dir):
    path = {"scifact": scifact_path, "squad": squad_path}[name]
    ds = open_dataset(path)
    sel = ds.selection()
    assert sel.carved and len(sel.qrels) > 0
    tok = load_tokenizer(str(minilm_dir))
    size = 800 if name == "scifact" else 2000
    cfg = TrainConfig(data=str(path), train_size=size, steps=1, negatives=4,
                      pretokenize_corpus=False, query_max_len=8, passage_max_len=8)
    data = TrainData(cfg, ds, tok, log=lambda *_: None)
    assert len(data) == size and data.held_out > 0
    assert not {p.query_id for p in data.pairs} & sel.query_ids
    assert not {p.doc_id for p in data.pairs} & sel.held_out_docs
    test_queries = set(ds.qrels("test"))
    assert not sel.query_ids & test_queries


@pytest.mark.parametrize(("name", "text", "match"), [
    ("bad.json", '{"steps": 3,\n  "lr": }', r"bad\.json:2: invalid JSON"),
    ("list.yaml", "- steps\n- 3\n", r"list\.yaml: expected a mapping"),
    ("bad.yaml", "steps: [3\nlr: 1\n", r"bad\.yaml:\d+: invalid YAML"),
    ("nan.yaml", "lr: .nan\n", r"nan\.yaml: lr: must be a finite number"),
])
def test_bad_config_files_name_the_file(tmp_path, name, text, match):
    from densescale.errors import DenseScaleError

    (tmp_path / name).write_text(text)
    with pytest.raises(DenseScaleError, match=match):
        TrainConfig.from_file(tmp_path / name)
    with pytest.raises(DenseScaleError, match=r"missing\.json: cannot read"):
        TrainConfig.from_file(tmp_path / "missing.json")


def test_partial_selection_block_keeps_the_selection_defaults():
    from densescale.train.config import SELECTION_EVAL, TrainConfig

    sel = TrainConfig(selection={"max_pairs": 32}).selection
    assert sel.max_pairs == 32
    assert (sel.repeats, sel.ranking) == (SELECTION_EVAL.repeats, SELECTION_EVAL.ranking)
    assert TrainConfig(eval_pairs=16).selection.max_pairs == 16  # legacy flat key
