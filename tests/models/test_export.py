"""``densescale export --format hf|tevatron``: transformers, sentence-transformers and Tevatron's
DenseModel load the export with densescale's embeddings."""

from __future__ import annotations

import json

import pytest
import torch

from densescale.errors import ConfigError, DataError
from densescale.export import export_model
from densescale.models import build_model, load_encoder

TEXTS = ["what is the capital of france", "Paris is the capital and largest city of France.",
         "a b c", "The quick brown fox jumps over the lazy dog near the river bank today.",
         " ".join(["the capital of france is paris"] * 12)]
SHAPE = {"name": "t", "layers": 1, "hidden": 32, "heads": 2, "intermediate": 64}


def _run(tmp_path, **kw):
    """A training-output-like folder: run/config.json + run/best (as train writes them)."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"lr": 0.001, "steps": 10, "train_size": 64}))
    m = build_model(SHAPE, init="scratch", corpus_for_tokenizer=TEXTS * 20, vocab_size=120,
                    seed=5, query_max_len=6, passage_max_len=12, **kw)
    m.save(run / "best", extra={"step": 10, "contrastive_entropy": 2.5})
    return run, m


def _transformers_embed(folder, texts, max_len, cos):
    """The card's recipe: AutoModel + mean pooling + projection.safetensors (+ normalise)."""
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    enc = AutoModel.from_pretrained(str(folder)).eval()
    w = load_file(str(folder / "projection.safetensors"))
    proj = torch.nn.Linear(*w["weight"].shape[::-1])
    proj.load_state_dict(w)
    b = tok(texts, truncation=True, max_length=max_len, padding=True, return_tensors="pt")
    with torch.no_grad():
        h = enc(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).last_hidden_state
        m = b["attention_mask"].unsqueeze(-1).float()
        v = proj((h * m).sum(1) / m.sum(1))
    return torch.nn.functional.normalize(v, dim=-1) if cos else v


@pytest.mark.parametrize("similarity", ["dot", "cos"])
def test_hf_export_matches_in_transformers_and_sentence_transformers(tmp_path, similarity):
    from sentence_transformers import SentenceTransformer

    run, m = _run(tmp_path, similarity=similarity)
    res = export_model(run, "hf", tmp_path / "hf")
    out = tmp_path / "hf"
    assert res["source"] == str(run / "best") and res["dim"] == 768
    assert {"config.json", "model.safetensors", "projection.safetensors", "tokenizer.json",
            "modules.json", "README.md", "densescale.json"} <= set(res["files"])
    cos = similarity == "cos"
    for kind, n in (("query", 6), ("doc", 12)):
        ref = m.encode(TEXTS, kind)
        torch.testing.assert_close(_transformers_embed(out, TEXTS, n, cos), ref,
                                   rtol=1e-5, atol=1e-5)
    st = SentenceTransformer(str(out), device="cpu")
    torch.testing.assert_close(torch.as_tensor(st.encode_query(TEXTS)), m.encode(TEXTS, "query"),
                               rtol=1e-5, atol=1e-5)
    again = load_encoder(out)
    assert torch.equal(again.encode(TEXTS, "doc"), m.encode(TEXTS, "doc"))
    info = json.loads((out / "densescale.json").read_text())
    assert info["export"]["format"] == "hf" and info["step"] == 10
    card = (out / "README.md").read_text()
    assert "projection.safetensors" in card and "| lr | 0.001 |" in card


def _tevatron_embed(folder, texts, max_len, pooling, normalize):
    """Tevatron's encode path: collator (truncate, no padding, then tokenizer.pad to a multiple
    of 16) -> AutoModel.from_pretrained(folder) -> DenseModel pooling (+ normalize)."""
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    enc = AutoModel.from_pretrained(str(folder)).eval()
    ids = tok(texts, padding=False, truncation=True, max_length=max_len,
              return_attention_mask=False, return_token_type_ids=False)
    b = tok.pad(ids, padding=True, pad_to_multiple_of=16, return_attention_mask=True,
                return_tensors="pt")
    with torch.no_grad():
        h = enc(**b, return_dict=True).last_hidden_state
    if pooling == "cls":
        v = h[:, 0]
    else:
        v = h.masked_fill(~b["attention_mask"][..., None].bool(), 0.0).sum(1)
        v = v / b["attention_mask"].sum(1)[..., None]
    return torch.nn.functional.normalize(v, p=2, dim=-1) if normalize else v


