"""The demo itself, end to end on SQuAD (slow: about 14 minutes on an idle 2-core machine).

Runs `densescale demo --json` once and asserts, on its actual output, the targets that make its
laws trustworthy (densescale.demo.targets): every fitted point learned, L(N) and L(D) span 1.5
decades with R² >= 0.98 on both scales, the joint law predicts held-out points (one beyond the
fitted N range) within 5%, two points under two seeds, and ICT has a law or is reported as not
transferring. The report exists and says which contrastive entropy the laws use.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from densescale.demo.targets import MINI_TARGETS


@pytest.fixture(scope="module")
def demo_summary(tmp_path_factory, datasets_dir):
    out = tmp_path_factory.mktemp("demo") / "demo_out"
    env = {**os.environ, "DENSESCALE_DATA_DIR": str(datasets_dir)}
    proc = subprocess.run([sys.executable, "-m", "densescale", "demo", "--out", str(out),
                           "--json"], capture_output=True, text=True, env=env, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_demo_meets_its_targets(demo_summary):
    targets = {t["name"]: t for t in demo_summary["targets"]}
    assert set(MINI_TARGETS) <= set(targets)
    missed = [f"{n}: {targets[n]['value']} (goal {targets[n]['goal']})" for n in MINI_TARGETS
              if not targets[n]["met"]]
    assert not missed, missed


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_demo_report_names_its_metric_and_points(demo_summary):
    html = open(demo_summary["html"], encoding="utf-8").read()
    assert "calibrated" in html and "BM25" in html
    assert demo_summary["metric"] == "contrastive_entropy_calibrated"
    assert not demo_summary["errors"].get("model") and not demo_summary["errors"].get("data")
