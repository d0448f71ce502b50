"""BiEncoder: one shared transformer, mean (or CLS) pooling, Linear(H -> 768), a score function.

Fang et al., Scaling Laws for Dense Retrieval, SIGIR 2024, Section 3 (Eq. 1/3/5):
``v = W . Transformer(x; phi) + b``, ``s(q, p) = <v_q, v_p>`` (no normalisation, no temperature):
``similarity="dot"``, the default. ``similarity="cos"`` L2-normalises the embeddings and scores
``s(q, p) = scale * cos(v_q, v_p)``; scratch models learn with it on small data where the
unnormalised score's scale blows up. ``proj_dim=0`` drops the projection (N then counts no
H x 768 block). Saved folders load in sentence-transformers and transformers as well (see
densescale.models.folder; ``densescale export`` writes them for other tools):

    enc = build_model("bert-tiny", init="scratch", corpus_for_tokenizer=ds.corpus, vocab_size=8000)
    enc.encode(["what is x?"], kind="query")           # [1, 768] float32 CPU
    enc.save("out/best"); SentenceTransformer("out/best").encode_query([...])
    AutoModel.from_pretrained("out/best")              # the encoder; + load_projection("out/best")
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from densescale.errors import ConfigError, DataError
from densescale.models.folder import (
    DENSESCALE_FILE,
    encoder_dir,
    read_info,
    read_projection,
    write_folder,
)
from densescale.models.ladder import (
    Rung,
    resolve_rung,
    rung_from_dict,
)
from densescale.models.similarity import DEFAULT_COS_SCALE, SIMILARITIES
from densescale.models.tokenizer import corpus_tokenizer, load_tokenizer, transformer_folder

# encode() calls whose token ids are kept: checkpoint selection makes 3 per evaluation (its
# passages in chunks of 4 x 256, its queries); calls of more texts are not kept, which bounds
# the memo to ~4 x 2,048 texts of ids
TOKEN_MEMO_CALLS = 4
TOKEN_MEMO_TEXTS = 2048


class BiEncoder(nn.Module):
    """Shared-weight bi-encoder implementing the densescale encoder protocol.

    Attributes:
        encoder: a Hugging Face encoder (BertModel or AutoModel).
        proj: Linear(H -> proj_dim), or None (``proj_dim=0``: the pooled states are the output).
        tokenizer: fast tokenizer (None only for parameter-count-only models).
        pooling: "mean" (masked mean of the last hidden states, the authors' code) or "cls".
        similarity: "dot" (the paper: s = <v_q, v_p>) or "cos" (embeddings L2-normalised,
            s = scale * cos).
        score_scale: the declared multiplier of inner products of ``encode`` outputs: ``scale``
            for "cos", None for "dot" (the paper's unscaled inner product).
        query_max_len, passage_max_len: truncation lengths in tokens (special tokens included).
        rung: the ladder rung, meta: free-form settings recorded in densescale.json.
    """

    def __init__(self, encoder: nn.Module, tokenizer: Any, proj_dim: int | None = 768,
                 pooling: str = "mean", query_max_len: int = 32, passage_max_len: int = 180,
                 rung: Rung | None = None, meta: dict | None = None,
                 similarity: str = "dot", scale: float | None = None):
        super().__init__()
        if pooling not in ("mean", "cls"):
            raise ConfigError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
        if similarity not in SIMILARITIES:
            raise ConfigError(f"similarity must be 'dot' or 'cos', got {similarity!r}")
        if similarity == "cos":
            scale = DEFAULT_COS_SCALE if scale is None else float(scale)
            if not (math.isfinite(scale) and scale > 0):
                raise ConfigError(f"scale must be a finite number > 0, got {scale}")
        elif scale is not None:
            raise ConfigError("scale is only used with similarity='cos'")
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.proj = nn.Linear(hidden, proj_dim) if proj_dim else None
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.similarity = similarity
        self.score_scale: float | None = scale
        self.query_max_len = query_max_len
        self.passage_max_len = passage_max_len
        self.rung = rung
        self.meta = dict(meta or {})
        pooler = getattr(encoder, "pooler", None)
        if pooler is not None:  # counted (as the paper does) but unused: not optimised
            pooler.requires_grad_(False)

    # ------------------------------------------------------------------ properties
    @property
    def proj_dim(self) -> int:
        """Projection width; 0 when there is no projection."""
        return self.proj.out_features if self.proj is not None else 0

    @property
    def dim(self) -> int:
        return self.proj_dim or self.encoder.config.hidden_size

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def num_non_embedding_params(self) -> int:
        """Parameters whose name lacks 'embedding' (the authors' count: layers + pooler + proj)."""
        return sum(p.numel() for n, p in self.named_parameters() if "embedding" not in n)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ------------------------------------------------------------------ compute
    def embed(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Differentiable embeddings of a tokenised batch (input_ids, attention_mask) -> [n, dim];
        unit length for similarity "cos"."""
        ids, mask = batch["input_ids"], batch["attention_mask"]
        hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state  # [n, T, H]
        if self.pooling == "cls":
            pooled = hidden[:, 0]  # [n, H]
        else:
            m = mask.unsqueeze(-1).to(hidden.dtype)  # [n, T, 1]
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)  # [n, H]
        out = self.proj(pooled) if self.proj is not None else pooled  # [n, dim]
        if self.similarity == "cos":
            out = torch.nn.functional.normalize(out.float(), dim=-1)  # [n, dim], unit length
        return out

    forward = embed

    def max_len(self, kind: str) -> int:
        if kind == "query":
            return self.query_max_len
        if kind in ("doc", "passage"):
            return self.passage_max_len
        raise ValueError(f"kind must be 'query' or 'doc', got {kind!r}")

    def tokenize(self, texts: list[str], kind: str) -> dict[str, torch.Tensor]:
        """Pad to the longest text, truncate to this encoder's max length for ``kind``."""
        if self.tokenizer is None:
            raise ConfigError("this BiEncoder has no tokenizer (give tokenizer= or "
                              "corpus_for_tokenizer=)")
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_len(kind), padding=True,
                             return_tensors="pt", return_token_type_ids=False)
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    @torch.no_grad()
    def encode(self, texts: list[str], kind: str = "doc", batch_size: int = 128) -> torch.Tensor:
        """Embeddings [n, dim] (float32, CPU) of texts; batches are length-sorted to cut padding.

        Unit length for similarity "cos": the model's own score is then ``score_scale`` times
        the inner product of two outputs."""
        n = len(texts)
        if n == 0:
            return torch.zeros(0, self.dim)
        was_training = self.training
        self.eval()
        dev = self.device
        max_len = self.max_len(kind)
        enc = self._token_ids(texts, max_len)
        order = sorted(range(n), key=lambda i: len(enc[i]))
        out = torch.empty(n, self.dim)
        pad = self.tokenizer.pad_token_id or 0
        use_bf16 = dev.type == "cuda"
        try:
            for s in range(0, n, batch_size):
                idx = order[s:s + batch_size]
                batch = pad_batch([enc[i] for i in idx], pad, dev)
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16):
                    emb = self.embed(batch)
                out[torch.tensor(idx)] = emb.float().cpu()
        finally:
            self.train(was_training)
        return out

    def _token_ids(self, texts: list[str], max_len: int) -> list[list[int]]:
        """Token ids of ``texts`` (truncated to ``max_len``). The last few calls are memoised:
        checkpoint selection encodes the same sample of queries and passages at every
        evaluation, and tokenising it again cost ~40% of each evaluation of a small model."""
        def tokenize() -> list[list[int]]:
            return self.tokenizer(list(texts), truncation=True, max_length=max_len,
                                  return_attention_mask=False,
                                  return_token_type_ids=False)["input_ids"]

        if len(texts) > TOKEN_MEMO_TEXTS:  # large calls (a corpus in chunks) never repeat
            return tokenize()
        key = (self.tokenizer, max_len, tuple(texts))  # the tokenizer itself: ids are reused
        memo = self.__dict__.setdefault("_token_memo", OrderedDict())
        ids = memo.get(key)
        if ids is None:
            ids = memo[key] = tokenize()
            while len(memo) > TOKEN_MEMO_CALLS:
                memo.popitem(last=False)
        else:
            memo.move_to_end(key)
        return ids

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike, extra: dict | None = None, *,
             root: bool = False) -> Path:
        """Write a sentence-transformers folder (Transformer, Pooling, Dense, Normalize for
        "cos") + densescale.json + README.md, atomically (see densescale.models.folder);
        ``root=True``: the encoder at the root (standard layout)."""
        return write_folder(self, path, extra, root=root)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device | None = None) -> BiEncoder:
        """Load a folder written by ``save`` (weights from safetensors only)."""
        from transformers import AutoModel

        path = Path(path)
        info = read_info(path)
        tdir = encoder_dir(path)
        encoder = AutoModel.from_pretrained(str(tdir), use_safetensors=True)
        tokenizer = load_tokenizer(tdir) if (tdir / "tokenizer_config.json").exists() else None
        rung = rung_from_dict(info["rung"]) if info.get("rung") else None
        similarity = info.get("similarity", "dot")
        model = cls(encoder, tokenizer, info["proj_dim"], info["pooling"], info["query_max_len"],
                    info["passage_max_len"], rung, info.get("meta"), similarity=similarity,
                    scale=info.get("scale") if similarity == "cos" else None)
        dense = read_projection(path)
        if (dense is None) != (model.proj is None):
            raise DataError(f"proj_dim {info['proj_dim']} does not match the 2_Dense folder", path)
        if dense is not None:
            model.proj.load_state_dict(dense)
        return model.to(device) if device is not None else model


