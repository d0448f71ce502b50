"""bench/gpu_check.sh --dry-run: the whole prepared GPU check end to end on CPU, tiny shapes."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi "
         "rho sigma tau upsilon phi chi psi omega river mountain city music science").split()


def _toy(d: Path) -> Path:
    rng = random.Random(0)
    (d / "qrels").mkdir(parents=True)
    docs, queries, train, test = [], [], [], []
    for i in range(200):
        words = rng.sample(WORDS, 6) + [f"w{i}", f"v{i}"]
        docs.append({"_id": f"d{i}", "title": "", "text": " ".join(words)})
        queries.append({"_id": f"q{i}", "text": " ".join(words[:2] + [f"w{i}"])})
        (test if i % 4 == 0 else train).append(f"q{i}\td{i}\t1")
    (d / "corpus.jsonl").write_text("\n".join(json.dumps(x) for x in docs) + "\n")
    (d / "queries.jsonl").write_text("\n".join(json.dumps(x) for x in queries) + "\n")
    head = "query-id\tcorpus-id\tscore\n"
    (d / "qrels" / "train.tsv").write_text(head + "\n".join(train) + "\n")
    (d / "qrels" / "test.tsv").write_text(head + "\n".join(test) + "\n")
    return d


def test_gpu_check_dry_run_end_to_end(tmp_path):
    data = _toy(tmp_path / "toy")
    out = tmp_path / "out"
    r = subprocess.run(["bash", str(REPO / "bench" / "gpu_check.sh"), "--dry-run", "--out",
                        str(out), "--data", str(data)], cwd=REPO, capture_output=True,
                       text=True, timeout=600)
    res = json.loads((out / "gpu_check.json").read_text())
    log = (out / "gpu_check.log").read_text()
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-3000:], json.dumps(res)[-3000:])
    assert res["ok"] and res["dry_run"] and res["device"] == "cpu"
    steps = res["steps"]
    assert list(steps) == ["tests", "train", "torchrun", "entropy", "cpu_vs_device"]
    assert "passed" in steps["tests"]["summary"] and "failed" not in steps["tests"]["summary"]
    assert steps["train"]["steps"] == 5 and 0 < steps["train"]["mfu"] < 1
    assert steps["train"]["packed_speedup"] > 0
    assert steps["torchrun"]["backend"] == "gloo" and steps["torchrun"]["steps"] == 5
    assert steps["entropy"]["passages_per_s"] > 0 and steps["entropy"]["pairs"] == 50
    assert steps["cpu_vs_device"]["steps"] == 50
    assert steps["cpu_vs_device"]["max_rel_diff"] <= 1e-3
    assert "done in" in log and "ALL OK" in log
