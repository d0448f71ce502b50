"""Validity guards (not-learned points, too few points, non-finite values) and the fit
diagnostics (LS default, R² on two scales, leave-one-out, leverage, Huber scale, residual plot)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from _laws_synth import BERT_N, MSMARCO_V1_MODEL, model_law, noisy
from typer.testing import CliRunner

from densescale.errors import DataError, DenseScaleError
from densescale.laws import (
    ESTIMATORS,
    DataSizeLaw,
    LeverageWarning,
    ModelSizeLaw,
    ValidityWarning,
    fit_law,
    plots,
)
from densescale.laws.diagnostics import huber_scale

NS = np.array([1e5, 3e5, 1e6, 3e6, 1e7, 3e7])


def _frame(learned=None, reasons=None, y=None) -> pd.DataFrame:
    ce = model_law(NS, **MSMARCO_V1_MODEL) if y is None else np.asarray(y, dtype=float)
    df = pd.DataFrame({"n": NS, "d": 1000.0, "annotation": "human", "y": ce, "sigma": np.nan,
                       "heldout": False, "row": np.arange(2, 2 + len(NS)),
                       "rung": [f"l{i}" for i in range(len(NS))]})
    if learned is not None:
        df["learned"] = pd.Series(learned, dtype=object)
        df["invalid_reason"] = reasons
    df.attrs.update(source="results.csv", metric="y")
    return df


def test_not_learned_points_are_excluded_and_named():
    learned = [False, True, True, True, True, None]
    reasons = ["best 5.61 not below step-0 5.23", None, None, None, None, None]
    with pytest.warns(ValidityWarning) as rec:
        doc = fit_law(_frame(learned, reasons), "model")
    msgs = [str(w.message) for w in rec]
    excl = next(m for m in msgs if m.startswith("excluded 1 point"))
    assert "rung l0" in excl and "n=1e+05" in excl and "d=1000" in excl and "human" in excl
    assert "best 5.61 not below step-0 5.23" in excl and "--include-not-learned" in excl
    assert any("validity unknown for 1 point" in m and "rung l5" in m for m in msgs)
    assert doc["fit"]["n_points"] == 5 and doc["n_rows"] == 5
    assert doc["excluded"] == [{"row": 2, "rung": "l0", "n": 1e5, "d": 1000.0,
                                "annotation": "human", "y": pytest.approx(doc["excluded"][0]["y"]),
                                "reason": "best 5.61 not below step-0 5.23",
                                "label": "rung l0, n=1e+05, d=1000, human (row 2)"}]
    with pytest.warns(ValidityWarning) as rec:
        doc = fit_law(_frame(learned, reasons), "model", include_not_learned=True)
    assert any(str(w.message).startswith("included 1 point") for w in rec)
    assert doc["fit"]["n_points"] == 6 and doc["excluded"] == []
    with pytest.warns(ValidityWarning, match="validity unknown: the results have no 'learned'"):
        fit_law(_frame(), "model")


def test_too_few_valid_points_is_refused():
    learned = [False, False, False, True, True, True]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ValidityWarning)
        with pytest.raises(DenseScaleError, match=r"needs at least 4 valid points .* 3 left.*"
                                                  r"3 point\(s\) were excluded as not learned"):
            fit_law(_frame(learned, ["no"] * 6), "model")
        doc = fit_law(_frame(learned, ["no"] * 6), "model", include_not_learned=True)
        assert doc["fit"]["n_points"] == 6
        joint = pd.concat([_frame([True] * 6), _frame([False] * 6)], ignore_index=True)
        joint.loc[6:, "d"] = 1e4
        joint.attrs.update(source="r.csv", metric="y")
        with pytest.raises(DenseScaleError, match=r"joint law .* at least 6 valid points"):
            fit_law(joint.iloc[[0, 1, 2, 6, 7]].reset_index(drop=True), "joint")
    assert ESTIMATORS["joint"].constants.__len__() + 1 == 6


@pytest.mark.parametrize("bad", [np.nan, np.inf, -1.0])
def test_non_finite_metric_is_an_error_naming_the_row(bad):
    y = model_law(NS, **MSMARCO_V1_MODEL)
    y[3] = bad
    with pytest.raises(DataError, match=r"results.csv:5: y must be a positive finite number.*"
                                        r"rung l3, n=3e\+06"):
        fit_law(_frame(y=y), "model")


def test_least_squares_is_the_default_everywhere():
    for cls in ESTIMATORS.values():
        assert cls().method == "lsq"
    with pytest.warns(ValidityWarning):
        doc = fit_law(_frame(), "model")
    assert doc["method"] == "lsq" and doc["fit"]["method"] == "lsq"
    assert doc["fit"]["huber_delta"] is None


def test_r2_on_raw_and_log_scale_and_exact_loo():
    y = model_law(BERT_N, **MSMARCO_V1_MODEL)
    law = ModelSizeLaw().fit(BERT_N, y)
    assert law.r2_ == pytest.approx(1.0, abs=1e-9) and law.r2_log_ == pytest.approx(1.0, abs=1e-9)
    loo = law.to_dict()["loo"]
    assert loo["n_predicted"] == len(BERT_N) and loo["max_abs_rel_error"] < 1e-5
    noisy_y, _ = noisy(y, 0.02, seed=3)
    law = ModelSizeLaw().fit(BERT_N, noisy_y)
    pred = law.predict(BERT_N)
    ly, lp = np.log(noisy_y), np.log(pred)
    want = 1 - np.sum((ly - lp) ** 2) / np.sum((ly - ly.mean()) ** 2)
    assert law.r2_log_ == pytest.approx(want, rel=1e-12) and law.r2_log_ != law.r2_
    errs = np.array([p["rel_error"] for p in law.to_dict()["loo"]["points"]])
    assert 0.002 < np.mean(np.abs(errs)) < 0.1                 # real prediction errors


def test_huber_scale_comes_from_the_data():
    y, _ = noisy(model_law(BERT_N, **MSMARCO_V1_MODEL), 0.01, seed=0)
    ls = ModelSizeLaw().fit(BERT_N, y)
    law = ModelSizeLaw(method="huber").fit(BERT_N, y)
    want = huber_scale(np.log(ls.predict(BERT_N)) - np.log(y))
    assert law.huber_delta_ == pytest.approx(want, rel=1e-6)
    assert 0.004 < law.huber_delta_ < 0.04                    # ~1.345 x 1% noise, not 1e-3
    assert law.to_dict()["huber_delta"] == law.huber_delta_
    assert ModelSizeLaw(method="huber", huber_delta=0.05).fit(BERT_N, y).huber_delta_ == 0.05
    assert huber_scale(np.zeros(5)) == 1e-4


@pytest.mark.filterwarnings("ignore::densescale.laws.BoundaryWarning")
def test_one_point_carrying_r2_warns():
    d = np.array([64, 200, 640, 2000, 6400.0])
    y = np.array([36.3, 5.0, 5.6, 5.1, 5.5])                  # the rest is flat noise
    with pytest.warns(LeverageWarning, match=r"d=64 holds 80% of the total sum of squares"):
        law = DataSizeLaw().fit(d, y)
    assert law.r2_ > 0.95 and law.leverage_[0]["r2_without"] < law.r2_ - 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("error", LeverageWarning)        # the paper's Fig. 1: no warning
        ModelSizeLaw().fit(BERT_N, model_law(BERT_N, **MSMARCO_V1_MODEL))


def test_residual_plot(tmp_path):
    y, _ = noisy(model_law(BERT_N, **MSMARCO_V1_MODEL), 0.01, seed=0)
    law = ModelSizeLaw().fit(BERT_N, y)
    paths = plots.plot_residuals(law, tmp_path, stem="res")
    assert [p.name for p in paths] == ["res.png", "res.svg"]
    assert paths[0].read_bytes()[:4] == b"\x89PNG" and paths[0].stat().st_size > 5000


def test_cli_json_and_flag(tmp_path):
    from densescale.cli import app

    reasons = ["not below chance ln(257)=5.549"] + [""] * 5
    df = _frame([False, True, True, True, True, True], reasons)
    df = df.rename(columns={"y": "contrastive_entropy"}).drop(columns=["sigma", "row"])
    df.to_csv(tmp_path / "r.csv", index=False)
    args = ["fit", "--results", str(tmp_path / "r.csv"), "--law", "model", "--json"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["method"] == "lsq" and doc["fit"]["n_points"] == 5
    assert doc["excluded"][0]["reason"] == "not below chance ln(257)=5.549"
    assert doc["excluded"][0]["row"] == 2 and "rung l0" in res.stderr
    for k in ("r2", "r2_log", "loo", "leverage", "residuals"):
        assert k in doc["fit"]
    assert len(doc["fit"]["loo"]["points"]) == 5
    res = CliRunner().invoke(app, [*args, "--include-not-learned"])
    assert res.exit_code == 0 and json.loads(res.stdout)["fit"]["n_points"] == 6
    assert "included 1 point" in res.stderr


def test_fit_document_is_strict_json():
    from pathlib import Path

    from densescale.laws.api import json_safe

    doc = {"r2": float("nan"), "x": [np.float64(np.inf), np.int64(3)], "p": Path("a/b")}
    assert json.dumps(json_safe(doc), allow_nan=False) == '{"r2": null, "x": [null, 3], "p": "a/b"}'


def test_laws_never_import_the_study():
    import subprocess
    import sys

    code = ("import sys, densescale.laws, densescale.laws.api, densescale.budget; "
            "print(sorted(m for m in sys.modules if m.startswith('densescale.study')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
