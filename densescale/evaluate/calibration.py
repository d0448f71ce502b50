"""Temperature-aware contrastive entropy: the loss at the model's own score scale.

The paper's contrastive entropy (Fang et al., Scaling Laws for Dense Retrieval, SIGIR 2024,
Section 3.5) scores passages by the raw inner product, with no temperature. For unit-norm
embeddings (cosine scores in [-1, 1]) that value cannot fall below about ln(1 + W e^-2) (3.6 at
W = 256) whatever the ranking quality, so it says little. For such *bounded* scorers, and for
scorers that *declare* a multiplier of their inner products (``score_scale``), evaluation also
reports a calibrated value, the same loss with scores multiplied by one scale s:

    CE(s) = mean over (repeat, pair) of [ logsumexp_j(s * l_j) - s * l_+ ]

* ``declared``: s is the encoder's ``score_scale`` (a densescale BiEncoder with cosine
  similarity and a scale; the model's own score function);
* ``fitted:selection``: s minimises CE(s) on the dataset's selection split
  (``ds.qrels("selection")``, see ``densescale.data.selection``), never on the reported split.

The raw value is always reported as well and stays the paper's.

    from densescale.evaluate.calibration import fit_selection_scale
    s = fit_selection_scale(encoder, ds)          # reads only the selection split
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from densescale.data import SELECTION
from densescale.errors import ConfigError, DataError
from densescale.evaluate.config import EvalConfig
from densescale.evaluate.entropy import (
    PassageCache,
    passage_cache_for,
    sample_logits,
    scaled_losses,
)
from densescale.evaluate.negatives import NegativeSample, sample_negatives

CALIBRATE_MODES = ("auto", "declared", "fit", "none")
DECLARED = "declared"
FITTED = f"fitted:{SELECTION}"
SCALE_BOUNDS = (1e-3, 1e4)  # search range of a fitted scale


@dataclass(frozen=True)
class Calibration:
    """How the calibrated value is computed: ``scale`` and ``source`` (None: not calibrated),
    plus the passages encoded while fitting (reusable for the reported split)."""

    scale: float | None
    source: str | None
    passage_cache: PassageCache | None = None
    n_encoded: int = 0


def declared_scale(encoder: Any) -> float | None:
    """The encoder's declared multiplier of its inner products (``score_scale``), or None."""
    s = getattr(encoder, "score_scale", None)
    if s is None:
        return None
    s = float(s)
    if not math.isfinite(s) or s <= 0:
        raise ConfigError(f"encoder score_scale must be a positive number, got {s}")
    return s


def is_bounded(encoder: Any, normalized: bool | None = None) -> bool:
    """Whether the encoder's scores are bounded: ``normalized`` when given, else its
    ``similarity`` is cosine (densescale BiEncoder "cos", sentence-transformers model ending in
    ``Normalize``)."""
    if normalized is not None:
        return bool(normalized)
    return str(getattr(encoder, "similarity", "dot")).lower() in ("cos", "cosine")


def plan(encoder: Any, calibrate: str = "auto", normalized: bool | None = None,
         ) -> tuple[str | None, float | None]:
    """(what to do, declared scale): ("declared", s), ("fit", None) or (None, None).

    ``calibrate``: "auto" (declared scale, else fit when bounded), "declared" (declared scale
    only), "fit" (always fit on the selection split), "none".
    """
    if calibrate not in CALIBRATE_MODES:
        raise ConfigError(f"calibrate must be one of {', '.join(CALIBRATE_MODES)}, "
                          f"got {calibrate!r}")
    if calibrate == "none":
        return None, None
    s = declared_scale(encoder)
    if s is not None and calibrate != "fit":
        return DECLARED, s
    if calibrate == "fit" or (calibrate == "auto" and is_bounded(encoder, normalized)):
        return "fit", None
    return None, None


def selection_sample(dataset: Any, config: EvalConfig | None = None,
                     strict: bool = True) -> NegativeSample | None:
    """The negative sample of the selection split (same W, R, seed, pool, max_pairs as the
    reported split). Without a selection split: DataError when ``strict``, else a warning and
    None."""
    try:
        return sample_negatives(dataset, SELECTION, config)
    except DataError as e:
        if strict:
            raise
        warnings.warn(f"no calibrated contrastive entropy: no selection split ({e})",
                      stacklevel=3)
        return None


def ce_at_scale(logits: torch.Tensor, scale: float) -> float:
    """Mean loss over (repeat, pair) of candidate scores [R, P, W+1] times ``scale``."""
    return float(scaled_losses(logits.double(), scale).mean())


def fit_scale(logits: torch.Tensor, bounds: tuple[float, float] = SCALE_BOUNDS) -> float:
    """The scale s minimising ``ce_at_scale(logits, s)`` (bounded search over log s; CE(s) is
    convex in s, so the minimum is unique)."""
    from scipy.optimize import minimize_scalar

    x = logits.double()
    res = minimize_scalar(lambda t: float(scaled_losses(x, math.exp(t)).mean()),
                          bounds=(math.log(bounds[0]), math.log(bounds[1])), method="bounded",
                          options={"xatol": 1e-5})
    return math.exp(float(res.x))


def fit_selection_scale(encoder: Any, dataset: Any, config: EvalConfig | None = None, *,
                        device: str | None = None, progress: bool = False,
                        passage_cache: PassageCache | None = None,
                        sample: NegativeSample | None = None) -> tuple[float, int]:
    """One temperature fitted on the selection split only. Returns (scale, passages encoded).

    Reads ``dataset.qrels("selection")`` (through its negative sample), never another split.
    """
    sel = sample if sample is not None else selection_sample(dataset, config)
    logits, n_encoded = sample_logits(encoder, dataset, sel, config, device=device,
                                      progress=progress, passage_cache=passage_cache)
    return fit_scale(logits), n_encoded


def calibration_for(encoder: Any, dataset: Any, config: EvalConfig | None = None,
                    calibrate: str = "auto", normalized: bool | None = None,
                    samples: Sequence[NegativeSample] = (), *, device: str | None = None,
                    progress: bool = False,
                    passage_cache: PassageCache | None = None) -> Calibration:
    """Decide and, when needed, fit the calibration of ``encoder`` on ``dataset``.

    When fitting, the passages of the selection sample and of ``samples`` (the reported
    split's) that ``passage_cache`` lacks are encoded once together and returned for reuse.
    """
    what, scale = plan(encoder, calibrate, normalized)
    if what is None:
        return Calibration(None, None, passage_cache)
    if what == DECLARED:
        return Calibration(scale, DECLARED, passage_cache)
    sel = selection_sample(dataset, config, strict=calibrate == "fit")
    if sel is None:
        return Calibration(None, None, passage_cache)
    bs = EvalConfig.resolve(config).batch_size
    passage_cache, n_encoded = passage_cache_for(encoder, dataset, [*samples, sel], bs, progress,
                                                 passage_cache)
    scale, n_more = fit_selection_scale(encoder, dataset, config, device=device,
                                        progress=progress, passage_cache=passage_cache,
                                        sample=sel)
    return Calibration(scale, FITTED, passage_cache, n_encoded + n_more)
