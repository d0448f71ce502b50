"""The report shows what a reader needs to trust a law: excluded points greyed with their reason,
which contrastive entropy each law uses, the BM25 line, the seed spread beside the residuals,
R² on both scales, leave-one-out errors, and a plain word when an annotation type never learned.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from densescale.report import make_report

NS = [512_128, 3_422_208, 13_266_176, 25_875_712, 86_235_648]
DS = [1e3, 1e4, 1e5, 5e5]
BM25 = {"bm25_ndcg_at_10": 0.5, "bm25_mrr_at_10": 0.45}


def _joint(n, d):
    return ((3.6e4 / n) ** (0.56 / 1.31) + 7.1e3 / d) ** 1.31 + 0.03


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """Human joint-law rows (two seeds at two points), one human point that did not learn, and
    an ICT sweep in which nothing learned; checkpoints chosen on the reported split."""
    rng = np.random.default_rng(1)
    ev = json.dumps({"split": "test", "negatives": 256})
    rows = []
    for n in NS:
        for d in DS:
            for seed in ((1, 2) if (n, d) in ((NS[0], DS[-1]), (NS[2], DS[-1])) else (1,)):
                ce = _joint(n, d) * (1 + 0.01 * rng.standard_normal())
                rows.append(dict(rung=f"n{n}", n=n, d=d, annotation="human", seed=seed,
                                 contrastive_entropy=ce, heldout=False, status="done",
                                 learned=True, selection_split="test", eval_config=ev,
                                 **{"ndcg_at_10": 0.9 - 0.5 * ce}, **BM25))
    rows.append(dict(rung="n512128", n=NS[0], d=200.0, annotation="human", seed=1,
                     contrastive_entropy=36.3, heldout=False, status="done", learned=False,
                     invalid_reason="best 36.3 not below step-0 5.23", selection_split="test",
                     eval_config=ev, **{"ndcg_at_10": 0.001}, **BM25))
    for d in DS:
        rows.append(dict(rung="n86M", n=NS[-1], d=d, annotation="ict", seed=1,
                         contrastive_entropy=9.0, heldout=False, status="done", learned=False,
                         invalid_reason="not below chance ln(257)=5.549",
                         selection_split="test", eval_config=ev, **BM25))
    folder = tmp_path_factory.mktemp("validity")
    pd.DataFrame(rows).to_csv(folder / "r.csv", index=False)
    s = make_report(folder / "r.csv", folder / "rep", bootstrap=0)
    return s, Path(s["html"]).read_text()


def test_excluded_point_is_greyed_with_its_reason(report):
    s, html = report
    grey = re.findall(r'<tr class="excluded">(.*?)</tr>', html)
    assert any("best 36.3 not below step-0 5.23" in row for row in grey)
    assert any("not below chance ln(257)=5.549" in row for row in grey)
    assert not any("n13266176" in row for row in grey)  # learned runs stay plain
    excluded = s["laws"]["joint"]["excluded"]
    assert [p["reason"] for p in excluded] == ["best 36.3 not below step-0 5.23"]
    assert "Left out: 1 point(s) that did not learn" in html


def test_ict_without_learned_points_is_said_plainly(report):
    s, html = report
    assert s["validity"]["no_learned_points"] == ["ict"]
    assert "ict does not transfer at this scale" in html
    # the comparison leaves it out (here one type remains: nothing to compare, and it says so)
    assert "Left out of the comparison: ict" in html
    assert "two annotation types" in s["errors"]["annotations"]


def test_metric_bm25_selection_and_diagnostics_are_shown(report):
    s, html = report
    assert "Fitted on the raw contrastive entropy" in html
    assert "Numbers selected on the reported split" in html
    assert "<th>CE (test, W=256)</th>" in html  # every CE column names its split and W
    ref = re.findall(r'<tr class="reference">(.*?)</tr>', html)
    assert len(ref) == 1 and "BM25 (reference)" in ref[0] and "0.5" in ref[0]
    assert s["ranking"]["bm25"]["ndcg_at_10"] == 0.5
    fit = s["laws"]["joint"]["fit"]
    assert fit["r2"] > 0.99 and fit["r2_log"] > 0.99
    assert "(raw scale)" in html and "(log scale)" in html
    assert "Leave-one-out prediction error: mean" in html
    assert "Residuals and leave-one-out relative errors" in html
    assert any("residuals" in Path(p).name for p in s["figures"])


def test_seed_spread_beside_residuals(report):
    s, html = report
    spread = s["laws"]["joint"]["seed_spread"]
    assert len(spread) == 2 and all(p["seeds"] == 2 for p in spread)
    assert all(p["seed sd"] > 0 and np.isfinite(p["fit residual"]) for p in spread)
    assert "Seed spread beside the fit residuals" in html
    assert len(s["laws"]["model"]["seed_spread"]) == 2  # both at the largest D


def test_report_out_under_a_regular_file_is_one_error_line(tmp_path):
    import subprocess
    import sys

    csv = tmp_path / "r.csv"
    pd.DataFrame([dict(n=n, d=1000, annotation="human", contrastive_entropy=_joint(n, 1000),
                       status="done") for n in NS]).to_csv(csv, index=False)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = subprocess.run([sys.executable, "-m", "densescale", "report", "--results", str(csv),
                          "--out", str(blocker / "rep")], capture_output=True, text=True)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"error: {blocker / 'rep'}" in out.stderr


def test_include_not_learned_fits_them_and_says_so(tmp_path):
    rows = [dict(n=n, d=1000, annotation="human", contrastive_entropy=_joint(n, 1000),
                 status="done", learned=True) for n in NS]
    rows.append(dict(n=NS[0] / 2, d=1000, annotation="human", contrastive_entropy=40.0,
                     status="done", learned=False, invalid_reason="not below chance"))
    pd.DataFrame(rows).to_csv(tmp_path / "r.csv", index=False)
    s = make_report(tmp_path / "r.csv", tmp_path / "a", bootstrap=0)
    assert s["laws"]["model"]["fit"]["n_points"] == 5 and s["laws"]["model"]["excluded"]
    s = make_report(tmp_path / "r.csv", tmp_path / "b", bootstrap=0, include_not_learned=True)
    assert s["laws"]["model"]["fit"]["n_points"] == 6 and not s["laws"]["model"]["excluded"]
    assert "included 1 point(s) that did not learn" in Path(s["html"]).read_text()
    json.loads((tmp_path / "b" / "report.json").read_text(), parse_constant=pytest.fail)
