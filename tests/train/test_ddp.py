from __future__ import annotations

import json
import os
import subprocess
import sys


def test_ddp_two_cpu_processes_gloo(toy_dataset, tmp_path):
    """torchrun with 2 CPU processes (gloo): sharded batch, all-gathered negatives, one output."""
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "densescale", "train", "--data", str(toy_dataset), "--model", "bert-tiny",
           "--vocab-size", "200", "--steps", "2", "--batch-size", "8", "--negatives", "8",
           "--passage-max-len", "16", "--query-max-len", "12", "--eval-every", "0",
           "--selection-negatives", "8", "--gather-negatives", "--device", "cpu", "--out", str(out),
           "--json", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((out / "summary.json").read_text())
    assert s["finished"] and s["steps_done"] == 2 and s["last_ce"] is not None
    assert (out / "last" / "2_Dense" / "model.safetensors").exists()


def test_ddp_divergence_stops_every_rank(toy_dataset, tmp_path):
    """lr = 1e30 under torchrun: both ranks stop with one TrainingDiverged error, no hang."""
    out = tmp_path / "div"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "densescale", "train", "--data", str(toy_dataset), "--model", "bert-tiny",
           "--vocab-size", "200", "--steps", "6", "--batch-size", "8", "--negatives", "8",
           "--passage-max-len", "16", "--query-max-len", "12", "--eval-every", "0",
           "--no-eval-at-start", "--lr", "1e30", "--progress-every", "3", "--device", "cpu",
           "--out", str(out), "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode != 0
    assert "step 2: training loss is not finite" in r.stderr, r.stderr[-3000:]
    assert not (out / "summary.json").exists()
