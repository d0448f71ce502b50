"""Saved model folders in every common loader: sentence-transformers (asymmetric lengths),
transformers' AutoModel at the root, densescale; the model card."""

from __future__ import annotations

import json

import pytest
import torch

from densescale.models import build_model, load_encoder
from densescale.models.folder import load_projection

TEXTS = ["what is the capital of france", "Paris is the capital and largest city of France.",
         "a b c", "The quick brown fox jumps over the lazy dog near the river bank today."]
LONG = [" ".join(["the capital of france is paris"] * 12), "a b c d e f g h i j k l m n o p q"]
SHAPE = {"name": "t", "layers": 1, "hidden": 32, "heads": 2, "intermediate": 64}


def _model(**kw):
    return build_model(SHAPE, init="scratch", corpus_for_tokenizer=TEXTS * 20, vocab_size=120,
                       seed=3, query_max_len=6, passage_max_len=12, **kw)


def _hf_embed(folder, texts, max_len, pooling="mean", cos=False, sub=None):
    """Embeddings as a transformers user computes them from the card's recipe."""
    from transformers import AutoModel, AutoTokenizer

    kw = {"subfolder": sub} if sub else {}
    tok = AutoTokenizer.from_pretrained(str(folder), **kw)
    enc = AutoModel.from_pretrained(str(folder), **kw).eval()
    b = tok(texts, truncation=True, max_length=max_len, padding=True, return_tensors="pt")
    with torch.no_grad():
        h = enc(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).last_hidden_state
    if pooling == "cls":
        v = h[:, 0]
    else:
        m = b["attention_mask"].unsqueeze(-1).float()
        v = (h * m).sum(1) / m.sum(1)
    proj = load_projection(folder)
    if proj is not None:
        with torch.no_grad():
            v = proj(v)
    return torch.nn.functional.normalize(v, dim=-1) if cos else v


@pytest.mark.parametrize("similarity", ["dot", "cos"])
def test_saved_folder_loads_in_automodel_at_the_root(tmp_path, similarity):
    """AutoModel/AutoTokenizer load the encoder from the folder root (no second weight copy);
    pooling + load_projection (+ normalisation) reproduce densescale's embeddings."""
    m = _model(similarity=similarity)
    m.save(tmp_path / "m")
    root = tmp_path / "m"
    assert not (root / "model.safetensors").exists()  # weights stored once, in 0_Transformer/
    for kind, n in (("query", 6), ("doc", 12)):
        got = _hf_embed(root, TEXTS + LONG, n, cos=similarity == "cos")
        torch.testing.assert_close(got, m.encode(TEXTS + LONG, kind), rtol=1e-5, atol=1e-5)


def test_sentence_transformers_queries_use_the_query_length(tmp_path):
    """encode_query cuts at query_max_len, encode_document/encode at passage_max_len."""
    from sentence_transformers import SentenceTransformer

    m = _model()
    m.save(tmp_path / "m")
    st = SentenceTransformer(str(tmp_path / "m"), device="cpu")
    q = torch.as_tensor(st.encode_query(LONG + TEXTS, batch_size=2))
    d = torch.as_tensor(st.encode_document(LONG + TEXTS, batch_size=2))
    plain = torch.as_tensor(st.encode(LONG + TEXTS, batch_size=2))
    torch.testing.assert_close(q, m.encode(LONG + TEXTS, "query"), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(d, m.encode(LONG + TEXTS, "doc"), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(plain, d)
    assert (q[:2] - d[:2]).abs().max() > 1e-3  # long texts: the two lengths differ


def test_model_card_states_n_d_data_settings_and_selection(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"lr": 0.0003, "steps": 40, "batch_size": 8,
                                                 "data": "/data/squad", "train_size": 256}))
    (run / "summary.json").write_text(json.dumps({"best_step": 20, "best_ce": 3.25,
                                                  "learned": True, "selection_split": "sel"}))
    m = _model(similarity="cos", scale=12.5)
    m.meta.update(train_data="/data/squad", train_size=256)
    m.save(run / "best", extra={"step": 20, "contrastive_entropy": 3.25})
    card = (run / "best" / "README.md").read_text()
    info = json.loads((run / "best" / "densescale.json").read_text())
    from densescale import __version__

    for needle in (f"| N (non-embedding parameters) | {info['n_params']:,} |",
                   "| D (training pairs) | 256 |", "| training data | /data/squad |",
                   "| lr | 0.0003 |", "| best_step | 20 |", "| learned | True |",
                   f"| densescale version | {__version__} |", "encode_query",
                   "AutoModel.from_pretrained", "torch.nn.functional.normalize",
                   "12.5 x cosine", "| query / passage length | 6 / 12 tokens |"):
        assert needle in card, needle
    # a folder elsewhere (no training files beside it) still gets a card, without settings
    m.save(tmp_path / "alone")
    alone = (tmp_path / "alone" / "README.md").read_text()
    assert "## Training settings" not in alone and "| D (training pairs) | 256 |" in alone


