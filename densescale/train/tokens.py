"""Pre-tokenised text as a ragged array with vectorised dynamic padding (no per-example Python).

    store = TokenStore.from_texts(tokenizer, texts, max_len=180)
    batch = store.batch(np.array([3, 1, 4]))   # input_ids / attention_mask [3, T], T = longest
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain

import numpy as np
import torch


class TokenStore:
    """Token ids of n texts: ``flat`` int32 [total tokens] and ``offsets`` int64 [n + 1]."""

    def __init__(self, flat: np.ndarray, offsets: np.ndarray, pad_id: int):
        self.flat, self.offsets, self.pad_id = flat, offsets, pad_id
        self.lengths = np.diff(offsets)  # [n]

    def __len__(self) -> int:
        return len(self.lengths)

    @classmethod
    def from_texts(cls, tokenizer, texts: Sequence[str], max_len: int,
                   chunk: int = 20_000, progress=None) -> TokenStore:
        """Tokenise with the fast tokenizer in large batches (truncating, special tokens added)."""
        flats, lens = [], []
        for s in range(0, len(texts), chunk):
            ids = tokenizer(list(texts[s:s + chunk]), truncation=True, max_length=max_len,
                            return_attention_mask=False, return_token_type_ids=False)["input_ids"]
            lens.append(np.fromiter(map(len, ids), np.int64, len(ids)))
            total = int(lens[-1].sum())
            flats.append(np.fromiter(chain.from_iterable(ids), np.int32, total))
            if progress is not None:
                progress.update(len(ids))
        lengths = np.concatenate(lens) if lens else np.empty(0, np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        flat = np.concatenate(flats) if flats else np.empty(0, np.int32)
        return cls(flat, offsets, tokenizer.pad_token_id or 0)

    def spread(self, rows: np.ndarray, n: int) -> TokenStore:
        """An n-row store whose rows ``rows`` (ascending, one per row of this store) hold this
        store's texts; every other row is empty."""
        lengths = np.zeros(n, np.int64)
        lengths[rows] = self.lengths
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return TokenStore(self.flat, offsets, self.pad_id)

    def take(self, rows: np.ndarray) -> TokenStore:
        """A new store holding only ``rows`` (in that order)."""
        lens = self.lengths[rows]
        offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        ar = np.arange(int(offsets[-1]), dtype=np.int64) - np.repeat(offsets[:-1], lens)
        flat = self.flat[np.repeat(self.offsets[rows], lens) + ar]
        return TokenStore(flat, offsets, self.pad_id)

    @staticmethod
    def concat(stores: Sequence[TokenStore]) -> TokenStore:
        lens = np.concatenate([s.lengths for s in stores])
        offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        return TokenStore(np.concatenate([s.flat for s in stores]), offsets, stores[0].pad_id)

    def length_chunks(self, max_rows: int) -> tuple[list[dict[str, torch.Tensor]], torch.Tensor]:
        """All rows as length-sorted padded chunks of <= max_rows (less padding) + inverse order.

        ``torch.cat([embed(c) for c in chunks])[inverse]`` is in store row order.
        """
        n = len(self)
        order = np.argsort(self.lengths, kind="stable")  # [n] shortest first
        k = max(1, -(-n // max_rows)) if max_rows > 0 else 1
        chunks = [self.batch(c) for c in np.array_split(order, k)]
        inverse = np.empty(n, np.int64)
        inverse[order] = np.arange(n)
        return chunks, torch.from_numpy(inverse)

    def batch(self, rows: np.ndarray, pad_to: int | None = None) -> dict[str, torch.Tensor]:
        """Padded input_ids / attention_mask [len(rows), T] (T = longest, or ``pad_to``)."""
        lens = self.lengths[rows]  # [n]
        t = int(lens.max()) if pad_to is None else pad_to
        ar = np.arange(t, dtype=np.int64)  # [T]
        mask = ar[None, :] < lens[:, None]  # [n, T]
        idx = np.where(mask, self.offsets[rows][:, None] + ar[None, :], 0)  # [n, T]
        ids = np.where(mask, self.flat[idx], self.pad_id)
        return {"input_ids": torch.from_numpy(ids.astype(np.int64)),
                "attention_mask": torch.from_numpy(mask.astype(np.int64))}

