"""Synthetic points from the paper's published laws (Fang et al., SIGIR 2024, Sections 4-6)."""

from __future__ import annotations

import itertools

import numpy as np

# 24 Google BERT miniatures: layers x hidden, FFN 4H; non-embedding params counted as in the
# authors' code (encoder layers + pooler + H->768 projection): 12H^2 + 13H per layer.
LAYERS = (2, 4, 6, 8, 10, 12)
HIDDEN = (128, 256, 512, 768)


def bert_non_embedding(layers: int, hidden: int) -> int:
    h = hidden
    return layers * (12 * h * h + 13 * h) + (h * h + h) + (h * 768 + 768)


BERT_N = np.array(sorted(bert_non_embedding(L, H) for L, H in itertools.product(LAYERS, HIDDEN)),
                  dtype=float)
NAMED_N = np.array([512128, 3422208, 13266176, 25875712, 86235648], dtype=float)
FIG1_CE = np.array([0.3148, 0.1443, 0.0891, 0.0732, 0.0586])   # authors' plot.py values
D_GRID = np.array([1e3, 3e3, 1e4, 3e4, 1e5, 5e5])

MSMARCO_V1_MODEL = {"A": 4.54e4, "alpha": 0.46, "delta": 0.02}
T2RANKING_V1_MODEL = {"A": 9.88e6, "alpha": 0.53, "delta": 0.14}
MSMARCO_V2_MODEL = {"A": 3.22e4, "alpha": 0.53, "delta": 0.04}
T2RANKING_V1_DATA = {"B": 6.04e4, "beta": 0.50, "delta": 0.15}
MSMARCO_V1_DATA = {"B": 2.37e-2, "beta": 0.19, "delta": 0.01}
JOINT_V2 = {"A": 3.6e4, "B": 7.1e3, "alpha": 0.56, "beta": 1.31, "delta": 0.03}


def model_law(n, A, alpha, delta):
    return (A / np.asarray(n, dtype=float)) ** alpha + delta


def data_law(d, B, beta, delta):
    return (B / np.asarray(d, dtype=float)) ** beta + delta


def joint_law(n, d, A, B, alpha, beta, delta):
    n, d = np.asarray(n, dtype=float), np.asarray(d, dtype=float)
    return ((A / n) ** (alpha / beta) + B / d) ** beta + delta


def joint_grid(ns=NAMED_N, ds=D_GRID):
    nn, dd = np.meshgrid(ns, ds, indexing="ij")
    return np.c_[nn.ravel(), dd.ravel()]                     # [len(ns) * len(ds), 2]


def noisy(y, rel, seed):
    """y with Gaussian noise of relative size ``rel``; returns (y_noisy, sigma)."""
    sigma = rel * y
    return y + sigma * np.random.default_rng(seed).standard_normal(y.shape), sigma