@pytest.mark.parametrize("similarity", ["dot", "cos"])
def test_tevatron_export_matches_dense_model(tmp_path, similarity):
    run, m = _run(tmp_path, similarity=similarity, proj_dim=0)
    res = export_model(run / "best", "tevatron", tmp_path / "tev")
    args = res["tevatron_args"]
    assert args[:2] == ["--pooling", "mean"] and ("--normalize" in args) == (similarity == "cos")
    assert args[-4:] == ["--query_max_len", "6", "--passage_max_len", "12"]
    for kind, n in (("query", 6), ("doc", 12)):
        got = _tevatron_embed(tmp_path / "tev", TEXTS, n, "mean", similarity == "cos")
        torch.testing.assert_close(got, m.encode(TEXTS, kind), rtol=1e-5, atol=1e-5)
    assert " ".join(args) in (tmp_path / "tev" / "README.md").read_text()


def test_tevatron_refuses_a_projection_and_bad_targets(tmp_path):
    run, _ = _run(tmp_path)
    with pytest.raises(ConfigError, match="applies no layer after pooling"):
        export_model(run, "tevatron", tmp_path / "tev")
    assert not (tmp_path / "tev").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    with pytest.raises(ConfigError, match="not empty; give --overwrite"):
        export_model(run, "hf", tmp_path / "full")
    assert (tmp_path / "full" / "keep.txt").exists()
    with pytest.raises(ConfigError, match="holds the model"):
        export_model(run / "best", "hf", run, overwrite=True)
    with pytest.raises(DataError, match="not a densescale model folder"):
        export_model(tmp_path / "full", "hf", tmp_path / "x")
    with pytest.raises(ConfigError, match="--format"):
        export_model(run, "onnx", tmp_path / "x")
    export_model(run, "hf", tmp_path / "full", overwrite=True)
    assert not (tmp_path / "full" / "keep.txt").exists()


def test_export_command(tmp_path, capsys):
    from densescale.cli import main

    run, _ = _run(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(["export", "--model", str(run), "--format", "hf", "--out", str(tmp_path / "o"),
              "--json"])
    assert e.value.code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"] == "hf" and doc["out"] == str(tmp_path / "o")
    with pytest.raises(SystemExit) as e:
        main(["export", "--model", str(run), "--format", "tevatron", "--out", str(tmp_path / "t")])
    assert e.value.code == 1 and "error: --format tevatron" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["export", "--model", str(run), "--format", "onnx", "--out", str(tmp_path / "t")])
    assert e.value.code == 2 and "onnx" in capsys.readouterr().err


@pytest.mark.parametrize("layout", ["export", "saved"])
def test_the_cards_transformers_recipe_runs_and_matches(tmp_path, layout):
    """The card's transformers snippet, executed as written, gives densescale's embeddings."""
    run, m = _run(tmp_path, similarity="cos", scale=10.0)
    folder = run / "best"
    if layout == "export":
        folder = tmp_path / "hf"
        export_model(run, "hf", folder)
    card = (folder / "README.md").read_text()
    snippet = card.split("```python\n")[2].split("```")[0]
    assert "AutoModel.from_pretrained(FOLDER)" in snippet
    scope: dict = {"FOLDER": str(folder)}
    exec(snippet, scope)  # noqa: S102 - the card's own code
    for kind, n in (("query", 6), ("doc", 12)):
        torch.testing.assert_close(scope["embed"](TEXTS, n), m.encode(TEXTS, kind),
                                   rtol=1e-5, atol=1e-5)


def test_st_compat_export_declares_no_task_lengths(tmp_path):
    """--st-compat: a sentence_bert_config.json that sentence-transformers 3-5 accept (no
    query_length/document_length, no requirements); encode_query then cuts at the passage
    length, as the card says."""
    from sentence_transformers import SentenceTransformer

    run, m = _run(tmp_path)
    export_model(run, "hf", tmp_path / "new")
    export_model(run, "hf", tmp_path / "old", st_compat=True)
    new = json.loads((tmp_path / "new" / "sentence_bert_config.json").read_text())
    old = json.loads((tmp_path / "old" / "sentence_bert_config.json").read_text())
    assert new["query_length"] == 6 and set(old) == {"max_seq_length", "do_lower_case"}
    cfg = json.loads((tmp_path / "old" / "config_sentence_transformers.json").read_text())
    assert "requirements" not in cfg
    st = SentenceTransformer(str(tmp_path / "old"), device="cpu")
    torch.testing.assert_close(torch.as_tensor(st.encode_query(TEXTS)), m.encode(TEXTS, "doc"),
                               rtol=1e-5, atol=1e-5)
    card = (tmp_path / "old" / "README.md").read_text()
    assert "queries are cut at the passage length, 12 tokens" in card
    assert "--st-compat" in (tmp_path / "new" / "README.md").read_text()
