"""Report polish (issue 15): the summary box, chance and BM25 lines, tables that scroll in their
own box, formatted intervals, per-run links, and the paper's constants beside the fitted ones.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from densescale.report import make_report
from densescale.report.html import Section, interval
from densescale.report.runs import run_href

NS = [512_128, 3_422_208, 13_266_176, 25_875_712, 86_235_648]
DS = [1e3, 1e4, 1e5, 5e5]
CHANCE = math.log(257)


def _joint(n, d):
    return ((3.6e4 / n) ** (0.56 / 1.31) + 7.1e3 / d) ** 1.31 + 0.03


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A study folder with run folders (summary.json in all but one), the results CSV, and the
    report written next to it (``<study>/report``)."""
    root = tmp_path_factory.mktemp("study")
    rng = np.random.default_rng(3)
    rows = []
    for n in NS:
        for d in DS:
            ce = _joint(n, d) * (1 + 0.01 * rng.standard_normal())
            run = root / "runs" / f"n{n}-d{int(d)}"
            run.mkdir(parents=True)
            if (n, d) != (NS[0], DS[0]):
                (run / "summary.json").write_text("{}")
            rows.append(dict(
                rung=f"n{n}", n=n, d=d, annotation="human", seed=1, status="done",
                contrastive_entropy=ce, heldout=(n, d) == (NS[1], DS[1]), learned=True,
                chance=CHANCE, artefact_dir=str(run), wall_time_s=12.5 * n / 1e6,
                **{"ndcg_at_10": 0.7 - 0.1 * ce, "recall_at_100": 0.9 - 0.05 * ce,
                   "recall_at_1000": 0.97, "map": 0.5 - 0.1 * ce, "bm25_ndcg_at_10": 0.55}))
    rows.append(dict(rung="n512128", n=NS[0], d=100.0, annotation="human", seed=1,
                     status="done", contrastive_entropy=7.0, heldout=False, learned=False,
                     invalid_reason="not below chance ln(257)=5.549", chance=CHANCE,
                     artefact_dir=str(root / "runs" / "bad"), **{"ndcg_at_10": 0.9,
                                                                 "bm25_ndcg_at_10": 0.55}))
    pd.DataFrame(rows).to_csv(root / "results.csv", index=False)
    s = make_report(root / "results.csv", root / "report", bootstrap=20)
    return root, s, Path(s["html"]).read_text()


def test_summary_box_comes_first_with_laws_heldout_bm25_and_learned(study):
    _, s, html = study
    h = s["headline"]
    assert set(h["laws"]) >= {"model", "data", "joint"}
    assert h["laws"]["joint"]["r2"] > 0.99 and h["laws"]["joint"]["r2_log"] > 0.99
    assert h["joint_heldout"]["n_heldout"] == 1
    assert h["joint_heldout"]["mean_rel_error"] == s["laws"]["joint"]["holdout"][
        "mean_rel_error"]
    # the not-learned run has the highest nDCG@10 but is not the best model
    assert h["best"]["ndcg_at_10"] == pytest.approx(0.7 - 0.1 * min(
        r["ce"] for r in _learned_ce(study)))
    assert h["best"]["bm25_ndcg_at_10"] == 0.55
    assert h["runs"] == {"finished": 21, "of": 21, "learned": 20, "not_learned": 1,
                         "unknown": 0}
    body = html[html.index("<body>"):]
    box = re.search(r'<div class="summary"><h2>Summary</h2>(.*?)</div>', body)
    assert box and body.index('<div class="summary">') < body.index("<h2>Validity")
    text = box.group(1)
    for needle in ("Joint law L(N,D): A = ", "R² ", "(log)", "held-out point",
                   "BM25 0.5500 on the same queries and pool", "20 of 21 finished runs learned"):
        assert needle in text, needle


def _learned_ce(study):
    root, _, _ = study
    df = pd.read_csv(root / "results.csv")
    return [{"ce": v} for v in df[df["learned"]]["contrastive_entropy"]]


