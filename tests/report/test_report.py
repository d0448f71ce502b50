"""The HTML report renders in headless Chromium with no console errors and no broken images."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from densescale.errors import DenseScaleError
from densescale.report import make_report

# make passes its Chromium as DENSESCALE_CHROMIUM; None = Playwright's own browser
CHROMIUM = os.environ.get("DENSESCALE_CHROMIUM") or shutil.which("chromium") or None
# The five named BERT miniatures and a data ladder (Fang et al., Scaling Laws for Dense
# Retrieval, SIGIR 2024, Section 4.1).
NS = [512_128, 3_422_208, 13_266_176, 25_875_712, 86_235_648]
DS = [1e3, 1e4, 1e5, 5e5]


def _joint_v2(n, d):
    return ((3.6e4 / n) ** (0.56 / 1.31) + 7.1e3 / d) ** 1.31 + 0.03


@pytest.fixture(scope="module")
def results_csv(tmp_path_factory) -> Path:
    """Rows from the paper's v2 joint law with 1% noise, an ICT curve and ranking metrics."""
    rng = np.random.default_rng(0)
    rows = []
    for n in NS:
        for d in DS:
            ce = _joint_v2(n, d) * (1 + 0.01 * rng.standard_normal())
            rows.append(dict(rung=f"n{n}", n=n, d=d, annotation="human", contrastive_entropy=ce,
                             contrastive_entropy_stderr=0.002, heldout=(n == NS[1] and d == DS[1]),
                             status="done", **{"ndcg_at_10": 0.9 - 0.5 * ce, "recall_at_100":
                                               1.0 - 0.3 * ce + 0.01 * rng.standard_normal()}))
    for d in DS:
        rows.append(dict(rung="n86M", n=NS[-1], d=d, annotation="ict",
                         contrastive_entropy=2 * (7e3 / d) ** 0.3 + 0.1, heldout=False,
                         status="done"))
    path = tmp_path_factory.mktemp("results") / "results.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_report_contents(results_csv, tmp_path):
    s = make_report(results_csv, tmp_path / "rep", bootstrap=40)
    html = Path(s["html"]).read_text()
    for needle in ("Model-size law", "Joint law", "Held-out validation", "Annotation quality",
                   "Budget", "data:image/png;base64,"):
        assert needle in html, needle
    assert set(s["laws"]) == {"model", "data", "joint", "annotations"}
    assert s["laws"]["joint"]["fit"]["r2"] > 0.99
    assert s["budget"], "budget optimum missing"
    assert html.count("<img") == len(s["figures"])
    for png in s["figures"]:
        assert Path(png).with_suffix(".svg").exists()
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["n_runs"] == 24


def test_report_renders_in_chromium(results_csv, tmp_path):
    from playwright.sync_api import sync_playwright

    s = make_report(results_csv, tmp_path / "rep", bootstrap=20)
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(Path(s["html"]).as_uri())
        page.wait_for_load_state("load")
        broken = page.evaluate(
            "Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)"
            ".map(i => i.alt)")
        n_images = page.evaluate("document.images.length")
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert errors == []
    assert broken == []
    assert n_images >= 6
    assert shot.stat().st_size > 10_000


def test_report_without_finished_runs_is_an_error(tmp_path):
    path = tmp_path / "r.csv"
    pd.DataFrame([dict(n=1, d=1, annotation="human", contrastive_entropy=1.0,
                       status="failed")]).to_csv(path, index=False)
    with pytest.raises(DenseScaleError, match="no finished runs"):
        make_report(path, tmp_path / "rep")


def test_report_names_laws_it_cannot_fit(tmp_path):
    path = tmp_path / "r.csv"
    pd.DataFrame([dict(n=n, d=1000, annotation="human", contrastive_entropy=_joint_v2(n, 1000),
                       status="done") for n in NS[:2]]).to_csv(path, index=False)
    s = make_report(path, tmp_path / "rep", bootstrap=0)
    assert "model" in s["errors"] and "points" in s["errors"]["model"]
    assert "Not fitted" in Path(s["html"]).read_text()


def test_holdout_largest_n_applies_to_every_law_it_can(results_csv, tmp_path):
    """--holdout largest-n holds out the largest N in the joint and the model-size law; the
    data-size law (one N) cannot hold out along N and the report says why."""
    s = make_report(results_csv, tmp_path / "rep", bootstrap=0, holdout="largest-n")
    laws = s["laws"]
    assert laws["joint"]["holdout"]["n_heldout"] == len(DS)       # every D at the largest N
    assert laws["model"]["holdout"]["n_heldout"] == 1              # the largest N of its sweep
    assert laws["model"]["holdout"]["mean_rel_error"] < 0.1
    assert not laws["data"].get("holdout") and "share one N" in laws["data"]["holdout_note"]
    h = s["headline"]["heldout"]
    assert set(h) == {"model", "joint"} and s["headline"]["joint_heldout"] == h["joint"]
    html = Path(s["html"]).read_text()
    assert "No held-out validation: --holdout largest-n holds out the largest N, but the " \
           "points of the data-size law share one N" in html          # ... and the page says why
    assert "Model-size law L(N) on 1 held-out point(s)" in html
