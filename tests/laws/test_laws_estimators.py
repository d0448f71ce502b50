"""Conformance checks run over every estimator (in the manner of sklearn's check_estimator),
plus guard rails."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from _laws_synth import (
    BERT_N,
    D_GRID,
    JOINT_V2,
    MSMARCO_V1_MODEL,
    T2RANKING_V1_DATA,
    data_law,
    joint_grid,
    joint_law,
    model_law,
    noisy,
)

from densescale.errors import DataError, DenseScaleError
from densescale.laws import (
    ESTIMATORS,
    BoundaryWarning,
    ConvergenceWarning,
    DataSizeLaw,
    JointLaw,
    LawFitWarning,
    ModelSizeLaw,
    NotFittedError,
)
from densescale.laws.bootstrap import _draw, batched_lm


def _data(law: str, rel: float = 0.01):
    if law == "model":
        X, y = BERT_N, model_law(BERT_N, **MSMARCO_V1_MODEL)
    elif law == "data":
        X = np.geomspace(1e3, 5e5, 8)
        y = data_law(X, **T2RANKING_V1_DATA)
    else:
        X = joint_grid()
        y = joint_law(X[:, 0], X[:, 1], **JOINT_V2)
    y, sigma = noisy(y, rel, seed=0)
    return X, y, sigma


@pytest.fixture(params=sorted(ESTIMATORS))
def case(request):
    return request.param, ESTIMATORS[request.param]


def test_conformance(case):
    law, cls = case
    X, y, sigma = _data(law)
    est = cls(bootstrap=50, seed=1)
    params = dict(est.get_params())
    assert set(params) == {"method", "bootstrap", "bootstrap_mode", "level", "seed",
                           "weight_by_sigma", "huber_delta", "n_starts", "loo"}
    X0, y0 = X.copy(), y.copy()
    assert est.fit(X, y, sigma) is est                                 # fit returns self
    assert est.get_params() == params                                  # params untouched
    np.testing.assert_array_equal(X, X0)                               # inputs untouched
    np.testing.assert_array_equal(y, y0)
    pred = est.predict(X)
    assert pred.shape == (len(y),) and np.all(np.isfinite(pred))
    assert est.predict(X[:3]).shape == (3,)
    assert est.residuals_.shape == (len(y),)
    np.testing.assert_allclose(est.residuals_, y - pred)
    assert est.score(X, y) == pytest.approx(est.r2_)
    assert set(est.ci_) == set(cls.constants)
    for k in cls.constants:
        assert k + "_" in vars(est)
    # refit determinism (same params, same data -> identical constants and intervals)
    again = cls(**est.get_params()).fit(X, y, sigma)
    assert again.constants_dict() == est.constants_dict()
    assert again.ci_ == est.ci_
    # JSON round trip
    d = json.loads(json.dumps(est.to_dict()))
    back = cls.from_dict(d)
    np.testing.assert_allclose(back.predict(X), pred, rtol=1e-12)
    assert back.ci_ == est.ci_ and back.r2_ == est.r2_
    for f in cls.features:
        assert d[f"{f}_min"] == X.reshape(len(y), -1)[:, cls.features.index(f)].min()
    # set_params / clone
    clone = cls(**est.get_params()).set_params(bootstrap=0)
    assert clone.bootstrap == 0 and est.bootstrap == 50
    assert not hasattr(clone, "r2_")
    with pytest.raises(NotFittedError):
        clone.predict(X)
    with pytest.raises(DenseScaleError):
        clone.set_params(no_such_param=1)


def test_joint_dict_has_planner_keys():
    X, y, _ = _data("joint")
    d = JointLaw().fit(X, y).to_dict()
    for k in ("A", "B", "alpha", "beta", "delta", "n_min", "n_max", "d_min", "d_max", "r2"):
        assert isinstance(d[k], float), k
    assert d["law"] == "joint" and d["n_max"] == X[:, 0].max() and d["d_min"] == X[:, 1].min()


def test_batched_bootstrap_matches_scipy_refits(case):
    """The vectorised Levenberg-Marquardt gives the same refits as scipy's least_squares."""
    law, cls = case
    X, y, sigma = _data(law)
    est = cls(bootstrap=20, seed=0).fit(X, y)
    LX = np.log(est._check_X(X)) - est.center_
    W, Y = _draw(est, LX, y, None, est.theta_, np.random.default_rng(0))
    wres = est._weights(y, None)
    theta, ok = batched_lm(est, est.theta_, LX, Y, W, wres)
    assert ok.all()
    for b in range(5):
        th, *_ = est._fit_theta(LX, Y[b], wres, W[b], theta0=est.theta_)
        np.testing.assert_allclose(est._to_constants(theta[b], est.center_),
                                   est._to_constants(th, est.center_), rtol=2e-4, atol=1e-7)


