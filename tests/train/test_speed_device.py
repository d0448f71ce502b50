"""Device checks: the packed step, training and contrastive entropy on ``DENSESCALE_TEST_DEVICE``.

On CPU (the default, and in CI) they run on CPU; bench/gpu_check.sh runs this file with
``DENSESCALE_TEST_DEVICE=cuda`` on a GPU machine (no skip markers: the device is chosen by the
caller, each test runs wherever it is pointed).
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

from densescale.models.encoder import build_model, pad_batch
from densescale.models.packed import pack, packed_embed, set_dropout
from densescale.train import TrainConfig, train

TINY = {"name": "toy", "layers": 2, "hidden": 64, "heads": 2, "intermediate": 128}


@pytest.fixture(scope="module")
def device() -> torch.device:
    dev = torch.device(os.environ.get("DENSESCALE_TEST_DEVICE", "cpu"))
    if dev.type == "cuda":
        assert torch.cuda.is_available(), "DENSESCALE_TEST_DEVICE=cuda but no CUDA device"
    return dev


@pytest.mark.parametrize("bf16", [False, True])
def test_packed_matches_padded_on_device(device, bf16):
    rng = np.random.default_rng(0)
    seqs = [list(rng.integers(1, 300, rng.integers(2, 50))) for _ in range(40)]
    m = build_model(TINY, init="scratch", seed=3, vocab_size=300).to(device)
    m.train()
    set_dropout(m, False)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        a = m.embed(pad_batch(seqs, 0, device)).float()
        b = packed_embed(m, pack(seqs, attn_rows=16).to(device)).float()
    tol = 3e-2 if bf16 else 1e-4
    torch.testing.assert_close(a, b, rtol=tol, atol=tol * float(a.abs().max()))
    assert b.device.type == device.type and torch.isfinite(b).all()


def test_train_on_device_learns_and_reports_mfu(device, toy_dataset, tmp_path):
    cfg = TrainConfig(data=str(toy_dataset), model=TINY, init="scratch", vocab_size=200,
                      steps=30, batch_size=16, negatives=16, query_max_len=16,
                      passage_max_len=24, lr=2e-3, eval_every=15, seed=5, out=str(tmp_path),
                      device=str(device), selection={"negatives": 16, "max_pairs": 50},
                      progress_every=1)
    s = train(cfg, progress=False)
    losses = [h["loss"] for h in s.history if h["loss"] is not None]
    assert all(math.isfinite(x) for x in losses) and np.mean(losses[-5:]) < np.mean(losses[:5])
    assert s.model_flops_per_step > 0 and 0 < s.mfu < 1
    assert ("datasheet" in s.peak_source or "measured" in s.peak_source)
    assert s.hardware and s.best_ce is not None and math.isfinite(s.best_ce)
