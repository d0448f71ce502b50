"""Unpadded ("packed") forward of a BERT encoder: no FLOPs are spent on padding tokens.

Same weights and the same arithmetic as ``BertModel`` + masked mean (or CLS) pooling, but every
token-wise operation (embeddings, Q/K/V, attention output, feed-forward, LayerNorm, dropout)
runs on the packed tokens [N, H] of all sequences at once (N = the sum of the true lengths),
and only the attention itself sees a padded layout: sequences sorted by length, in chunks of at
most ``attn_rows`` rows padded to the chunk's longest sequence (``scaled_dot_product_attention``
with a key mask). Q, K and V come from one fused matmul; the unused BERT pooler is skipped.
Queries and passages go through one forward (one set of large matmuls per step).

    packed = pack([q_ids, p_ids], pad_id=0)        # token id lists (or TokenStores)
    emb = packed_embed(biencoder, packed)           # [n, dim], rows in input order

Numerically this is the padded path up to the order of floating-point sums (fp32 tolerance,
tested in tests/train/test_speed.py). With dropout on, the dropout masks are drawn in another
layout, so a packed and a padded run are equal in distribution, not bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Packed:
    """Packed token ids of n sequences, sorted by length (shortest first).

    Attributes:
        ids: token ids [N] (int64), the sequences one after another in sorted order.
        pos: position of each token in its sequence [N].
        seq: sorted sequence index of each token [N].
        lengths: tokens per sequence, sorted order [n] (float32, for mean pooling).
        starts: first token of each sequence [n].
        inverse: sorted position of input row i [n] (``emb_sorted[inverse]`` = input order).
        chunks: attention chunks: (first token, end token, key mask [c, 1, 1, T] bool, valid
            [Nc] positions of the chunk's tokens in its flattened padded [c * T] layout).
        n_tokens: N. seq_lengths: the sorted lengths as numpy (for FLOP counts).
    """

    ids: torch.Tensor
    pos: torch.Tensor
    seq: torch.Tensor
    lengths: torch.Tensor
    starts: torch.Tensor
    inverse: torch.Tensor
    chunks: list[tuple[int, int, torch.Tensor, torch.Tensor]]
    n_tokens: int
    seq_lengths: np.ndarray

    def to(self, device: torch.device | str) -> Packed:
        mv = lambda t: t.to(device, non_blocking=True)  # noqa: E731
        return Packed(mv(self.ids), mv(self.pos), mv(self.seq), mv(self.lengths),
                      mv(self.starts), mv(self.inverse),
                      [(a, b, mv(m), mv(v)) for a, b, m, v in self.chunks], self.n_tokens,
                      self.seq_lengths)


def pack_arrays(flat: np.ndarray, offsets: np.ndarray, attn_rows: int = 64) -> Packed:
    """Pack ragged token ids (``flat`` [total], ``offsets`` [n + 1]) for ``packed_embed``."""
    lens = np.diff(offsets).astype(np.int64)  # [n]
    n = len(lens)
    order = np.argsort(lens, kind="stable")  # [n] shortest first
    slen = lens[order]
    starts = np.concatenate([[0], np.cumsum(slen)[:-1]]).astype(np.int64)  # [n]
    total = int(slen.sum())
    seq = np.repeat(np.arange(n, dtype=np.int64), slen)  # [N]
    pos = np.arange(total, dtype=np.int64) - starts[seq]  # [N]
    ids = flat[offsets[order][seq] + pos].astype(np.int64)  # [N]
    inverse = np.empty(n, np.int64)
    inverse[order] = np.arange(n)
    chunks = []
    for rows in _length_buckets(slen, attn_rows):
        t = int(slen[rows].max())
        ar = np.arange(t, dtype=np.int64)
        mask = ar[None, :] < slen[rows][:, None]  # [c, T]
        valid = np.flatnonzero(mask.reshape(-1))  # the chunk's tokens are contiguous (sorted)
        first = int(starts[rows[0]])
        chunks.append((first, first + len(valid), torch.from_numpy(mask[:, None, None, :]),
                       torch.from_numpy(valid)))
    return Packed(torch.from_numpy(ids), torch.from_numpy(pos), torch.from_numpy(seq),
                  torch.from_numpy(slen.astype(np.float32)), torch.from_numpy(starts),
                  torch.from_numpy(inverse), chunks, total, slen)


def _length_buckets(slen: np.ndarray, max_rows: int) -> list[np.ndarray]:
    """Split sorted lengths into attention chunks: at most ``max_rows`` rows (0 = no limit) and
    a new chunk once a length exceeds 1.25x the chunk's shortest by more than 8 tokens, so
    short queries are not padded to passage length."""
    out, start = [], 0
    for i in range(1, len(slen) + 1):
        if i == len(slen) or (max_rows > 0 and i - start >= max_rows) or (
                slen[i] > 1.25 * slen[start] and slen[i] - slen[start] > 8):
            out.append(np.arange(start, i))
            start = i
    return out


def pack(seqs: Sequence[Any], attn_rows: int = 64) -> Packed:
    """Pack token-id lists, or TokenStores (their rows one after another), in that order."""
    if seqs and hasattr(seqs[0], "flat"):  # TokenStores
        flat = np.concatenate([s.flat for s in seqs])
        lens = np.concatenate([s.lengths for s in seqs])
    else:
        flat = np.fromiter((t for s in seqs for t in s), np.int64)
        lens = np.fromiter(map(len, seqs), np.int64, len(seqs))
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    return pack_arrays(flat, offsets, attn_rows)


def supports_packing(encoder: nn.Module) -> bool:
    """Whether ``packed_hidden`` reproduces ``encoder``: a BERT encoder with absolute positions,
    no decoder / cross-attention, GELU-family activation, no chunked feed-forward."""
    cfg = getattr(encoder, "config", None)
    if type(encoder).__name__ != "BertModel" or cfg is None:
        return False
    return (getattr(cfg, "position_embedding_type", "absolute") == "absolute"
            and not cfg.is_decoder and not getattr(cfg, "add_cross_attention", False)
            and not getattr(cfg, "chunk_size_feed_forward", 0)
            and getattr(encoder, "embeddings", None) is not None
            and not any(getattr(m, "gradient_checkpointing", False) is True
                        for m in encoder.modules()))


def _qkv(layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    a = layer.attention.self
    w = torch.cat([a.query.weight, a.key.weight, a.value.weight])  # [3H, H]
    b = torch.cat([a.query.bias, a.key.bias, a.value.bias])  # [3H]
    return w, b


def packed_hidden(encoder: nn.Module, p: Packed) -> torch.Tensor:
    """Last hidden states of the packed tokens [N, H] (sorted order), as ``encoder`` would give
    for each sequence alone."""
    emb = encoder.embeddings
    train = encoder.training
    x = emb.word_embeddings(p.ids) + emb.token_type_embeddings.weight[0]  # [N, H]
    x = x + emb.position_embeddings(p.pos)
    x = F.dropout(emb.LayerNorm(x), emb.dropout.p, train)
    for layer in encoder.encoder.layer:
        att = layer.attention.self
        h, d = att.num_attention_heads, att.attention_head_size
        p_att = att.dropout.p if train else 0.0
        w, b = _qkv(layer)
        qkv = F.linear(x, w, b)  # [N, 3H]
        ctx = []
        for first, end, mask, valid in p.chunks:
            c, t = mask.shape[0], mask.shape[-1]
            # scatter the chunk's tokens into [c * T] rows (padding rows stay 0: masked as keys,
            # dropped as queries); index_copy / index_select have gather-like backward passes
            g = qkv.new_zeros(c * t, qkv.shape[1]).index_copy(0, valid, qkv[first:end])
            g = g.view(c, t, 3, h, d).permute(2, 0, 3, 1, 4)  # [3, c, h, T, d]
            o = F.scaled_dot_product_attention(g[0], g[1], g[2], attn_mask=mask,
                                               dropout_p=p_att, scale=att.scaling)  # [c,h,T,d]
            ctx.append(o.transpose(1, 2).reshape(c * t, h * d).index_select(0, valid))  # [Nc, H]
        a = torch.cat(ctx) if len(ctx) > 1 else ctx[0]  # [N, H]
        out = layer.attention.output
        a = F.dropout(out.dense(a), out.dropout.p, train)
        x = out.LayerNorm(a + x)
        inter = layer.intermediate.intermediate_act_fn(layer.intermediate.dense(x))  # [N, I]
        o2 = layer.output
        y = F.dropout(o2.dense(inter), o2.dropout.p, train)
        x = o2.LayerNorm(y + x)
    return x


def packed_embed(model: nn.Module, p: Packed) -> torch.Tensor:
    """Embeddings [n, dim] in input order from a BiEncoder-like ``model`` (``encoder``,
    ``pooling``, ``proj``, ``similarity``), same as ``model.embed`` on the padded batch."""
    x = packed_hidden(model.encoder, p)  # [N, H]
    if model.pooling == "cls":
        pooled = x[p.starts]  # [n, H]
    else:
        pooled = x.new_zeros(len(p.lengths), x.shape[1]).index_add_(0, p.seq, x)  # [n, H]
        pooled = pooled / p.lengths.to(pooled.dtype)[:, None]
    out = model.proj(pooled) if getattr(model, "proj", None) is not None else pooled
    if getattr(model, "similarity", "dot") == "cos":
        out = F.normalize(out.float(), dim=-1)
    return out[p.inverse]  # [n, dim] input order


def set_dropout(module: nn.Module, on: bool) -> None:
    """Switch every dropout of ``module`` off (p = 0) or leave it as configured (``on``).

    The paper's recipe keeps BERT's dropout (0.1 on hidden states and attention probabilities:
    the authors train Hugging Face checkpoints with their default config in train mode)."""
    if on:
        return
    for m in module.modules():  # the config is left alone: a saved model keeps its dropout
        if isinstance(m, nn.Dropout):
            m.p = 0.0


class PackedEncoder:
    """The encoder protocol on the packed forward: a BERT encoder, mean or CLS pooling, then
    ``head`` (projection / Dense / normalisation). Same embeddings as the padded model (fp32
    tolerance), with no work on padding and no pooler.

    Args:
        bert: the BertModel. tokenizer: its fast tokenizer. pooling: "mean" or "cls".
        head: pooled [n, H] -> embeddings [n, dim]. query_max_len, passage_max_len: truncation.
        similarity, score_scale: copied from the wrapped scorer.
    """

    def __init__(self, bert: nn.Module, tokenizer: Any, pooling: str, head: Any,
                 query_max_len: int, passage_max_len: int, similarity: str = "dot",
                 score_scale: float | None = None, lowercase: bool = False):
        self.bert, self.tokenizer, self.pooling, self.head = bert, tokenizer, pooling, head
        self.query_max_len, self.passage_max_len = query_max_len, passage_max_len
        self.similarity, self.score_scale, self.lowercase = similarity, score_scale, lowercase

    @torch.no_grad()
    def encode(self, texts: list[str], kind: str = "doc", batch_size: int = 128) -> torch.Tensor:
        """Embeddings [n, dim] (float32, CPU); batches of length-sorted texts, packed."""
        n = len(texts)
        max_len = self.query_max_len if kind == "query" else self.passage_max_len
        texts = [t.lower() for t in texts] if self.lowercase else list(texts)
        ids = self.tokenizer(texts, truncation=True, max_length=max_len,
                             return_attention_mask=False, return_token_type_ids=False)["input_ids"]
        lens = np.fromiter(map(len, ids), np.int64, n)
        order = np.argsort(lens, kind="stable")
        was = self.bert.training
        self.bert.eval()
        dev = next(self.bert.parameters()).device
        out: torch.Tensor | None = None
        try:
            for s in range(0, n, batch_size):
                rows = order[s:s + batch_size]
                p = pack([ids[i] for i in rows], attn_rows=0).to(dev)
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
                    x = packed_hidden(self.bert, p)  # [N, H]
                    pooled = (x[p.starts] if self.pooling == "cls" else
                              x.new_zeros(len(rows), x.shape[1]).index_add_(0, p.seq, x)
                              / p.lengths.to(x.dtype)[:, None])
                    emb = self.head(pooled)[p.inverse].float().cpu()  # [b, dim]
                if out is None:
                    out = torch.empty(n, emb.shape[1])
                out[torch.from_numpy(rows)] = emb
        finally:
            self.bert.train(was)
        return out if out is not None else torch.zeros(0, 0)


def packed_encoder(scorer: Any) -> PackedEncoder | None:
    """A PackedEncoder computing the same embeddings as ``scorer`` (a BiEncoder, or a
    SentenceTransformerEncoder over Transformer(BERT) + mean/CLS Pooling [+ Dense]
    [+ Normalize] without prompts), or None when ``scorer`` is not of that form."""
    if hasattr(scorer, "embed") and hasattr(scorer, "encoder"):  # BiEncoder
        if not supports_packing(scorer.encoder) or scorer.tokenizer is None:
            return None

        def head(pooled: torch.Tensor, m=scorer) -> torch.Tensor:
            out = m.proj(pooled) if m.proj is not None else pooled
            return F.normalize(out.float(), dim=-1) if m.similarity == "cos" else out

        return PackedEncoder(scorer.encoder, scorer.tokenizer, scorer.pooling, head,
                             scorer.query_max_len, scorer.passage_max_len, scorer.similarity,
                             scorer.score_scale)
    st = getattr(scorer, "model", None)
    if st is None or type(st).__name__ != "SentenceTransformer" or not _st_plain(st):
        return None
    mods = list(st)
    bert = mods[0].auto_model
    mode = mods[1].pooling_mode
    tail = mods[2:]

    def st_head(pooled: torch.Tensor, tail=tail) -> torch.Tensor:
        for m in tail:
            if type(m).__name__ == "Dense":
                pooled = m.activation_function(m.linear(pooled))
            else:  # Normalize
                pooled = F.normalize(pooled, p=2, dim=1)
        return pooled

    return PackedEncoder(bert, mods[0].tokenizer, mode, st_head, scorer.query_max_len,
                         scorer.passage_max_len, scorer.similarity, scorer.score_scale,
                         lowercase=bool(getattr(mods[0], "do_lower_case", False)))


def _st_plain(st: Any) -> bool:
    """A SentenceTransformer of the form the packed path reproduces exactly."""
    mods = list(st)
    names = [type(m).__name__ for m in mods]
    if len(names) < 2 or names[0] != "Transformer" or names[1] != "Pooling":
        return False
    if any(n not in ("Dense", "Normalize") for n in names[2:]):
        return False
    if any(v for v in (getattr(st, "prompts", None) or {}).values()):
        return False
    if getattr(st, "default_prompt_name", None):
        return False
    t = mods[0]
    return (mods[1].pooling_mode in ("mean", "cls") and t.tokenizer is not None
            and supports_packing(t.auto_model)
            and getattr(t, "query_expansion", None) is None)