# ------------------------------------------------------------------ guard rails
def test_too_few_points_names_minimum():
    with pytest.raises(DenseScaleError, match="at least 4"):
        ModelSizeLaw().fit(BERT_N[:3], model_law(BERT_N[:3], **MSMARCO_V1_MODEL))
    X = joint_grid()[:5]
    with pytest.raises(DenseScaleError, match="at least 6"):
        JointLaw().fit(X, joint_law(X[:, 0], X[:, 1], **JOINT_V2))
    # repeated sizes do not count twice
    n = np.repeat(BERT_N[:3], 3)
    with pytest.raises(DenseScaleError, match="at least 4"):
        ModelSizeLaw().fit(n, model_law(n, **MSMARCO_V1_MODEL))


@pytest.mark.parametrize("bad", [0.0, -5.0, np.nan, np.inf])
def test_non_positive_values_name_the_row(bad):
    n = BERT_N[:6].copy()
    y = model_law(n, **MSMARCO_V1_MODEL)
    n2 = n.copy()
    n2[2] = bad
    with pytest.raises(DataError, match="row 2: n"):
        ModelSizeLaw().fit(n2, y)
    y2 = y.copy()
    y2[4] = bad
    with pytest.raises(DataError, match="row 4: the metric"):
        ModelSizeLaw().fit(n, y2)
    X = joint_grid()
    X[7, 1] = bad
    with pytest.raises(DataError, match="row 7: d"):
        JointLaw().fit(X, np.ones(len(X)))


def test_bad_options():
    X, y, _ = _data("model")
    with pytest.raises(DenseScaleError, match="method"):
        ModelSizeLaw(method="newton").fit(X, y)
    with pytest.raises(DenseScaleError, match="standard errors"):
        ModelSizeLaw(bootstrap=10, bootstrap_mode="parametric").fit(X, y)
    with pytest.raises(DenseScaleError, match="shape"):
        JointLaw().fit(X, y)


def test_increasing_metric_warns_not_silent():
    """A metric that grows with N has no decreasing power law: warn, never a silent fit."""
    n = BERT_N
    y = 0.1 + 0.01 * np.log(n)
    with pytest.warns(LawFitWarning) as rec:
        law = ModelSizeLaw().fit(n, y)
    ours = [r for r in rec if issubclass(r.category, LawFitWarning)]
    assert law.warnings_ and len(ours) == len(law.warnings_)
    assert any(issubclass(r.category, BoundaryWarning) for r in rec)


def test_delta_at_zero_warns():
    d = np.geomspace(1e3, 5e5, 8)
    y = (6.04e4 / d) ** 0.5                       # no irreducible term: delta sits on 0
    with pytest.warns(BoundaryWarning, match="delta is at its lower bound"):
        law = DataSizeLaw().fit(d, y)
    assert law.r2_ > 0.999 and law.to_dict()["warnings"]


def test_non_convergence_warns(monkeypatch):
    X, y, _ = _data("model")
    orig = ModelSizeLaw._solve_one

    def failing(self, *a, **k):
        th, cost, _ = orig(self, *a, **k)
        return th, cost, False

    monkeypatch.setattr(ModelSizeLaw, "_solve_one", failing)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        law = ModelSizeLaw().fit(X, y)
    assert not law.converged_ and law.to_dict()["converged"] is False


def test_clean_fit_emits_no_warning():
    X, y, _ = _data("joint")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        JointLaw().fit(X, y)


def test_weight_by_sigma_changes_fit():
    X, y, sigma = _data("model", rel=0.02)
    sigma = sigma * np.linspace(1, 5, len(y))
    a = ModelSizeLaw().fit(X, y, sigma)
    b = ModelSizeLaw(weight_by_sigma=True).fit(X, y, sigma)
    assert a.alpha_ != b.alpha_
    assert b.alpha_ == pytest.approx(MSMARCO_V1_MODEL["alpha"], rel=0.1)


def test_d_grid_constant_used():
    assert D_GRID.max() == 5e5
