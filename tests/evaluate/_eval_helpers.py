"""Tiny deterministic datasets and encoders for the evaluation tests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch


def make_dataset(root: Path, n_docs: int = 400, n_queries: int = 30, seed: int = 0,
                 self_ids: bool = False, dev_queries: int = 0) -> Path:
    """A BEIR-layout collection of random-word passages; each query copies words of 1-2 docs.

    self_ids: give each query the id of a (non-relevant) corpus document, as in ArguAna.
    dev_queries: that many further queries go to qrels/dev.tsv (the selection split).
    """
    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(300)]
    docs = [" ".join(rng.choice(vocab, size=12)) for _ in range(n_docs)]
    root.mkdir(parents=True, exist_ok=True)
    (root / "qrels").mkdir(exist_ok=True)
    with open(root / "corpus.jsonl", "w") as f:
        for i, t in enumerate(docs):
            f.write(json.dumps({"_id": f"d{i}", "title": "", "text": t}) + "\n")
    lines = ["query-id\tcorpus-id\tscore"]
    dev = list(lines)
    with open(root / "queries.jsonl", "w") as f:
        for q in range(n_queries + dev_queries):
            pos = rng.choice(n_docs, size=1 + (q % 2), replace=False)
            words = [w for p in pos for w in rng.choice(docs[p].split(), size=4)]
            qid = f"d{(int(pos[0]) + 7) % n_docs}" if self_ids else f"q{q}"
            f.write(json.dumps({"_id": qid, "text": " ".join(words)}) + "\n")
            (lines if q < n_queries else dev).extend(f"{qid}\td{p}\t1" for p in pos)
    (root / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    if dev_queries:
        (root / "qrels" / "dev.tsv").write_text("\n".join(dev) + "\n")
    return root


class HashBowEncoder:
    """Bag of words -> sum of fixed pseudo-random vectors per token (deterministic, no ties)."""

    query_max_len = 64
    passage_max_len = 64

    def __init__(self, dim: int = 32, scale: float = 0.5):
        self.dim = dim
        self.scale = scale
        self.calls: list[tuple[str, int]] = []

    def _vec(self, tok: str) -> torch.Tensor:
        seed = int.from_bytes(hashlib.blake2b(tok.encode(), digest_size=8).digest(), "little")
        g = torch.Generator().manual_seed(seed % (2**63))
        return torch.randn(self.dim, generator=g)

    def encode(self, texts, kind="doc", batch_size=128):
        self.calls.append((kind, len(texts)))
        out = torch.zeros(len(texts), self.dim)
        for i, t in enumerate(texts):
            for tok in t.split():
                out[i] += self._vec(tok)
        return out * self.scale


class UnitHashBowEncoder(HashBowEncoder):
    """HashBowEncoder with unit-norm embeddings (bounded, cosine scores)."""

    similarity = "cos"

    def encode(self, texts, kind="doc", batch_size=128):
        return torch.nn.functional.normalize(super().encode(texts, kind, batch_size), dim=-1)


class ConstantEncoder:
    """Every text gets the same vector: all scores tie."""

    def encode(self, texts, kind="doc", batch_size=128):
        return torch.ones(len(texts), 4)


class OracleEncoder:
    """Knows the qrels: a query's vector is `margin` times the sum of its positives' one-hots."""

    def __init__(self, dataset, split: str = "test", margin: float = 1000.0):
        corpus = dataset.corpus
        self.row_of_text = {t: i for i, t in enumerate(corpus.texts(np.arange(len(corpus))))}
        self.n = len(corpus)
        queries = dataset.queries()
        self.pos_of_query: dict[str, list[int]] = {}
        for qid, docs in dataset.qrels(split).items():
            rows = [int(r) for r in corpus.rows_of([d for d, s in docs.items() if s > 0])]
            self.pos_of_query.setdefault(queries[qid], []).extend(rows)
        self.margin = margin

    def encode(self, texts, kind="doc", batch_size=128):
        out = torch.zeros(len(texts), self.n)
        for i, t in enumerate(texts):
            if kind == "query":
                out[i, self.pos_of_query[t]] = self.margin
            else:
                out[i, self.row_of_text[t]] = 1.0
        return out
