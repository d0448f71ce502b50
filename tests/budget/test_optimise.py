"""Budget optimiser vs brute force; inverse problem; errors; extrapolation warnings."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from densescale.budget import (
    BERT_TINY_PARAMS,
    CostModel,
    PlanningLaw,
    cheapest_for_target,
    loss_curve,
    optimise_budget,
)
from densescale.errors import ConfigError, DataError, DenseScaleError

COST = CostModel.from_assumptions()
CASES = [("v1", 1e4, False), ("v1", 1.5e5, False), ("v2", 2e4, False), ("v2", 5e4, False),
         ("v1", 1e6, True), ("v2", 1e7, True), ("v2", 3e5, True)]


def _brute_force(law, budget, inference, points=200_000):
    zn = COST.z_param(inference)
    n = np.geomspace(BERT_TINY_PARAMS, (budget - COST.z_data) / zn, points)
    d = (budget - zn * n) / COST.z_data
    loss = law.predict(n, d)
    i = int(np.argmin(loss))
    return n[i], d[i], loss[i]


@pytest.mark.parametrize("preset,budget,inference", CASES)
def test_optimiser_matches_brute_force_log_grid(preset, budget, inference):
    law = PlanningLaw.preset(preset)
    a = optimise_budget(law, COST, budget, inference=inference)
    n, d, loss = _brute_force(law, budget, inference)
    assert a.loss == pytest.approx(loss, rel=0.01)
    assert a.loss <= loss * (1 + 1e-9)  # never worse than the grid
    assert a.n == pytest.approx(n, rel=0.01)
    assert a.d == pytest.approx(d, rel=0.01)
    assert a.cost == pytest.approx(budget, rel=1e-9)  # the constraint is active


def test_optimiser_matches_two_dimensional_grid():
    """Coarse 2-D grid over (N, D) with Z <= budget: the 1-D optimum is at least as good."""
    law, budget = PlanningLaw.preset("v2"), 2e4
    n = np.geomspace(1e6, 1e12, 600)[:, None]
    d = np.geomspace(1, 1e5, 600)[None, :]
    loss = np.where(COST.cost(n, d, inference=False) <= budget, law.predict(n, d), np.inf)
    a = optimise_budget(law, COST, budget, inference=False)
    assert a.loss <= loss.min() * (1 + 1e-9)
    assert a.loss == pytest.approx(loss.min(), rel=0.01)


def test_inference_cost_shrinks_the_optimal_model():
    for preset in ("v1", "v2"):
        law = PlanningLaw.preset(preset)
        with_inf = optimise_budget(law, COST, 1e6, inference=True)
        without = optimise_budget(law, COST, 1e6, inference=False)
        assert with_inf.n < without.n / 100
        assert with_inf.loss > without.loss


def test_budget_below_smallest_model_is_a_clear_error():
    law = PlanningLaw.preset("v2")
    with pytest.raises(DenseScaleError, match="cannot pay for the smallest model"):
        optimise_budget(law, COST, 2e4, inference=True)  # BERT-Tiny alone costs ~$220k to serve
    with pytest.raises(DenseScaleError, match="512,128"):
        optimise_budget(law, COST, 0.5, inference=False)
    with pytest.raises(DenseScaleError, match="smallest model"):
        optimise_budget(law, COST, 100.0, inference=False, n_min=1e10)


def test_tight_budget_sits_on_a_bound():
    law = PlanningLaw.preset("v2")
    floor = COST.z_param(True) * BERT_TINY_PARAMS + COST.z_data
    a = optimise_budget(law, COST, floor * 1.0000001, inference=True)
    assert a.n == pytest.approx(BERT_TINY_PARAMS, rel=1e-4)
    assert a.at_bound is not None


@pytest.mark.parametrize("preset,budget,inference", CASES)
def test_target_inversion_is_consistent(preset, budget, inference):
    law = PlanningLaw.preset(preset)
    a = optimise_budget(law, COST, budget, inference=inference)
    inv = cheapest_for_target(law, COST, a.loss, inference=inference)
    assert inv.cost == pytest.approx(budget, rel=0.01)
    assert inv.n == pytest.approx(a.n, rel=0.01)
    assert inv.loss == pytest.approx(a.loss, rel=1e-6)


def test_target_at_or_below_floor_is_impossible():
    law = PlanningLaw.preset("v2")
    for t in (law.delta, law.delta / 2, 0.0):
        with pytest.raises(DenseScaleError, match="unreachable"):
            cheapest_for_target(law, COST, t)


def test_data_needed_solves_the_law():
    law = PlanningLaw.preset("v1")
    n = np.geomspace(1e7, 1e11, 7)
    d = law.data_needed(n, 0.2)
    ok = np.isfinite(d)
    assert ok.sum() >= 3 and not ok.all()  # small models cannot reach 0.2 at any D
    np.testing.assert_allclose(law.predict(n[ok], d[ok]), 0.2, rtol=1e-9)
    assert n[~ok].max() < law.min_model_for(0.2) < n[ok].min()
    assert law.data_needed(law.min_model_for(0.2) * 0.999, 0.2) == math.inf


def test_extrapolation_warning_gives_orders_of_magnitude():
    law = PlanningLaw.preset("v2")
    a = optimise_budget(law, COST, 2e4, inference=False)
    orders = a.extrapolation["n"]["orders"]
    assert orders == pytest.approx(math.log10(a.n / 86e6))
    assert any("EXTRAPOLATION: N" in w and f"{orders:.1f} orders of magnitude" in w
               for w in a.warnings)
    inside = optimise_budget(law.with_range(n_max=1e13, d_max=1e7), COST, 2e4, inference=False)
    assert inside.extrapolation == {}
    assert not any("EXTRAPOLATION" in w for w in inside.warnings)
    ranged = law.with_range(n_min=1e11, n_max=1e13, d_min=1e5, d_max=1e7)
    below = optimise_budget(ranged, COST, 2e4, inference=False)
    assert below.extrapolation["n"]["orders"] == pytest.approx(math.log10(1e11 / below.n))
    assert "d" in below.extrapolation


def test_v1_preset_is_flagged():
    a = optimise_budget(PlanningLaw.preset("v1"), COST, 2e4, inference=False)
    assert any("do not reproduce" in w for w in a.warnings)


def test_loss_curve_is_u_shaped_and_minimal_at_optimum():
    law = PlanningLaw.preset("v1")
    a = optimise_budget(law, COST, 5e4, inference=False)
    ns = np.geomspace(BERT_TINY_PARAMS, 1e13, 50)
    ls = loss_curve(law, COST, 5e4, ns, inference=False)
    assert np.isnan(ls[-1])  # unaffordable model
    assert np.nanmin(ls) >= a.loss * (1 - 1e-9)
    assert ls[0] > a.loss


def test_fit_json_variants(tmp_path):
    top = tmp_path / "top.json"
    top.write_text(json.dumps({"A": 3.6e4, "B": 7.1e3, "alpha": 0.56, "beta": 1.31,
                               "delta": 0.03, "n_min": 1e6, "n_max": 1e8, "d_max": 1e5}))
    law = PlanningLaw.from_json(top)
    assert (law.A, law.n_max, law.d_max, law.d_min) == (3.6e4, 1e8, 1e5, None)
    nested = tmp_path / "nested.json"
    nested.write_text(json.dumps({"law": "joint", "params": {"A": 1, "B": 2, "alpha": 0.5,
                                  "beta": 1.0, "delta": 0.0}, "r2": 0.99}))
    assert PlanningLaw.from_json(nested).B == 2
    under_constants = tmp_path / "c.json"
    under_constants.write_text(json.dumps({"constants": {"A": 1, "B": 2, "alpha": 0.5,
                                                         "beta": 1.0, "delta": 0.1}}))
    assert PlanningLaw.from_json(under_constants).delta == 0.1
    laws_stage = tmp_path / "laws.json"  # shape written by densescale.laws PlanningLaw.to_dict()
    laws_stage.write_text(json.dumps({"law": "joint", "A": 3.6e4, "B": 7.1e3, "alpha": 0.56,
                                      "beta": 1.31, "delta": 0.03, "n_min": 5e5, "n_max": 8.6e7,
                                      "d_min": float("nan"), "d_max": 5e5, "r2": 0.99,
                                      "params": {"bootstrap": 100, "alpha": 0.05}}))
    law = PlanningLaw.from_json(laws_stage)
    assert (law.alpha, law.n_max, law.d_min) == (0.56, 8.6e7, None)
    wrong = tmp_path / "model.json"
    wrong.write_text(json.dumps({"law": "model", "A": 1, "alpha": 0.5, "delta": 0.0}))
    with pytest.raises(DataError, match="joint"):
        PlanningLaw.from_json(wrong)
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps({"A": 1, "B": 2}))
    with pytest.raises(DataError, match="alpha, beta, delta"):
        PlanningLaw.from_json(missing)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="bad.json"):
        PlanningLaw.from_json(bad)
    with pytest.raises(DataError, match="not found"):
        PlanningLaw.from_json(tmp_path / "nope.json")


def test_a_non_finite_optimum_is_an_error():
    from densescale.budget.optimise import _allocation

    law = PlanningLaw.preset("v2")
    cost = CostModel.from_assumptions()
    with pytest.raises(DenseScaleError, match="no finite optimum"):
        _allocation(law, cost, math.inf, 1e4, False, [], budget=1e6)
    with pytest.raises(ConfigError, match="outside the law's physical range"):
        PlanningLaw(A=1.0, B=1.0, alpha=0.5, beta=1.0, delta=-5.0)
    with pytest.raises(DenseScaleError, match="overflows"):
        PlanningLaw(A=1e300, B=5e3, alpha=50, beta=1.3, delta=0.03).check_finite(5e5, 1.0)