def test_chance_and_bm25_lines_are_drawn(study):
    _, s, html = study
    assert s["overlays"]["chance"] == [{"W": 256.0, "chance": pytest.approx(CHANCE)}]
    assert s["overlays"]["bm25_ndcg_at_10"] == [0.55]
    names = {Path(p).name for p in s["figures"]}
    assert {"ce_vs_n_chance.png", "ce_vs_d_chance.png", "ndcg_at_10_vs_bm25.png"} <= names
    assert "dashed: chance ln(W+1)" in html and "dashed: BM25 on the same queries" in html
    assert "<th>CE (W=256)</th>" in html  # W read back from the chance column


def test_intervals_are_formatted_never_raw_lists(study):
    _, s, html = study
    assert interval(3360.541780344849, 3723.4368899378965) == "[3.36e+03, 3.72e+03]"
    assert interval(0.123456, None) == ""
    cells = re.findall(r"<td>(\[[^<]*\])</td>", html)
    assert cells, "no interval cells"
    for c in cells:
        assert re.fullmatch(r"\[-?[\d.e+-]+, -?[\d.e+-]+\]", c), c
        assert all(len(re.sub(r"e.*|[-.]", "", x).lstrip("0")) <= 3 for x in
                   c.strip("[]").split(", ")), c
    lo, hi = s["laws"]["joint"]["fit"]["ci"]["alpha"]
    assert interval(lo, hi) in html
    sec = Section("t").table(pd.DataFrame({"ci": [[0.123456, 7.891011]]}))
    assert "<td>[0.123, 7.89]</td>" in sec.parts[0]


def test_tables_sit_in_a_scrolling_box(study):
    _, _, html = study
    assert html.count("<table") == html.count('<div class="tablewrap"><table')
    assert re.search(r"\.tablewrap\{[^}]*overflow-x:auto", html)


def test_run_rows_link_folder_and_summary(study, tmp_path):
    root, _, html = study
    run = root / "runs" / f"n{NS[2]}-d{int(DS[2])}"
    rel = f"../runs/n{NS[2]}-d{int(DS[2])}"
    assert f'<a href="{rel}/">folder</a>' in html
    assert f'<a href="{rel}/summary.json">summary.json</a>' in html
    assert f'<a href="../runs/n{NS[0]}-d{int(DS[0])}/">folder</a> · no summary.json' in html
    assert run_href(run, root / "report") == rel
    assert run_href(run, tmp_path / "elsewhere") == run.resolve().as_uri()
    assert (root / "report" / rel / "summary.json").resolve().exists()


def test_paper_constants_beside_the_fitted_ones(study):
    _, s, html = study
    paper = re.findall(r'<tr class="paper">(.*?)</tr>', html)
    joined = " ".join(paper)
    for needle in ("4.54e+04", "0.46", "3.22e+04", "0.53", "0.0237", "0.19",
                   "8.2e+05", "5200", "1.39", "0.56", "1.31"):
        assert needle in joined, needle
    assert all("MS MARCO" in row for row in paper) and len(paper) == 6
    assert html.count("A different dataset and scale") == 3
    assert "third-party notes" in joined


def test_runs_table_fits_or_scrolls_at_1280px(study, tmp_path):
    from playwright.sync_api import sync_playwright

    _, s, _ = study
    exe = os.environ.get("DENSESCALE_CHROMIUM") or shutil.which("chromium") or None
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(Path(s["html"]).as_uri())
        page.wait_for_load_state("load")
        doc_width = page.evaluate("document.documentElement.scrollWidth")
        last = page.evaluate("""() => {
            const h = [...document.querySelectorAll('h2')].find(e => e.textContent
                .startsWith('Runs'));
            let w = h.nextElementSibling;
            while (w && !w.classList.contains('tablewrap')) w = w.nextElementSibling;
            w.scrollLeft = w.scrollWidth;
            const ths = [...w.querySelectorAll('th')].map(t => t.textContent);
            const r = w.querySelectorAll('th')[ths.length - 1].getBoundingClientRect();
            return {ths, right: r.right, left: r.left};
        }""")
        browser.close()
    assert doc_width <= 1280
    assert {"MAP", "Recall@100", "Recall@1000", "wall_time_s"} <= set(last["ths"])
    assert 0 <= last["left"] and last["right"] <= 1280  # reachable by scrolling its box
    json.dumps(s["headline"], allow_nan=False)
