"""Cost model of a dense retriever: Z(N, D) = z_data*D + z_train*N + z_infer*N.

Fang et al., Scaling Laws for Dense Retrieval, SIGIR 2024, Section 6 (arXiv v1 Eq. 13-15):
every coefficient is *derived* here from stated assumptions (annotation price, training steps,
tokens, FLOPs per parameter per token, GPU peak throughput, utilisation and price), never typed
in.

    z_train = steps * batch * (q + p+ + p-) tokens * 6 FLOPs / (peak * util) * $/h / 3600
    z_infer = corpus_docs * doc_tokens * 2 FLOPs / (peak * util) * $/h / 3600
    z_query = queries/year * query_tokens * 2 FLOPs * years / (peak * util) * $/h / 3600

With the defaults z_train = 3.2249e-8 and z_infer = 0.42995 $ per parameter (paper: 3.22e-8 and
0.43). z_query is an optional serving term the paper leaves out (default 0).

Example:
    >>> cm = CostModel.from_assumptions(CostAssumptions())
    >>> f"{cm.z_train:.3g} {cm.z_infer:.3g}"
    '3.22e-08 0.43'
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from densescale.errors import ConfigError


def _about(default: float, help: str) -> Any:
    """A field with its help text in ``metadata["help"]`` (the ``budget`` flags read it)."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class CostAssumptions:
    """Everything the cost coefficients are derived from (the paper's defaults, Section 6).

    Each field becomes a ``densescale budget`` flag (``--gpu-price`` ...) with the help text
    in its metadata."""

    data_cost: float = _about(0.6, "$ per annotated query-positive pair (Althammer et al., 2023)")
    steps: int = _about(10_000, "Training steps, fixed regardless of D.")
    batch_size: int = _about(256, "Examples per training step.")
    query_tokens: int = _about(30, "Tokens per query.")
    positive_tokens: int = _about(60, "Tokens per positive passage.")
    negative_tokens: int = _about(60, "Tokens per (one) negative passage per example.")
    train_flops_per_token: float = _about(6.0, "Training FLOPs per parameter per token, forward "
                                               "+ backward (Kaplan et al., 2020).")
    infer_flops_per_token: float = _about(2.0, "Inference FLOPs per parameter per token "
                                               "(forward only).")
    peak_flops: float = _about(312e12, "Peak FLOP/s of the accelerator (A100, BF16 dense).")
    utilisation: float = _about(0.25, "Achieved fraction of peak FLOP/s.")
    gpu_price: float = _about(3.93, "$ per GPU-hour (A100 80G, GCP $2,867.5/month).")
    corpus_docs: float = _about(30e12, "Documents to encode (web scale: 30 trillion pages).")
    doc_tokens: int = _about(512, "Tokens per document.")
    queries_per_year: float = _about(0.0, "Queries encoded per year (the paper leaves this "
                                          "out: 0).")
    years: float = _about(1.0, "Years of query traffic counted in z_query.")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ConfigError(f"cost assumption {f.name} must be a number >= 0, got {v!r}")
        for name in ("data_cost", "peak_flops", "utilisation", "steps", "batch_size",
                     "train_flops_per_token"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"cost assumption {name} must be > 0, "
                                  f"got {getattr(self, name)!r}")
        if self.utilisation > 1:
            raise ConfigError("cost assumption utilisation must be in (0, 1], "
                              f"got {self.utilisation}")

    @property
    def dollars_per_flop(self) -> float:
        """$ per FLOP actually executed: price/h / 3600 / (peak * utilisation)."""
        return self.gpu_price / 3600.0 / (self.peak_flops * self.utilisation)

    @property
    def train_tokens(self) -> float:
        """Tokens processed in training: steps * batch * (query + positive + negative)."""
        return float(self.steps) * self.batch_size * (
            self.query_tokens + self.positive_tokens + self.negative_tokens)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


FORMULAS = {
    "Z": "Z(N, D) = z_data*D + z_train*N + z_infer*N (+ z_query*N)",
    "z_data": "data_cost",
    "z_train": "steps*batch_size*(query_tokens+positive_tokens+negative_tokens)"
               "*train_flops_per_token*gpu_price/(peak_flops*utilisation*3600)",
    "z_infer": "corpus_docs*doc_tokens*infer_flops_per_token"
               "*gpu_price/(peak_flops*utilisation*3600)",
    "z_query": "queries_per_year*years*query_tokens*infer_flops_per_token"
               "*gpu_price/(peak_flops*utilisation*3600)",
}


@dataclass(frozen=True)
class CostModel:
    """Linear cost in model size N (non-embedding parameters) and annotations D ($)."""

    z_data: float  # $ per annotated pair
    z_train: float  # $ per parameter for training
    z_infer: float  # $ per parameter for encoding the corpus once
    z_query: float = 0.0  # $ per parameter for encoding query traffic (optional)
    assumptions: CostAssumptions | None = field(default=None, compare=False)

    @classmethod
    def from_assumptions(cls, a: CostAssumptions | None = None) -> CostModel:
        """Derive every coefficient from ``a`` (defaults: the paper's)."""
        a = a or CostAssumptions()
        per_flop = a.dollars_per_flop
        return cls(
            z_data=float(a.data_cost),
            z_train=a.train_tokens * a.train_flops_per_token * per_flop,
            z_infer=float(a.corpus_docs) * a.doc_tokens * a.infer_flops_per_token * per_flop,
            z_query=float(a.queries_per_year) * a.years * a.query_tokens
            * a.infer_flops_per_token * per_flop,
            assumptions=a,
        )

    def z_param(self, inference: bool = True) -> float:
        """$ per parameter: z_train, plus z_infer + z_query when ``inference``."""
        return self.z_train + ((self.z_infer + self.z_query) if inference else 0.0)

    def cost(self, n, d, inference: bool = True):
        """Z(N, D) in $ (works on floats or numpy arrays)."""
        return self.z_data * d + self.z_param(inference) * n

    def annotations_affordable(self, budget: float, n, inference: bool = True):
        """D such that Z(N, D) = budget (may be negative when N alone exceeds the budget)."""
        return (budget - self.z_param(inference) * n) / self.z_data

    def to_dict(self) -> dict:
        out = {"z_data": self.z_data, "z_train": self.z_train, "z_infer": self.z_infer,
               "z_query": self.z_query, "units": "$ per annotated pair (z_data), $ per "
               "non-embedding parameter (z_train, z_infer, z_query)", "formulas": dict(FORMULAS)}
        if self.assumptions is not None:
            out["assumptions"] = self.assumptions.to_dict()
        return out
