"""The demo's study design meets its brief; `demo --scale paper` prints a plan (no training)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pandas as pd

from densescale.demo import DEMO_LADDER, TRAIN_SIZES, check_targets, demo_spec
from densescale.demo.design import BEYOND, SWEEP_RUNG
from densescale.study import expand, parse_spec


def _points(tmp_path, datasets_dir, monkeypatch):
    import yaml

    monkeypatch.setenv("DENSESCALE_DATA_DIR", str(datasets_dir))
    ladder = tmp_path / "ladder.yaml"
    ladder.write_text(yaml.safe_dump({"rungs": DEMO_LADDER}))
    ict = tmp_path / "ict"
    ict.mkdir()
    return expand(parse_spec(demo_spec(tmp_path, ict, ladder), base_dir=tmp_path))


def test_demo_design(tmp_path, datasets_dir, monkeypatch):
    points = _points(tmp_path, datasets_dir, monkeypatch)
    human = [p for p in points if p.annotation == "human" and not p.heldout]
    ns = {p.n for p in human if p.d == max(TRAIN_SIZES)}
    assert len(ns) >= 5 and math.log10(max(ns) / min(ns)) >= 1.5  # model-size sweep
    for ann, need in (("human", 5), ("ict", 4)):  # data sweeps on one rung, >= 1.5 decades
        ds = {p.d for p in points if p.annotation == ann and p.rung == SWEEP_RUNG}
        assert len(ds) >= need and math.log10(max(ds) / min(ds)) >= 1.5
    held = [p for p in points if p.heldout]
    assert len(held) >= 2 and any(p.rung == BEYOND and p.n > max(ns) for p in held)
    seeds = pd.DataFrame([p.as_dict() for p in points]).groupby(["rung", "d", "annotation"])
    assert (seeds["seed"].nunique() >= 2).sum() >= 2
    # the projection is a minority of N on every rung
    for r in DEMO_LADDER:
        proj = r["hidden"] * 128 + 128
        n = next(p.n for p in points if p.rung == r["name"])
        assert proj / n < 0.5, r["name"]


def test_targets_fail_on_points_that_did_not_learn():
    runs = pd.DataFrame([
        {"rung": "a", "n": 1e4, "d": 1e3, "annotation": "human", "seed": 1, "heldout": False,
         "learned": True, "ndcg_at_10": 0.5, "bm25_ndcg_at_10": 0.8},
        {"rung": "b", "n": 1e5, "d": 1e3, "annotation": "human", "seed": 1, "heldout": False,
         "learned": False, "ndcg_at_10": 0.3, "bm25_ndcg_at_10": 0.8},
    ])
    summary = {"laws": {"model": {"fit": {"r2": 0.99, "r2_log": 0.99}, "excluded": [{}]}}}
    got = {t.name: t for t in check_targets(summary, runs)}
    assert not got["every fitted point learned"].met
    assert got["best nDCG@10 >= half of BM25"].met  # 0.5 >= 0.4
    assert not got["L(N) span and fit"].met  # one decade only
    assert not got["points under two seeds"].met


def test_demo_paper_scale_plan():
    out = subprocess.run([sys.executable, "-m", "densescale", "demo", "--scale", "paper",
                          "--json"], capture_output=True, text=True, check=True).stdout
    plan = json.loads(out)
    assert plan["gpu_hours"] > 0 and plan["dollars"] > 0
    assert any("--executor ray" in c for c in plan["commands"])
    assert {r["rung"] for r in plan["runs"]} >= {"bert-tiny", "bert-base"}


def test_every_target_is_promised_by_one_configuration():
    """The miniature and --full each promise what they were measured to meet; together they
    cover every target, and neither promises one it missed (see demo/targets.py)."""
    from densescale.demo.targets import ALL_TARGETS, FULL_TARGETS, MINI_TARGETS

    assert set(MINI_TARGETS) | set(FULL_TARGETS) == set(ALL_TARGETS)
    assert "L(D) span and fit" not in MINI_TARGETS
    assert "joint law predicts held-out points" not in FULL_TARGETS
