from __future__ import annotations

import json

import pytest
import torch

from densescale.errors import ConfigError
from densescale.models import BiEncoder, build_model, load_encoder
from densescale.models.tokenizer import corpus_tokenizer

TEXTS = ["what is the capital of france", "Paris is the capital and largest city of France.",
         "a b c", "The quick brown fox jumps over the lazy dog near the river bank today."]


@pytest.fixture(scope="module")
def tiny():
    return build_model({"name": "t", "layers": 1, "hidden": 32, "heads": 2, "intermediate": 64},
                       init="scratch", corpus_for_tokenizer=TEXTS * 20, vocab_size=120, seed=3)


def test_encode_shapes_and_padding_invariance(tiny):
    e = tiny.encode(TEXTS, kind="doc", batch_size=2)
    assert e.shape == (4, 768) and e.dtype == torch.float32 and not e.requires_grad
    # one at a time (no padding) == batched (padding masked out)
    single = torch.cat([tiny.encode([t], kind="doc") for t in TEXTS])
    torch.testing.assert_close(e, single, rtol=1e-4, atol=1e-5)


def test_query_truncation(tiny):
    tiny.query_max_len = 4
    long = "a b c " * 30
    assert torch.allclose(tiny.encode([long], "query"), tiny.encode(["a b"], "query"), atol=1e-5)
    tiny.query_max_len = 32


def test_save_load_and_sentence_transformers_round_trip(tiny, tmp_path):
    from sentence_transformers import SentenceTransformer

    tiny.save(tmp_path / "m")
    info = json.loads((tmp_path / "m" / "densescale.json").read_text())
    assert info["rung"]["name"] == "t" and info["proj_dim"] == 768
    again = load_encoder(tmp_path / "m")
    ref = tiny.encode(TEXTS, "doc")
    torch.testing.assert_close(again.encode(TEXTS, "doc"), ref)
    st = SentenceTransformer(str(tmp_path / "m"), device="cpu")
    got = torch.as_tensor(st.encode(TEXTS, convert_to_numpy=True, batch_size=2))
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5)


def test_pretrained_local_minilm_offline(minilm_dir):
    from transformers import AutoModel

    enc = build_model(str(minilm_dir), init="pretrained", seed=0)
    assert enc.rung.layers == 6 and enc.rung.hidden == 384
    # pooled hidden states equal the original model's mean pooling (before the new projection)
    ref_model = AutoModel.from_pretrained(str(minilm_dir)).eval()
    batch = enc.tokenize(TEXTS[:2], "doc")
    with torch.no_grad():
        h = ref_model(**batch).last_hidden_state
        m = batch["attention_mask"].unsqueeze(-1).float()
        pooled = (h * m).sum(1) / m.sum(1)
        want = enc.proj(pooled)
    torch.testing.assert_close(enc.encode(TEXTS[:2], "doc"), want, rtol=1e-4, atol=1e-4)
    layer = 4 * (384 * 384 + 384) + 2 * 384 + 2 * 384 * 1536 + 1536 + 384 + 2 * 384
    assert enc.num_non_embedding_params() == 6 * layer + 384 * 385 + 384 * 768 + 768


def test_chinese_wordpiece_splits_characters():
    tok = corpus_tokenizer(["今天天气很好", "我们去北京", "北京天气"] * 10, vocab_size=60)
    assert tok.tokenize("北京天气") == ["北", "京", "天", "气"]
    # cached
    tok2 = corpus_tokenizer(["今天天气很好", "我们去北京", "北京天气"] * 10, vocab_size=60)
    assert tok2.get_vocab() == tok.get_vocab()


def test_scratch_is_seeded():
    a = build_model("bert-tiny", init="scratch", corpus_for_tokenizer=TEXTS, vocab_size=80, seed=1)
    b = build_model("bert-tiny", init="scratch", corpus_for_tokenizer=TEXTS, vocab_size=80, seed=1)
    assert isinstance(a, BiEncoder)
    for (n, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(p, q), n


def test_corpus_tokenizer_ids_are_deterministic(scifact_path):
    """Same corpus -> same token ids in fresh processes (the trainer numbers tokens in hash-map
    order, which changes per process; densescale renumbers them canonically)."""
    import subprocess
    import sys

    code = ("import json; from densescale.data import open_dataset;"
            "from densescale.models.tokenizer import train_wordpiece;"
            f"ds = open_dataset({str(scifact_path)!r});"
            "texts = [t for _, t in ds.corpus.iter_batches(2000)];"
            "print(json.dumps(train_wordpiece(iter(texts), 3000).get_vocab(), sort_keys=True))")
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout for _ in range(2)}
    assert len(runs) == 1


