"""Held-out validation and annotation-type comparison."""

from __future__ import annotations

import numpy as np
import pytest
from _laws_synth import (
    BERT_N,
    JOINT_V2,
    MSMARCO_V1_MODEL,
    T2RANKING_V1_DATA,
    data_law,
    joint_grid,
    joint_law,
    model_law,
    noisy,
)

from densescale.errors import DenseScaleError
from densescale.laws import DataSizeLaw, JointLaw, ModelSizeLaw
from densescale.laws.compare import compare_annotations, crossing_point
from densescale.laws.validate import holdout_mask, holdout_validate


def test_holdout_masks():
    X = joint_grid()                                   # 5 N x 6 D
    big_n = X[:, 0] == X[:, 0].max()
    big_d = X[:, 1] == X[:, 1].max()
    np.testing.assert_array_equal(holdout_mask(X, "joint"), big_n | big_d)
    np.testing.assert_array_equal(holdout_mask(X, "joint", "largest-n"), big_n)
    np.testing.assert_array_equal(holdout_mask(X, "joint", "largest-d"), big_d)
    m = holdout_mask(BERT_N, "model")
    assert m.sum() == 1 and m[np.argmax(BERT_N)]
    np.testing.assert_array_equal(holdout_mask(BERT_N, "model", "largest-n"), m)  # its axis
    with pytest.raises(DenseScaleError, match="largest-d holds out the largest D, but the "
                       "points of the model-size law share one D"):
        holdout_mask(BERT_N, "model", "largest-d")
    assert holdout_mask(BERT_N, "data", "largest-d").sum() == 1
    with pytest.raises(DenseScaleError, match="data-size law share one N"):
        holdout_mask(BERT_N, "data", "largest-n")
    with pytest.raises(DenseScaleError, match="unknown holdout"):
        holdout_mask(BERT_N, "model", "smallest")


def test_joint_extrapolation_holdout():
    X = joint_grid()
    y = joint_law(X[:, 0], X[:, 1], **JOINT_V2)
    mask = holdout_mask(X, "joint")                   # 10 of 30 points held out
    res = holdout_validate(JointLaw(), X, y, mask)
    assert res.law.n_points_ == 20 and len(res.y) == 10
    assert res.mean_rel_error < 1e-4                  # exact data: perfect extrapolation
    y_noisy, _ = noisy(y, 0.003, seed=0)
    res = holdout_validate(JointLaw(), X, y_noisy, mask)
    assert 1e-4 < res.mean_rel_error < 0.1
    d = res.to_dict()
    assert d["n_heldout"] == 10 and len(d["points"]) == 10
    p = d["points"][0]
    assert set(p) == {"n", "d", "observed", "predicted", "abs_error", "rel_error"}
    assert p["abs_error"] == pytest.approx(abs(p["observed"] - p["predicted"]))
    np.testing.assert_allclose(res.abs_error, np.abs(res.pred - res.y))


def test_model_holdout_and_guard():
    y = model_law(BERT_N, **MSMARCO_V1_MODEL)
    res = holdout_validate(ModelSizeLaw(), BERT_N, y, holdout_mask(BERT_N, "model"))
    assert res.mean_rel_error < 1e-6 and res.law.n_max_ < BERT_N.max()
    with pytest.raises(DenseScaleError, match="no held-out"):
        holdout_validate(ModelSizeLaw(), BERT_N, y, np.zeros(len(y), bool))
    with pytest.raises(DenseScaleError, match="needs at least 4"):
        holdout_validate(ModelSizeLaw(), BERT_N, y, np.arange(len(y)) > 2)


def _crossing_rows(d_star=1e6, rel=0.0, seed=0):
    """Two data laws crossing at d_star: 'llm' is steeper and wins beyond it."""
    human = {"B": 1e3, "beta": 0.5, "delta": 0.1}
    target = data_law(d_star, **human)
    llm = {"beta": 0.8, "delta": 0.05}
    llm["B"] = d_star * (target - llm["delta"]) ** (1 / llm["beta"])
    ict = {"B": 1e3, "beta": 0.5, "delta": 0.3}        # human + 0.2 everywhere
    d = np.geomspace(1e3, 5e5, 8)
    rows = []
    for i, (name, c) in enumerate((("human", human), ("llm", llm), ("ict", ict))):
        y = data_law(d, **c)
        if rel:
            y, _ = noisy(y, rel, seed=seed + i)
        rows += [{"n": 86235648, "d": float(a), "annotation": name, "y": float(b)}
                 for a, b in zip(d, y, strict=True)]
    return rows, human, llm


def test_annotation_crossing_at_known_d():
    rows, human, llm = _crossing_rows(d_star=1e6)
    cmp = compare_annotations(rows)
    assert set(cmp.laws) == {"human", "llm", "ict"}
    assert cmp.laws["llm"].beta_ == pytest.approx(0.8, rel=1e-3)
    cr = {(c.overtaker, c.overtaken): c for c in cmp.crossings}
    c = cr[("llm", "human")]
    assert c.d == pytest.approx(1e6, rel=1e-3)
    assert c.extrapolated                              # beyond the largest fitted D = 5e5
    assert c.metric == pytest.approx(data_law(1e6, **human), rel=1e-3)
    assert crossing_point(cmp.laws["human"], cmp.laws["llm"], 1e3) == pytest.approx(c.d)
    # ict never catches up with human: no crossing, reported as None
    assert cr[("human", "ict")].d is None
    assert cr[("llm", "ict")].d is not None
    d = cmp.to_dict()
    assert d["slopes"]["llm"]["beta"] == pytest.approx(0.8, rel=1e-3)


def test_annotation_crossing_with_bootstrap_ci():
    rows, _, _ = _crossing_rows(d_star=1e6, rel=0.003, seed=5)
    cmp = compare_annotations(rows, bootstrap=200, seed=0)
    c = next(c for c in cmp.crossings if {c.overtaker, c.overtaken} == {"llm", "human"})
    assert c.overtaker == "llm"
    assert c.ci is not None and c.ci[0] <= 1e6 <= c.ci[1]
    assert 0.5 < c.p_cross <= 1.0
    lo, hi = cmp.laws["llm"].ci_["beta"]
    assert lo <= 0.8 <= hi


def test_annotation_needs_two_types():
    rows = [{"d": d, "annotation": "human", "y": float(data_law(d, **T2RANKING_V1_DATA))}
            for d in np.geomspace(1e3, 1e5, 6)]
    with pytest.raises(DenseScaleError, match="two annotation types"):
        compare_annotations(rows)
    rows += [{"d": 1e3, "annotation": "ict", "y": 1.0}]
    with pytest.raises(DenseScaleError, match="annotation 'ict'"):
        compare_annotations(rows)


def test_data_law_holdout_largest_d():
    d = np.geomspace(1e3, 5e5, 8)
    y = data_law(d, **T2RANKING_V1_DATA)
    res = holdout_validate(DataSizeLaw(), d, y, holdout_mask(d, "data"))
    assert res.X[0, 0] == d.max() and res.mean_rel_error < 1e-6
