"""doc2query / docT5query: a seq2seq model writes queries for a passage (Nogueira et al., 2019).

Generation uses top-k sampling with k = 10, as docTTTTTquery does; ``num_queries`` samples per
passage (``num_return_sequences``). The paper (Fang et al., Scaling Laws for Dense Retrieval, SIGIR
2024, Section 5) used the public docT5query predictions of a T5-base model trained on MS MARCO, run
on 500,000 randomly sampled passages (``--passages 500000``). ``--train-from`` first fine-tunes a
seq2seq model on human (passage -> query) pairs with AdamW (how docT5query itself was made), saves
it to ``out/generator/`` and generates with it.

    densescale annotate doc2query --data squad_v11 --out runs/ann/squad-d2q \
        --model castorini/doc2query-t5-base-msmarco --passages 20000 --seed 0
    densescale annotate doc2query --data squad_v11 --out runs/ann/squad-d2q-ft \
        --model t5-small --train-from train --train-steps 2000
"""

from __future__ import annotations

import json
import math
import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from densescale.annotate.base import Annotator, Item, Result
from densescale.data import Dataset, Doc
from densescale.data.formats import read_positive_pairs
from densescale.errors import ConfigError


@dataclass(frozen=True)
class FinetuneConfig:
    steps: int = 1000  # optimiser steps
    batch_size: int = 16
    lr: float = 3e-4  # AdamW learning rate
    weight_decay: float = 0.0
    max_input_len: int = 512
    max_query_len: int = 64
    seed: int = 0


def _load(model_path: str, device):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(model_path)
        model = AutoModelForSeq2SeqLM.from_pretrained(model_path)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot load seq2seq model {model_path!r}: {e}") from None
    return tok, model.to(device)


def human_pairs(ds: Dataset, split_or_file: str) -> list[tuple[str, str]]:
    """(passage text, query text) pairs from a qrels split name or a qrels TSV file."""
    queries = ds.queries()
    path = Path(split_or_file)
    if path.is_file():
        pairs = [(p.query_id, p.doc_id) for p in read_positive_pairs(path)]
    else:
        pairs = [(p.query_id, p.doc_id) for p in ds.pairs(split_or_file)]
    pairs = [(q, d) for q, d in pairs if q in queries]
    if not pairs:
        raise ConfigError(f"--train-from {split_or_file!r}: no (query, passage) pairs found")
    texts = ds.corpus.texts(ds.corpus.rows_of([d for _, d in pairs]))
    return [(t, queries[q]) for t, (q, _) in zip(texts, pairs)]