def test_cosine_model_round_trip_and_score_scale(tmp_path):
    """similarity="cos": unit-length embeddings, declared scale, saved and loaded back, and the
    sentence-transformers export normalises too."""
    from sentence_transformers import SentenceTransformer

    shape = {"name": "c", "layers": 1, "hidden": 32, "heads": 2, "intermediate": 64}
    enc = build_model(shape, init="scratch", corpus_for_tokenizer=TEXTS * 20, vocab_size=120,
                      seed=3, similarity="cos", scale=12.5)
    assert enc.similarity == "cos" and enc.score_scale == 12.5
    ref = enc.encode(TEXTS, "doc")
    torch.testing.assert_close(ref.norm(dim=1), torch.ones(len(TEXTS)))
    enc.save(tmp_path / "m")
    info = json.loads((tmp_path / "m" / "densescale.json").read_text())
    assert info["similarity"] == "cos" and info["scale"] == 12.5
    again = load_encoder(tmp_path / "m")
    assert again.similarity == "cos" and again.score_scale == 12.5
    assert torch.equal(again.encode(TEXTS, "doc"), ref)
    st = SentenceTransformer(str(tmp_path / "m"), device="cpu")
    assert type(st[-1]).__name__ == "Normalize"
    got = torch.as_tensor(st.encode(TEXTS, convert_to_numpy=True, batch_size=2))
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5)
    dot = build_model(shape, init="scratch", corpus_for_tokenizer=TEXTS * 20, vocab_size=120)
    assert dot.similarity == "dot" and dot.score_scale is None
    with pytest.raises(ConfigError, match="scale"):
        build_model(shape, init="scratch", corpus_for_tokenizer=TEXTS * 20, vocab_size=120,
                    similarity="cos", scale=float("nan"))


def test_no_projection_counts_and_round_trip(tmp_path):
    """proj_dim=0: the pooled hidden states are the embedding; N matches the ladder count."""
    from densescale.models import count_non_embedding_params

    shape = {"name": "np", "layers": 1, "hidden": 32, "heads": 2, "intermediate": 64}
    enc = build_model(shape, init="scratch", corpus_for_tokenizer=TEXTS * 20, vocab_size=120,
                      seed=1, proj_dim=0)
    assert enc.proj is None and enc.dim == 32 and enc.encode(TEXTS, "doc").shape == (4, 32)
    rung = enc.rung
    assert enc.num_non_embedding_params() == count_non_embedding_params(rung, proj_dim=0)
    with_proj = count_non_embedding_params(rung, 768)
    assert with_proj - count_non_embedding_params(rung, 0) == 32 * 768 + 768
    enc.save(tmp_path / "m")
    assert not (tmp_path / "m" / "2_Dense").exists()
    again = load_encoder(tmp_path / "m")
    assert again.proj is None
    assert torch.equal(again.encode(TEXTS, "doc"), enc.encode(TEXTS, "doc"))


def test_save_prints_no_progress_bar(tiny, tmp_path, capfd):
    tiny.save(tmp_path / "quiet")
    captured = capfd.readouterr()
    assert "Writing model shards" not in captured.err + captured.out


def test_token_ids_are_memoised_per_texts_tokenizer_and_length(tiny, monkeypatch):
    """encode() reuses the token ids of a recent call with the same texts (checkpoint selection
    encodes one sample again and again), never across tokenizers or maximum lengths."""
    import copy

    from densescale.models.encoder import TOKEN_MEMO_CALLS

    calls = []
    cls = type(tiny.tokenizer)
    real = cls.__call__
    monkeypatch.setattr(cls, "__call__", lambda self, *a, **k: calls.append(1) or real(self, *a,
                                                                                       **k))
    tiny.__dict__.pop("_token_memo", None)
    a = tiny.encode(TEXTS, "doc")
    b = tiny.encode([str(t) for t in TEXTS], "doc")  # new list, equal texts: memoised
    assert torch.equal(a, b) and len(calls) == 1
    tiny.encode(TEXTS[:3] + [TEXTS[3] + "!"], "doc")  # one text differs
    tiny.encode(TEXTS, "query")  # another maximum length
    assert len(calls) == 3
    original = tiny.tokenizer
    try:
        tiny.tokenizer = copy.deepcopy(original)  # another tokenizer object
        assert torch.equal(tiny.encode(TEXTS, "doc"), a) and len(calls) == 4
    finally:
        tiny.tokenizer = original
    for i in range(2 * TOKEN_MEMO_CALLS):
        tiny.encode([f"text number {i}"], "doc")
    assert len(tiny.__dict__["_token_memo"]) == TOKEN_MEMO_CALLS  # bounded
    monkeypatch.setattr("densescale.models.encoder.TOKEN_MEMO_TEXTS", 3)
    n = len(calls)
    tiny.encode(TEXTS, "doc")  # 4 texts: more than the memo keeps, so tokenised every time
    tiny.encode(TEXTS, "doc")
    assert len(calls) == n + 2
