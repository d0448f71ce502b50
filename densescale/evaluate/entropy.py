"""Contrastive entropy: the paper's evaluation metric (Fang et al., Scaling Laws for Dense
Retrieval, SIGIR 2024, Section 3.5, Eq. 6).

For a test pair (q, p+) and W negatives p-_1..p-_W drawn uniformly without replacement from a
pool of corpus passages that contains no positive of the split:

    L(q, p+) = -log( e^{s(q,p+)} / (e^{s(q,p+)} + sum_j e^{s(q,p-_j)}) ),   s = <f(q), f(p)>

(no temperature, no normalisation). The reported value averages L over every (query, positive)
pair of the split, repeated R times with fresh negatives (the authors' code: W=256, R=10, seed 1,
pool 1M for MS MARCO). Lower is better; 0 is perfect, an uninformative scorer gives ln(W+1).

Cost: every distinct passage (positives plus the union of all drawn negatives) is encoded once,
each query once; scores then come from chunked matrix products / gathers, never pairs x (W+1)
encodes.

    from densescale.evaluate import contrastive_entropy
    res = contrastive_entropy(encoder, open_dataset("squad_v11"), "test")
    print(f"{res.mean:.4f} ± {res.stderr:.4f}")

Bounded scores (unit-norm embeddings) cannot reach low values at scale 1: with cosine scores the
loss stays above about ln(1 + W e^-2). For such models, and for models that declare a score
multiplier (``score_scale``), ``CEResult.calibrated`` is the same loss at the declared scale or at
one temperature fitted on the dataset's selection split (``densescale.evaluate.calibration``).
Settings come from ``EvalConfig``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from densescale.evaluate.config import EvalConfig
from densescale.evaluate.encoders import Encoder, encode_rows, encode_texts, pick_device
from densescale.evaluate.negatives import NegativeSample, sample_negatives

_CHUNK_ELEMENTS = 1 << 24  # score-matrix / gathered-embedding elements per chunk (64 MB fp32)
PassageCache = tuple[np.ndarray, torch.Tensor]  # (sorted corpus rows, embeddings [n, d])


@dataclass(frozen=True)
class CEResult:
    """Contrastive entropy of one model on one split.

    Attributes:
        mean: mean over the R repeats of the mean loss over pairs (nats): the paper's raw value
            (inner product, no scale).
        stderr: standard error of ``mean`` from negative sampling: std(repeat means, ddof=1) /
            sqrt(R) when R > 1; with R = 1, the per-pair standard error std(losses)/sqrt(P).
        per_repeat: mean loss over pairs for each repeat.
        n_pairs: P, scored (query, positive) pairs.
        negatives: W. repeats: R.
        n_encoded_passages: distinct passages encoded (positives + union of negatives).
        seconds: wall time of the whole call.
        pair_stderr: standard error over pairs of the per-pair loss (averaged over repeats): the
            test-set sampling uncertainty, which ``stderr`` does not include.
        pool_size: size of the negative pool actually used.
        chance: ln(W + 1), the value of a scorer that cannot tell passages apart.
        calibrated: the same loss with scores multiplied by ``calibration_scale`` (None when
            not calibrated). calibrated_stderr: its ``stderr``.
        calibration_scale: the multiplier: the encoder's declared ``score_scale``, or a
            temperature fitted on the selection split.
        calibration_source: "declared", "fitted:selection", or None.
    """

    mean: float
    stderr: float
    per_repeat: list[float]
    n_pairs: int
    negatives: int
    repeats: int
    n_encoded_passages: int
    seconds: float
    pair_stderr: float = float("nan")
    pool_size: int = 0
    chance: float = float("nan")
    calibrated: float | None = None
    calibrated_stderr: float | None = None
    calibration_scale: float | None = None
    calibration_source: str | None = None
    greater_is_better: ClassVar[bool] = False  # lower is better

    @property
    def own_score(self) -> float:
        """CE under the model's own score function: the calibrated value when the scale is
        declared by the model, else the raw value (what training selects checkpoints on)."""
        return self.calibrated if self.calibration_source == "declared" else self.mean

    @property
    def own_score_stderr(self) -> float:
        """``stderr`` of ``own_score``."""
        return (self.calibrated_stderr if self.calibration_source == "declared"
                else self.stderr)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


greater_is_better = False


def iter_logits(q: torch.Tensor, docs: torch.Tensor, pos: np.ndarray, neg: np.ndarray,
                neg_map: np.ndarray | None = None, method: str = "auto",
                ) -> Iterator[tuple[int, int, int, torch.Tensor]]:
    """Candidate scores of every (repeat, pair), chunk by chunk (the kernel, no encoding).

    Args:
        q: query embedding of each pair, [P, d].
        docs: passage embeddings, [N, d].
        pos: index into ``docs`` of each pair's positive, [P].
        neg: negatives, [R, P, W], indices into ``docs`` (or into ``neg_map`` when given).
        neg_map: optional lookup applied to ``neg`` (e.g. pool index -> docs index).
        method: "dense" (scores against all N passages per chunk, then gathers; best when N is
            not much larger than R*W), "gather" (gathers the W negative embeddings per pair),
            or "auto".

    Yields:
        (repeat k, first pair s, end pair e, logits [e - s, W+1] with the positive in column 0).
    """
    r, p, w = neg.shape
    n, d = docs.shape
    if method == "auto":
        method = "dense" if n <= 16 * r * w else "gather"
    dev = docs.device
    pos_t = torch.as_tensor(np.asarray(pos, dtype=np.int64), device=dev)
    per_pair = n if method == "dense" else w * d
    chunk = max(1, _CHUNK_ELEMENTS // max(per_pair, 1))
    for s in range(0, p, chunk):
        e = min(p, s + chunk)
        qc = q[s:e]  # [C, d]
        s_pos = (qc * docs[pos_t[s:e]]).sum(-1, keepdim=True)  # [C, 1]
        full = qc @ docs.T if method == "dense" else None  # [C, N]
        for k in range(r):
            idx = neg[k, s:e].astype(np.int64)
            if neg_map is not None:
                idx = neg_map[idx]
            idx_t = torch.as_tensor(idx, device=dev)  # [C, W]
            if full is not None:
                s_neg = full.gather(1, idx_t)  # [C, W]
            else:
                s_neg = torch.bmm(docs[idx_t], qc.unsqueeze(-1)).squeeze(-1)  # [C, W]
            yield k, s, e, torch.cat([s_pos, s_neg], dim=1)  # [C, W+1]


def scaled_losses(logits: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """-log softmax of column 0 of ``scale * logits`` along the last axis ([..., W+1] -> [...])."""
    if scale != 1.0:
        logits = logits * scale
    return torch.logsumexp(logits, dim=-1) - logits[..., 0]


def pair_losses_at(q: torch.Tensor, docs: torch.Tensor, pos: np.ndarray, neg: np.ndarray,
                   neg_map: np.ndarray | None = None, method: str = "auto",
                   scales: Sequence[float] = (1.0,)) -> torch.Tensor:
    """Per-(scale, repeat, pair) losses (arguments as ``iter_logits``): float64 CPU [S, R, P],
    -log softmax of the positive among the W+1 candidates with scores times each scale."""
    r, p, _ = neg.shape
    out = torch.empty(len(scales), r, p, dtype=torch.float64)
    for k, s, e, logits in iter_logits(q, docs, pos, neg, neg_map, method):
        for i, sc in enumerate(scales):
            out[i, k, s:e] = scaled_losses(logits, sc).double().cpu()
    return out


def pair_losses(q: torch.Tensor, docs: torch.Tensor, pos: np.ndarray, neg: np.ndarray,
                neg_map: np.ndarray | None = None, method: str = "auto") -> torch.Tensor:
    """Per-(repeat, pair) raw losses (arguments as ``iter_logits``): float64 CPU [R, P]."""
    return pair_losses_at(q, docs, pos, neg, neg_map, method)[0]


def pair_logits(q: torch.Tensor, docs: torch.Tensor, pos: np.ndarray, neg: np.ndarray,
                neg_map: np.ndarray | None = None, method: str = "auto") -> torch.Tensor:
    """All candidate scores (arguments as ``iter_logits``): float32 CPU [R, P, W+1], positive
    in column 0, so the loss at any scale is ``scaled_losses(logits, scale)``."""
    r, p, w = neg.shape
    out = torch.empty(r, p, w + 1, dtype=torch.float32)
    for k, s, e, logits in iter_logits(q, docs, pos, neg, neg_map, method):
        out[k, s:e] = logits.float().cpu()
    return out


def summarise(losses: torch.Tensor) -> tuple[float, float, list[float], float]:
    """(mean, stderr, per_repeat, pair_stderr) from losses [R, P] (see CEResult)."""
    r, p = losses.shape
    per_repeat = losses.mean(dim=1)  # [R]
    mean = float(per_repeat.mean())
    if r > 1:
        stderr = float(per_repeat.std(unbiased=True)) / math.sqrt(r)
    else:
        stderr = float(losses[0].std(unbiased=True)) / math.sqrt(p) if p > 1 else float("nan")
    pair_mean = losses.mean(dim=0)  # [P]
    pair_stderr = float(pair_mean.std(unbiased=True)) / math.sqrt(p) if p > 1 else float("nan")
    return mean, stderr, per_repeat.tolist(), pair_stderr


def as_dataset(dataset: Any):
    """A Dataset, or ``open_dataset(dataset)`` for a path or name."""
    if isinstance(dataset, (str, os.PathLike)):
        from densescale.data import open_dataset

        return open_dataset(dataset)
    return dataset


def as_encoder(encoder: Any) -> Encoder:
    """An encoder-protocol object, or ``load_scorer(encoder)`` for a model folder."""
    if isinstance(encoder, (str, os.PathLike)):
        from densescale.evaluate.encoders import load_scorer

        return load_scorer(encoder)
    return encoder


def encode_queries(encoder: Encoder, dataset: Any, query_ids: list[str], batch_size: int,
                   progress: bool = False) -> tuple[torch.Tensor, np.ndarray]:
    """Encode each distinct query once. Returns (embeddings [Q, d], index of each input id)."""
    from densescale.errors import DataError

    uniq, inverse = np.unique(np.asarray(query_ids, dtype=object).astype(str), return_inverse=True)
    queries = dataset.queries()
    missing = [q for q in uniq if q not in queries]
    if missing:
        raise DataError(f"{len(missing)} query ids from the qrels are not in queries "
                        f"(first: {missing[0]!r})", dataset.path)
    emb = encode_texts(encoder, [queries[q] for q in uniq], "query", batch_size, progress)
    return emb, inverse.reshape(-1)


def encode_passages(encoder: Encoder, dataset: Any, needed: np.ndarray, batch_size: int,
                    progress: bool = False, passage_cache: PassageCache | None = None,
                    ) -> tuple[torch.Tensor, int]:
    """Embeddings of the sorted corpus rows ``needed`` ([len(needed), d]), taking those already
    in ``passage_cache`` from it; returns (embeddings, number of passages encoded here)."""
    if passage_cache is None:
        return encode_rows(encoder, dataset.corpus, needed, batch_size, progress), len(needed)
    have_rows, have_emb = passage_cache
    pos_in = np.searchsorted(have_rows, needed).clip(max=max(len(have_rows) - 1, 0))
    hit = (have_rows[pos_in] == needed) if len(have_rows) else np.zeros(len(needed), bool)
    docs = torch.empty(len(needed), have_emb.shape[1])
    docs[torch.from_numpy(np.flatnonzero(hit))] = have_emb[torch.from_numpy(pos_in[hit])]
    if (~hit).any():
        docs[torch.from_numpy(np.flatnonzero(~hit))] = encode_rows(
            encoder, dataset.corpus, needed[~hit], batch_size, progress)
    return docs, int((~hit).sum())


def passage_cache_for(encoder: Encoder, dataset: Any, samples: Sequence[NegativeSample],
                      batch_size: int, progress: bool = False,
                      passage_cache: PassageCache | None = None) -> tuple[PassageCache, int]:
    """Encode once every passage the samples need (e.g. the reported split and the selection
    split) that ``passage_cache`` lacks. Returns ((sorted rows, embeddings) holding all of
    them, passages encoded here)."""
    rows = np.unique(np.concatenate([s.needed_rows() for s in samples]))
    if passage_cache is None:
        return (rows, encode_rows(encoder, dataset.corpus, rows, batch_size, progress)), len(rows)
    have_rows, have_emb = passage_cache
    new = np.setdiff1d(rows, have_rows)
    if len(new) == 0:
        return passage_cache, 0
    all_rows = np.concatenate([have_rows, new])
    emb = torch.cat([have_emb, encode_rows(encoder, dataset.corpus, new, batch_size, progress)])
    order = np.argsort(all_rows, kind="stable")
    return (all_rows[order], emb[torch.from_numpy(order)]), len(new)


def sample_logits(encoder: Encoder, dataset: Any, sample: NegativeSample,
                  config: EvalConfig | None = None, *, device: str | None = None,
                  progress: bool = False, passage_cache: PassageCache | None = None,
                  method: str = "auto") -> tuple[torch.Tensor, int]:
    """Candidate scores of a negative sample: (logits [R, P, W+1] with the positive in column 0,
    passages encoded here)."""
    t = _embed_sample(encoder, dataset, sample, EvalConfig.resolve(config).batch_size, device,
                      progress, passage_cache)
    return pair_logits(*t[:5], method=method), t[5]


def _embed_sample(encoder, dataset, sample, batch_size, device, progress, passage_cache):
    needed = sample.needed_rows()  # sorted corpus rows
    docs, n_encoded = encode_passages(encoder, dataset, needed, batch_size, progress,
                                      passage_cache)  # [N, d]
    q_emb, q_idx = encode_queries(encoder, dataset, sample.query_ids, batch_size, progress)
    dev = pick_device(device)
    docs = docs.to(dev)
    q = q_emb.to(dev)[torch.as_tensor(q_idx, device=dev)]  # [P, d]
    pos = np.searchsorted(needed, sample.pos_rows)  # [P]
    pool_to_doc = np.searchsorted(needed, sample.pool_rows)  # [M] (valid where used)
    return q, docs, pos, sample.negatives, pool_to_doc, n_encoded


def contrastive_entropy_from_sample(
    encoder: Encoder, dataset: Any, sample: NegativeSample, config: EvalConfig | None = None,
    *, device: str | None = None, progress: bool = False,
    passage_cache: PassageCache | None = None, method: str = "auto",
    scale: float | None = None, calibration_source: str | None = None,
) -> CEResult:
    """Contrastive entropy on a given negative sample (``config`` gives the batch size).

    Args:
        passage_cache: optional (sorted corpus rows, embeddings [len(rows), d]) already computed
            (e.g. by ranking); rows of the sample not in it are encoded here.
        scale: also report the loss with scores times ``scale`` (``calibrated``), labelled
            ``calibration_source``.
    """
    t0 = time.perf_counter()
    batch_size = EvalConfig.resolve(config).batch_size
    q, docs, pos, neg, pool_to_doc, n_encoded = _embed_sample(
        encoder, dataset, sample, batch_size, device, progress, passage_cache)
    scales = (1.0,) if scale is None else (1.0, float(scale))
    losses = pair_losses_at(q, docs, pos, neg, pool_to_doc, method, scales)  # [S, R, P]
    mean, stderr, per_repeat, pair_se = summarise(losses[0])
    cal: dict[str, Any] = {}
    if scale is not None:
        c_mean, c_stderr, _, _ = summarise(losses[1])
        cal = {"calibrated": c_mean, "calibrated_stderr": c_stderr,
               "calibration_scale": float(scale), "calibration_source": calibration_source}
    return CEResult(mean=mean, stderr=stderr, per_repeat=per_repeat, n_pairs=sample.n_pairs,
                    negatives=sample.width, repeats=sample.repeats, n_encoded_passages=n_encoded,
                    seconds=time.perf_counter() - t0, pair_stderr=pair_se,
                    pool_size=len(sample.pool_rows), chance=math.log(sample.width + 1), **cal)


def contrastive_entropy(
    encoder: Encoder | str | os.PathLike,
    dataset: Any,
    split: str,
    config: EvalConfig | None = None,
    *,
    calibrate: str = "auto",
    normalized: bool | None = None,
    device: str | None = None,
    progress: bool = False,
    **overrides: Any,
) -> CEResult:
    """Contrastive entropy of a scorer on a split (lower is better).

    Args:
        encoder: an object following the encoder protocol, or a model folder (``load_scorer``).
        dataset: a ``densescale.data.Dataset`` or a path/name for ``open_dataset``.
        split: qrels split to score; every positive (score > 0) is one pair.
        config: EvalConfig: negatives (W), repeats (R), seed (common random numbers: the sample
            is cached and identical for every model), pool_size, max_pairs, batch_size.
            ``**overrides`` replace its fields (``negatives=64``). For cheap periodic
            evaluation use a small ``pool_size`` and/or ``repeats=1``: cost is set by the
            distinct passages, about min(pool, P*R*W).
        calibrate: "auto" (the declared scale of the encoder, else a temperature fitted on the
            selection split when scores are bounded, else none), "declared" (only a declared
            scale: cheap, what training uses for ``own_score``), "fit" (always fit on the
            selection split), or "none" (``densescale.evaluate.calibration``).
        normalized: the encoder's embeddings are unit-norm (None: read from the encoder).
        device: where scores are computed (None: cuda when available).
        progress: tqdm bars on stderr.

    Returns:
        CEResult (raw mean ± stderr over repeats, chance, calibrated value when calibrated).

    Example:
        >>> res = contrastive_entropy(scorer, "scifact", "test", repeats=10)
        >>> res.mean, res.stderr, res.calibrated
    """
    from densescale.evaluate.calibration import calibration_for

    t0 = time.perf_counter()
    cfg = EvalConfig.resolve(config, **overrides)
    ds = as_dataset(dataset)
    enc = as_encoder(encoder)
    sample = sample_negatives(ds, split, cfg)
    cal = calibration_for(enc, ds, cfg, calibrate, normalized, [sample], device=device,
                          progress=progress)
    res = contrastive_entropy_from_sample(enc, ds, sample, cfg, device=device, progress=progress,
                                          passage_cache=cal.passage_cache, scale=cal.scale,
                                          calibration_source=cal.source)
    n_encoded = res.n_encoded_passages + cal.n_encoded
    return CEResult(**{**res.to_dict(), "seconds": time.perf_counter() - t0,
                       "n_encoded_passages": n_encoded})
