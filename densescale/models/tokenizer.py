"""Tokenizers for bi-encoders: a named/local one, or a WordPiece vocabulary trained on the corpus.

Scratch rungs of the ladder have no pretrained vocabulary of their own when the hub is out of
reach, so densescale can train a BERT-style WordPiece tokenizer (Wu et al. 2016) on the corpus with
Hugging Face ``tokenizers``. The normaliser lower-cases, strips accents and puts spaces around
every CJK character, and ``BertPreTokenizer`` then splits on whitespace and punctuation, so Chinese
text becomes one token per character, as in BERT's Chinese models. Trained tokenizers are cached
under ``densescale.utils.cache_dir()/tokenizers/<sha1 of corpus texts + vocab size>``.

    tok = load_tokenizer("path/to/model")                       # AutoTokenizer (fast), offline ok
    tok = corpus_tokenizer(ds.corpus, vocab_size=8000)          # trained once, then cached
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from densescale.errors import ConfigError
from densescale.utils import cache_dir

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def load_tokenizer(name_or_path: str | os.PathLike) -> PreTrainedTokenizerFast:
    """A fast tokenizer from a hub id or a local folder (a sentence-transformers folder works)."""
    from transformers import AutoTokenizer

    src = str(transformer_folder(name_or_path))
    try:
        return AutoTokenizer.from_pretrained(src, use_fast=True)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot load tokenizer {str(name_or_path)!r}: {e}") from None


def transformer_folder(name_or_path: str | os.PathLike) -> str | Path:
    """The HF model folder inside a sentence-transformers folder (its Transformer module's path).

    Hub ids and plain HF folders are returned unchanged.
    """
    import json

    p = Path(os.path.expanduser(str(name_or_path)))
    modules = p / "modules.json"
    if p.is_dir() and modules.exists() and not (p / "config.json").exists():
        for m in json.loads(modules.read_text()):
            if m.get("type", "").endswith("Transformer"):
                return p / m.get("path", "")
    return p if p.exists() else str(name_or_path)


def _texts_of(corpus) -> Iterator[list[str]]:
    """Batches of passage texts from a densescale Corpus or a plain sequence of strings."""
    if hasattr(corpus, "iter_batches"):
        for _, texts in corpus.iter_batches(10_000):
            yield texts
    else:
        seq = list(corpus)
        for i in range(0, len(seq), 10_000):
            yield seq[i:i + 10_000]


def _corpus_key(corpus, vocab_size: int, lowercase: bool, max_docs: int | None) -> str:
    h = hashlib.sha1(f"wordpiece-v2|{vocab_size}|{lowercase}|{max_docs}".encode())
    n = 0
    for batch in _texts_of(corpus):
        for t in batch:
            if max_docs is not None and n >= max_docs:
                break
            h.update(t.encode("utf-8", "replace"))
            h.update(b"\0")
            n += 1
    return h.hexdigest()[:20]


def train_wordpiece(
    texts: Iterable[Sequence[str]], vocab_size: int = 30522, lowercase: bool = True,
    max_docs: int | None = None,
) -> PreTrainedTokenizerFast:
    """Train a BERT-style WordPiece tokenizer on batches of texts (uncached; see
    corpus_tokenizer)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers.trainers import WordPieceTrainer
    from transformers import BertTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=lowercase, lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    trainer = WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                               min_frequency=2, continuing_subword_prefix="##", show_progress=False)

    def limited() -> Iterator[Sequence[str]]:
        n = 0
        for batch in texts:
            if max_docs is not None and n + len(batch) > max_docs:
                batch = batch[: max_docs - n]
            n += len(batch)
            yield batch
            if max_docs is not None and n >= max_docs:
                return

    tok.train_from_iterator(limited(), trainer=trainer)
    # The trainer learns the same token set every time but numbers it in hash-map order, which
    # changes between processes; renumber canonically (special tokens, then sorted) so a given
    # corpus always yields the same ids, hence the same initialisation and results.
    learned = tok.get_vocab()
    order = [t for t in SPECIAL_TOKENS if t in learned]
    order += sorted(set(learned) - set(order))
    tok.model = models.WordPiece({t: i for i, t in enumerate(order)}, unk_token="[UNK]",
                                 max_input_chars_per_word=100)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return BertTokenizerFast(
        tokenizer_object=tok, do_lower_case=lowercase, unk_token="[UNK]", sep_token="[SEP]",
        pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]", model_max_length=512)


def corpus_tokenizer(
    corpus, vocab_size: int = 30522, lowercase: bool = True, max_docs: int | None = 1_000_000,
) -> PreTrainedTokenizerFast:
    """WordPiece tokenizer trained on (at most ``max_docs`` of) a corpus; cached by content.

    Args:
        corpus: a densescale Corpus (``ds.corpus``) or a sequence of strings.
        vocab_size: target vocabulary size (special tokens included).
        lowercase: lower-case and strip accents (BERT-uncased style).
        max_docs: train on the first max_docs passages only (bounds time on huge corpora).

    Example:
        >>> tok = corpus_tokenizer(open_dataset("squad_v11").corpus, vocab_size=8000)
    """
    from transformers import BertTokenizerFast

    key = _corpus_key(corpus, vocab_size, lowercase, max_docs)
    folder = cache_dir() / "tokenizers" / key
    if (folder / "tokenizer.json").exists():
        return BertTokenizerFast.from_pretrained(str(folder))
    tok = train_wordpiece(_texts_of(corpus), vocab_size, lowercase, max_docs)
    tmp = folder.with_name(f".{key}.{os.getpid()}.tmp")
    tok.save_pretrained(str(tmp))
    try:
        os.replace(tmp, folder)
    except OSError:  # another process won the race; use its copy
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return BertTokenizerFast.from_pretrained(str(folder))
