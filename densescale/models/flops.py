"""Model FLOPs of a bi-encoder and the hardware peak they are compared with (MFU).

Model FLOPs count the useful work only (true token counts, no padding, Kaplan-style): for each
sequence of length L through a BERT encoder with hidden size H, feed-forward size I and
``layers`` layers,

    forward = layers * (2 * L * (4 H^2 + 2 H I)   # Q, K, V, attention output, feed-forward
                        + 4 * L^2 * H)            # Q K^T and attention x V
              + 2 * H * proj_dim                  # the projection of the pooled vector

embeddings, LayerNorm, activations and the (unused) pooler excluded; a training step is
forward + backward = 3 x forward, over queries, positives and negatives. MFU is achieved model
FLOP/s over the peak: on CPU a large matmul timed in the same process (fp32, or bf16 under
bf16 autocast), on CUDA the device's dense bf16 peak from its datasheet (measured when the
device is not in the table).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

# dense (no sparsity) bf16 tensor-core peaks, FLOP/s, from the vendors' datasheets
BF16_PEAKS = {"H200": 989.4e12, "H100 SXM": 989.4e12, "H100 80GB HBM3": 989.4e12,
              "H100 NVL": 835.0e12, "H100 PCIe": 756.0e12, "H100": 989.4e12,
              "A100": 312.0e12, "L40S": 362.1e12, "L4": 121.0e12, "A10": 125.0e12}

_PEAKS: dict[tuple, float] = {}


def encoder_shape(encoder: Any) -> tuple[int, int, int]:
    """(layers, hidden, intermediate) of a Hugging Face encoder's config."""
    cfg = encoder.config
    return cfg.num_hidden_layers, cfg.hidden_size, cfg.intermediate_size


def forward_flops(lengths: np.ndarray, layers: int, hidden: int, intermediate: int,
                  proj_dim: int = 768) -> float:
    """Forward model FLOPs of encoding sequences of the given true ``lengths`` (formula above)."""
    lengths = np.asarray(lengths, dtype=np.float64)
    h, i = float(hidden), float(intermediate)
    per_layer = 2.0 * lengths.sum() * (4 * h * h + 2 * h * i) + 4.0 * (lengths ** 2).sum() * h
    return layers * per_layer + 2.0 * h * proj_dim * len(lengths)


def train_flops(lengths: np.ndarray, layers: int, hidden: int, intermediate: int,
                proj_dim: int = 768) -> float:
    """Forward + backward (3 x forward) model FLOPs of one training step's sequences."""
    return 3.0 * forward_flops(lengths, layers, hidden, intermediate, proj_dim)


def measure_matmul_peak(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                        n: int = 2048, seconds: float = 0.4) -> float:
    """Best FLOP/s of an n x n x n matmul on ``device`` (current torch threads), cached."""
    dev = torch.device(device)
    key = (str(dev), dtype, n, torch.get_num_threads())
    if key in _PEAKS:
        return _PEAKS[key]
    a = torch.randn(n, n, device=dev).to(dtype)
    b = torch.randn(n, n, device=dev).to(dtype)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    a @ b  # warm-up
    sync()
    best, t_end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < t_end or best == float("inf"):
        t = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - t)
    _PEAKS[key] = 2.0 * n ** 3 / best
    return _PEAKS[key]


def peak_flops(device: torch.device | str, bf16: bool) -> tuple[float, str]:
    """(peak FLOP/s, where it comes from) to divide achieved model FLOP/s by.

    CUDA: the datasheet dense bf16 peak of the device (``BF16_PEAKS``), else a measured bf16
    matmul. CPU: a measured 2048^3 matmul in fp32 (bf16 when training under bf16 autocast)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        name = torch.cuda.get_device_name(dev)
        for key, value in BF16_PEAKS.items():
            if key in name:
                return value, f"datasheet bf16 dense peak of {name}"
        return (measure_matmul_peak(dev, torch.bfloat16, 8192),
                f"measured bf16 8192^3 matmul on {name}")
    dtype = torch.bfloat16 if bf16 else torch.float32
    name = "bf16" if bf16 else "fp32"
    return (measure_matmul_peak(dev, dtype),
            f"measured {name} 2048^3 matmul, {torch.get_num_threads()} CPU thread(s)")