def load_encoder(path: str | os.PathLike, device: str | torch.device | None = None) -> BiEncoder:
    """A BiEncoder from a densescale model folder, or a training output folder (uses its best/)."""
    p = Path(path)
    if not (p / DENSESCALE_FILE).exists():
        for sub in ("best", "last"):
            if (p / sub / DENSESCALE_FILE).exists():
                return BiEncoder.load(p / sub, device)
    return BiEncoder.load(p, device)


def build_model(
    rung_or_name: str | Rung | dict,
    init: str = "scratch",
    tokenizer: str | Any | None = None,
    corpus_for_tokenizer: Any = None,
    proj_dim: int = 768,
    pooling: str = "mean",
    seed: int = 0,
    vocab_size: int = 30522,
    query_max_len: int = 32,
    passage_max_len: int = 180,
    source: str | None = None,
    similarity: str = "dot",
    scale: float | None = None,
) -> BiEncoder:
    """Build a BiEncoder for a ladder rung.

    Args:
        rung_or_name: rung name ("bert-tiny"), Rung, ladder dict entry, "FILE.yaml:name", or a
            local model folder.
        init: "scratch" (random init from the shape, seeded) or "pretrained" (hub id / local path).
        tokenizer: tokenizer name/path or object. Scratch: when None, one is trained on
            ``corpus_for_tokenizer`` (WordPiece, ``vocab_size``); if neither is given, the model
            uses the rung's original vocabulary size and has no tokenizer (counting only).
            Pretrained: defaults to the checkpoint's own tokenizer.
        corpus_for_tokenizer: a Corpus or list of texts for the scratch WordPiece tokenizer.
        proj_dim: projection output size (paper: 768); 0 = no projection.
        pooling: "mean" (paper code) or "cls".
        seed: seeds scratch initialisation and the projection.
        source: override the checkpoint location for init="pretrained" (else ``rung.hub_id``).
        similarity: "dot" (paper) or "cos" (normalised embeddings, score = scale * cos).
        scale: the cosine score's multiplier (None: 20 for "cos"); must be None for "dot".

    Example:
        >>> enc = build_model("bert-tiny", init="scratch", corpus_for_tokenizer=["a b", "c"],
        ...                   vocab_size=100)
    """
    rung = _rung_of(rung_or_name)
    if init == "pretrained":
        from transformers import AutoModel

        src = source or rung.hub_id
        if not src:
            raise ConfigError(f"rung {rung.name!r} has no hub_id for init='pretrained'")
        folder = transformer_folder(src)
        tok = _tokenizer_obj(tokenizer) if tokenizer is not None else load_tokenizer(folder)
        try:
            encoder = AutoModel.from_pretrained(str(folder))
        except OSError as e:
            raise ConfigError(f"cannot load pretrained model {src!r} (offline? give a local "
                              f"path): {e}") from None
        torch.manual_seed(seed)
    elif init == "scratch":
        if tokenizer is not None:
            tok = _tokenizer_obj(tokenizer)
        elif corpus_for_tokenizer is not None:
            tok = corpus_tokenizer(corpus_for_tokenizer, vocab_size=vocab_size)
        else:
            tok = None
        vocab = len(tok) if tok is not None else rung.vocab_size
        torch.manual_seed(seed)
        encoder = _scratch_encoder(rung, vocab, tok.pad_token_id if tok is not None else 0)
    else:
        raise ConfigError(f"init must be 'scratch' or 'pretrained', got {init!r}")
    src = source or rung.hub_id if init == "pretrained" else None
    meta = {"init": init, "seed": seed, "source": src}
    return BiEncoder(encoder, tok, proj_dim, pooling, query_max_len, passage_max_len, rung, meta,
                     similarity=similarity, scale=scale)