def finetune(model_path: str, pairs: Sequence[tuple[str, str]], out_dir: str | os.PathLike,
             cfg: FinetuneConfig = FinetuneConfig(), device=None, progress: bool = True) -> Path:
    """Fine-tune a seq2seq model on (passage, query) pairs with AdamW; save it to ``out_dir``.

    Args:
        model_path: Starting model (path or hub id available offline).
        pairs: (passage text, query text) training pairs.
        out_dir: Where model + tokenizer are saved (written atomically: tmp folder, rename).
        cfg: Steps, batch size, learning rate, lengths, seed.
        device: torch device (default: cuda when available).
        progress: tqdm bar on stderr.

    Returns:
        ``out_dir``.
    """
    import shutil

    import numpy as np
    import torch
    from tqdm import tqdm

    from densescale.utils import device as pick_device
    from densescale.utils import set_seed

    dev = pick_device(device)
    set_seed(cfg.seed)
    tok, model = _load(model_path, dev)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(cfg.seed)
    order = np.concatenate([rng.permutation(len(pairs))
                            for _ in range(math.ceil(cfg.steps * cfg.batch_size / len(pairs)))])
    losses = []
    for step in tqdm(range(cfg.steps), disable=not progress, desc="finetune doc2query"):
        idx = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
        src = [pairs[i][0] for i in idx]
        tgt = [pairs[i][1] for i in idx]
        enc = tok(src, max_length=cfg.max_input_len, truncation=True, padding=True,
                  return_tensors="pt")
        labels = tok(text_target=tgt, max_length=cfg.max_query_len, truncation=True,
                     padding=True, return_tensors="pt")["input_ids"]  # [B, Lq]
        labels[labels == tok.pad_token_id] = -100
        loss = model(input_ids=enc["input_ids"].to(dev),
                     attention_mask=enc["attention_mask"].to(dev), labels=labels.to(dev)).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / "finetune.json").write_text(json.dumps(
        {"base_model": model_path, "config": asdict(cfg), "pairs": len(pairs),
         "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None},
        indent=2))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return out_dir


class Doc2QueryAnnotator(Annotator):
    """Top-k sampled queries from a seq2seq model, ``num_queries`` per passage.

    Args:
        model_path: Seq2seq model path or (offline) hub id.
        num_queries: Queries per passage.
        top_k: Sampling cut-off (10 in docTTTTTquery).
        max_input_len: Passage truncation, tokens.
        max_query_len: Longest generated query, new tokens.
        batch_size: Passages per ``generate`` call.
        seed: Base seed; each batch reseeds with ``seed`` and the batch's first key, so a resumed
            run regenerates the same text for a batch that starts at the same item.
        device: torch device name (default: cuda when available).
        max_attempts: Re-sample a passage whose samples all decode to empty text this often.
    """

    method = "doc2query"

    def __init__(self, model_path: str, num_queries: int = 1, top_k: int = 10,
                 max_input_len: int = 512, max_query_len: int = 64, batch_size: int = 32,
                 seed: int = 0, device: str | None = None, max_attempts: int = 3):
        if num_queries < 1:
            raise ConfigError("--num-queries must be >= 1")
        self.model = str(model_path)
        self.num_queries = self.queries_per_item = num_queries
        self.top_k = top_k
        self.max_input_len = max_input_len
        self.max_query_len = max_query_len
        self.batch_size = batch_size
        self.seed = seed
        self.device = device
        self.max_attempts = max_attempts
        self.base_model: str | None = None

    def params(self) -> dict:
        return {"num_queries": self.num_queries, "top_k": self.top_k, "do_sample": True,
                "max_input_len": self.max_input_len, "max_query_len": self.max_query_len,
                "batch_size": self.batch_size, "base_model": self.base_model}

    def run(self, items: Sequence[Item], docs: Sequence[Doc],
            emit: Callable[[Result], None]) -> None:
        import torch

        from densescale.utils import device as pick_device

        dev = pick_device(self.device)
        tok, model = _load(self.model, dev)
        model.eval()
        n = self.num_queries
        for start in range(0, len(items), self.batch_size):
            batch = list(range(start, min(start + self.batch_size, len(items))))
            torch.manual_seed((self.seed * 1_000_003 + zlib.crc32(items[start].key.encode()))
                              % 2**63)
            got: dict[int, list[str]] = {i: [] for i in batch}
            attempts = dict.fromkeys(batch, 0)
            pending = batch
            while pending:
                texts = [docs[i].full_text() for i in pending]
                enc = tok(texts, max_length=self.max_input_len, truncation=True, padding=True,
                          return_tensors="pt").to(dev)
                with torch.no_grad():
                    gen = model.generate(input_ids=enc["input_ids"],
                                         attention_mask=enc["attention_mask"],
                                         do_sample=True, top_k=self.top_k,
                                         max_new_tokens=self.max_query_len,
                                         num_return_sequences=n)  # [len(pending) * n, L]
                decoded = tok.batch_decode(gen, skip_special_tokens=True)
                for j, i in enumerate(pending):
                    attempts[i] += 1
                    qs = [q.strip() for q in decoded[j * n:(j + 1) * n]]
                    qs = [q for q in qs if q]
                    if len(qs) > len(got[i]):  # keep the attempt with most non-empty samples
                        got[i] = qs
                pending = [i for i in pending
                           if len(got[i]) < n and attempts[i] < self.max_attempts]
            for i in batch:
                it = items[i]
                if got[i]:
                    emit(Result(it.key, it.doc_id, queries=got[i], attempts=attempts[i]))
                else:
                    emit(Result(it.key, it.doc_id, error="all samples decoded to empty text",
                                attempts=attempts[i]))
