"""The demo's study design meets its brief; `demo --scale paper` prints a plan (no training)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

from densescale.demo import DEMO_LADDER, TRAIN_SIZES, demo_spec
from densescale.study import expand, parse_spec


def test_demo_design(tmp_path, datasets_dir, monkeypatch):
    import yaml

    monkeypatch.setenv("DENSESCALE_DATA_DIR", str(datasets_dir))
    ladder = tmp_path / "ladder.yaml"
    ladder.write_text(yaml.safe_dump({"rungs": DEMO_LADDER}))
    ict = tmp_path / "ict"
    ict.mkdir()
    spec = parse_spec(demo_spec(tmp_path, ict, ladder), base_dir=tmp_path)
    points = expand(spec)
    human = [p for p in points if p.annotation == "human"]
    ns = {p.n for p in human if p.d == max(TRAIN_SIZES)}
    assert len(ns) >= 5 and math.log10(max(ns) / min(ns)) >= 1.5  # model-size sweep
    largest = max(DEMO_LADDER, key=lambda r: r["hidden"] * r["layers"])["name"]
    for ann in ("human", "ict"):  # data-size sweeps, 2 orders of magnitude
        ds = {p.d for p in points if p.annotation == ann and p.rung == largest}
        assert len(ds) >= 5 and math.log10(max(ds) / min(ds)) >= 2
    held = [p for p in points if p.heldout]
    assert held and all(p.rung != largest for p in held)
    assert len(points) == len({p.key for p in points}) == 16


def test_demo_paper_scale_plan():
    out = subprocess.run([sys.executable, "-m", "densescale", "demo", "--scale", "paper",
                          "--json"], capture_output=True, text=True, check=True).stdout
    plan = json.loads(out)
    assert plan["gpu_hours"] > 0 and plan["dollars"] > 0
    assert any("--executor ray" in c for c in plan["commands"])
    assert {r["rung"] for r in plan["runs"]} >= {"bert-tiny", "bert-base"}
