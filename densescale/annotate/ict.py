"""Inverse Cloze Task (ICT) pseudo-queries, following the rule of Fang et al.'s released code.

ICT (Lee et al., ACL 2019) treats a sentence of a passage as a query and its context as the
positive. The rule of the scaling-law paper's ``utils.py`` (Fang et al., Scaling Laws for Dense
Retrieval, SIGIR 2024, Section 5):

1. split the passage text into sentences and keep those of at least 3 words;
2. fewer than 2 kept sentences: query = the first 20 words, positive = the last 20 words;
3. otherwise, with probability 0.5 query = the first sentence and positive = the other
   sentences, else query = a uniformly random sentence and positive = the remaining sentences.

Representation in the annotation set (the ICT positive is a piece of text, not a corpus passage):
the qrel pairs the pseudo-query with its *source passage id* (so the set has the standard layout
and D = number of items), and ``positives.jsonl`` holds ``{"query_id", "doc_id", "text"}`` with the
exact ICT positive text (the context without the query sentence). A trainer that wants the
authors' exact setting reads the positive text from there; one that ignores the side file trains
on (query, full source passage), where the query sentence also occurs in the positive.

Randomness: ``numpy.random.default_rng(seed)`` draws two uniforms per item up front (vectorised);
item i uses draw i, so the output depends only on the seed and the selection order.

    densescale annotate ict --data squad_v11 --out runs/ann/squad-ict --seed 0
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from densescale.annotate.base import Annotator, Item, Result
from densescale.annotate.sentences import has_cjk, split_sentences, word_spans, words
from densescale.data import Doc

MIN_SENTENCE_WORDS = 3
FALLBACK_WORDS = 20


def kept_sentences(text: str) -> list[str]:
    """Sentences of ``text`` with at least MIN_SENTENCE_WORDS words."""
    return [s for s in split_sentences(text) if len(words(s)) >= MIN_SENTENCE_WORDS]


def ict_pair(text: str, coin: float, pick: float,
             sents: list[str] | None = None) -> tuple[str, str]:
    """The ICT (query, positive) of one passage.

    Args:
        text: Passage text.
        coin: Uniform draw in [0, 1): below 0.5 the first sentence is the query.
        pick: Uniform draw in [0, 1) choosing the random sentence otherwise.
        sents: ``kept_sentences(text)`` when already computed.

    Returns:
        (query, positive) strings.
    """
    if sents is None:
        sents = kept_sentences(text)
    if len(sents) < 2:
        spans = word_spans(text)
        if not spans:
            return "", ""
        head = spans[:FALLBACK_WORDS]
        tail = spans[-FALLBACK_WORDS:]
        return text[head[0][0]:head[-1][1]], text[tail[0][0]:tail[-1][1]]
    i = 0 if coin < 0.5 else min(int(pick * len(sents)), len(sents) - 1)
    joiner = "" if has_cjk(text) else " "
    return sents[i], joiner.join(sents[:i] + sents[i + 1:])


class ICTAnnotator(Annotator):
    """ICT pseudo-queries; one per item.

    Args:
        seed: Seed of ``numpy.random.default_rng``.
        use_title: Prepend the title as a sentence before splitting (off: the authors split
            MS MARCO passages, which have no titles).
    """

    method = "ict"

    def __init__(self, seed: int = 0, use_title: bool = False):
        self.seed = seed
        self.use_title = use_title

    def params(self) -> dict:
        return {"min_sentence_words": MIN_SENTENCE_WORDS, "fallback_words": FALLBACK_WORDS,
                "p_first_sentence": 0.5, "use_title": self.use_title,
                "splitter": "densescale.annotate.sentences (regex)"}

    def run(self, items: Sequence[Item], docs: Sequence[Doc],
            emit: Callable[[Result], None]) -> None:
        draws = np.random.default_rng(self.seed).random((len(items), 2)).tolist()  # [n, 2]
        cache: dict[str, list[str]] = {}  # doc id -> kept sentences (SQuAD repeats passages)
        for it, doc, (coin, pick) in zip(items, docs, draws):
            text = f"{doc.title}. {doc.text}" if self.use_title and doc.title else doc.text
            sents = cache.get(doc.id)
            if sents is None:
                sents = cache[doc.id] = kept_sentences(text)
            query, positive = ict_pair(text, coin, pick, sents)
            if not query:
                emit(Result(it.key, it.doc_id, error="empty passage"))
            else:
                emit(Result(it.key, it.doc_id, queries=[query], positive=positive))