def _rung_of(spec: str | Rung | dict) -> Rung:
    if isinstance(spec, str | os.PathLike) and Path(os.path.expanduser(str(spec))).is_dir():
        p = Path(os.path.expanduser(str(spec))).resolve()
        return rung_from_dict({"name": p.name, "hub_id": str(transformer_folder(p))})
    return resolve_rung(spec)


def _tokenizer_obj(tokenizer: Any):
    return load_tokenizer(tokenizer) if isinstance(tokenizer, str | os.PathLike) else tokenizer


def _scratch_encoder(rung: Rung, vocab: int, pad_id: int) -> nn.Module:
    from transformers import BertConfig, BertModel

    kw = dict(vocab_size=vocab, hidden_size=rung.hidden, num_hidden_layers=rung.layers,
              num_attention_heads=rung.heads, intermediate_size=rung.intermediate,
              max_position_embeddings=rung.max_positions, type_vocab_size=rung.type_vocab_size,
              pad_token_id=pad_id)
    if rung.family == "ernie":
        from transformers import ErnieConfig, ErnieModel

        cfg = ErnieConfig(**kw, task_type_vocab_size=max(rung.task_type_vocab_size, 1),
                          use_task_id=rung.task_type_vocab_size > 0)
        return ErnieModel(cfg, add_pooling_layer=True)
    return BertModel(BertConfig(**kw), add_pooling_layer=True)


def pad_batch(seqs: list[list[int]], pad_id: int,
              device: torch.device | None = None) -> dict[str, torch.Tensor]:
    """Right-pad token id lists to the longest one -> input_ids, attention_mask [n, T]."""
    t = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), t), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), t), dtype=torch.long)
    for i, s in enumerate(seqs):  # evaluation-time helper only (training uses TokenStore)
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device)}