def test_root_layout_loads_everywhere(tmp_path):
    """root=True: the standard layout (encoder at the root, projection.safetensors) loads in
    densescale, sentence-transformers and AutoModel with the same embeddings."""
    from sentence_transformers import SentenceTransformer

    m = _model(pooling="cls")
    m.save(tmp_path / "r", root=True)
    r = tmp_path / "r"
    assert (r / "model.safetensors").exists() and (r / "projection.safetensors").exists()
    assert not (r / "0_Transformer").exists()
    ref = m.encode(LONG + TEXTS, "query")
    torch.testing.assert_close(load_encoder(r).encode(LONG + TEXTS, "query"), ref)
    st = SentenceTransformer(str(r), device="cpu")
    torch.testing.assert_close(torch.as_tensor(st.encode_query(LONG + TEXTS)), ref,
                               rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(_hf_embed(r, LONG + TEXTS, 6, pooling="cls"), ref,
                               rtol=1e-5, atol=1e-5)


def test_pretrained_minilm_long_queries_and_root_reload(minilm_dir, tmp_path):
    """The issue's case on a real vocabulary: queries longer than the query length embed in
    sentence-transformers exactly as in densescale (they used to be cut at the passage length);
    a saved folder is also a valid pretrained source (AutoModel at its root)."""
    from sentence_transformers import SentenceTransformer

    m = build_model(str(minilm_dir), init="pretrained", seed=0, query_max_len=8,
                    passage_max_len=24)
    m.save(tmp_path / "m")
    st = SentenceTransformer(str(tmp_path / "m"), device="cpu")
    queries = LONG + ["who wrote the declaration of independence of the united states of america"]
    ref = m.encode(queries, "query")
    torch.testing.assert_close(torch.as_tensor(st.encode_query(queries)), ref,
                               rtol=1e-5, atol=1e-5)
    assert (torch.as_tensor(st.encode_document(queries)) - ref).abs().max() > 1e-2
    again = build_model(str(tmp_path / "m"), init="pretrained", seed=0, proj_dim=0)
    assert torch.equal(again.encoder.embeddings.word_embeddings.weight,
                       m.encoder.embeddings.word_embeddings.weight)
    torch.testing.assert_close(_hf_embed(tmp_path / "m", queries, 8), ref, rtol=1e-5, atol=1e-5)


def test_task_lengths_follow_the_installed_sentence_transformers(tmp_path, monkeypatch):
    """With sentence-transformers < 6 installed, a saved folder declares no per-task lengths
    (those versions refuse them) and says so in its card and config."""
    from densescale.models import folder

    m = _model()
    monkeypatch.setattr(folder, "_installed_st_version", lambda: "5.1.2")
    m.save(tmp_path / "old")
    st_cfg = json.loads((tmp_path / "old" / "0_Transformer" / "sentence_bert_config.json")
                        .read_text())
    assert "query_length" not in st_cfg and st_cfg["max_seq_length"] == 12
    cfg = json.loads((tmp_path / "old" / "config_sentence_transformers.json").read_text())
    assert cfg["__version__"]["sentence_transformers"] == "5.1.2" and "requirements" not in cfg
    assert "queries are cut at the passage length" in (tmp_path / "old" / "README.md").read_text()
    monkeypatch.setattr(folder, "_installed_st_version", lambda: "6.2.0")
    m.save(tmp_path / "new")
    st_cfg = json.loads((tmp_path / "new" / "0_Transformer" / "sentence_bert_config.json")
                        .read_text())
    assert st_cfg["query_length"] == 6 and st_cfg["document_length"] == 12


def test_card_shows_the_scale_only_for_cosine_runs(tmp_path):
    for sim in ("dot", "cos"):
        run = tmp_path / sim
        run.mkdir()
        (run / "config.json").write_text(json.dumps({"similarity": sim, "scale": 20.0}))
        _model(similarity=sim).save(run / "best")
        card = (run / "best" / "README.md").read_text()
        assert ("| scale | 20 |" in card) == (sim == "cos"), sim
