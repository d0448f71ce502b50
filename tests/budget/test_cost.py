"""Cost coefficients derived from assumptions reproduce the paper's Eq. 13-15 (Section 6)."""

from __future__ import annotations

import dataclasses

import pytest

from densescale.budget import CostAssumptions, CostModel
from densescale.errors import ConfigError


def test_defaults_reproduce_paper_coefficients_to_three_significant_digits():
    cm = CostModel.from_assumptions()
    assert f"{cm.z_train:.3g}" == "3.22e-08"  # paper Eq. 14
    assert f"{cm.z_infer:.3g}" == "0.43"  # paper Eq. 15 (0.42995 -> 0.430)
    assert cm.z_train == pytest.approx(3.22e-8, rel=5e-3)
    assert cm.z_infer == pytest.approx(0.43, rel=5e-3)
    assert cm.z_data == 0.6
    assert cm.z_query == 0.0
    # the exact arithmetic of the paper's Section 6
    assert cm.z_train == pytest.approx(10000 * 150 * 256 * 6 * 3.93 / (312e12 * 3600 * 0.25))
    assert cm.z_infer == pytest.approx(30e12 * 512 * 2 * 3.93 / (312e12 * 3600 * 0.25))


def test_coefficients_follow_overridden_assumptions():
    base = CostModel.from_assumptions()
    dear = CostModel.from_assumptions(CostAssumptions(gpu_price=3.93 * 2, utilisation=0.5))
    assert dear.z_train == pytest.approx(base.z_train)  # 2x price, 2x utilisation cancel
    longer = CostModel.from_assumptions(CostAssumptions(steps=20_000, negative_tokens=0))
    assert longer.z_train == pytest.approx(base.z_train * 2 * 90 / 150)
    small = CostModel.from_assumptions(CostAssumptions(corpus_docs=8.8e6, doc_tokens=128))
    assert small.z_infer == pytest.approx(base.z_infer * 8.8e6 / 30e12 / 4)


def test_query_volume_term_and_total_cost():
    a = CostAssumptions(queries_per_year=1e12, years=3)
    cm = CostModel.from_assumptions(a)
    expected = 1e12 * 3 * 30 * 2 * 3.93 / (312e12 * 0.25 * 3600)
    assert cm.z_query == pytest.approx(expected)
    assert cm.z_param(inference=True) == pytest.approx(cm.z_train + cm.z_infer + expected)
    assert cm.z_param(inference=False) == cm.z_train
    assert cm.cost(1e6, 100, inference=False) == pytest.approx(60 + 1e6 * cm.z_train)
    assert cm.annotations_affordable(cm.cost(2e6, 500), 2e6) == pytest.approx(500)


@pytest.mark.parametrize("bad", [{"utilisation": 0}, {"utilisation": 1.5}, {"gpu_price": -1},
                                 {"data_cost": 0}, {"peak_flops": float("nan")}])
def test_invalid_assumptions_raise(bad):
    with pytest.raises(ConfigError):
        CostAssumptions(**bad)


def test_assumptions_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        CostAssumptions().gpu_price = 1.0  # type: ignore[misc]
