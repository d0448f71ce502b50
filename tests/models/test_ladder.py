from __future__ import annotations

import json

import pytest

from densescale.errors import ConfigError, DataError
from densescale.models import (
    BERT_LADDER,
    ERNIE_LADDER,
    count_non_embedding_params,
    count_total_params,
    get_rung,
    load_ladder_yaml,
    resolve_rung,
)


@pytest.mark.parametrize("name,expected", [
    ("bert-tiny", 512_128),
    ("bert-mini", 3_422_208),
    ("bert-small", 13_266_176),
    ("bert-medium", 25_875_712),
    ("bert-base", 86_235_648),
])
def test_paper_counts(name, expected):
    assert count_non_embedding_params(get_rung(name)) == expected


def test_other_miniatures_and_ernie_match_paper_millions():
    # the paper's sizes: L6 H256 5.00M, L10 H512 32.18M; ERNIE nano 5.03M, micro 7.54M
    assert round(count_non_embedding_params(get_rung("bert-L6-H256")) / 1e6, 2) == 5.00
    assert round(count_non_embedding_params(get_rung("bert-L10-H512")) / 1e6, 2) == 32.18
    assert round(count_non_embedding_params(get_rung("ernie-nano")) / 1e6, 2) == 5.03
    assert round(count_non_embedding_params(get_rung("ernie-micro")) / 1e6, 2) == 7.54


def test_total_params_match_authors_plot_and_hf_model():
    # authors' plot.py: total params /2^20 = 4.2772 (tiny), 104.97 (base)
    assert round(count_total_params(get_rung("bert-tiny")) / 2**20, 4) == 4.2772
    assert round(count_total_params(get_rung("bert-base")) / 2**20, 2) == 104.97
    from densescale.models.encoder import build_model

    m = build_model("bert-tiny", init="scratch", tokenizer=None)  # original 30522 vocab
    assert sum(p.numel() for p in m.parameters()) == count_total_params(get_rung("bert-tiny"))
    assert m.num_non_embedding_params() == 512_128
    # ERNIE-3.0 scratch: HF ErnieModel (vocab 40000, 2048 positions, 4 types, 3 task types)
    e = build_model("ernie-nano", init="scratch", tokenizer=None)
    assert e.num_params() == count_total_params(get_rung("ernie-nano")) == 18_148_560
    assert e.num_non_embedding_params() == 5_026_776


def test_ladder_shapes():
    assert len(BERT_LADDER) == 24 and len(ERNIE_LADDER) == 5
    r = get_rung("bert-mini")
    assert (r.layers, r.hidden, r.heads, r.intermediate) == (4, 256, 4, 1024)
    assert r.hub_id == "google/bert_uncased_L-4_H-256_A-4"
    assert get_rung("ernie-nano").hub_id == "nghuyong/ernie-3.0-nano-zh"
    with pytest.raises(ConfigError):
        get_rung("bert-huge")


def test_yaml_ladder(tmp_path, minilm_dir):
    p = tmp_path / "ladder.yaml"
    p.write_text(f"rungs:\n  - name: a\n    layers: 2\n    hidden: 128\n"
                 f"  - name: local\n    hub_id: {minilm_dir}\n")
    lad = load_ladder_yaml(p)
    assert lad["a"].heads == 2 and lad["a"].intermediate == 512
    assert (lad["local"].layers, lad["local"].hidden) == (6, 384)
    assert resolve_rung(f"{p}:a").hidden == 128
    bad = tmp_path / "bad.yaml"
    bad.write_text("rungs:\n  - name: x\n    layers: 2\n")
    with pytest.raises(DataError):
        load_ladder_yaml(bad)


def test_models_cli_json(capsys):
    from densescale.cli import main

    with pytest.raises(SystemExit) as e:
        main(["models", "--ladder", "bert", "--json"])
    assert e.value.code == 0
    rows = json.loads(capsys.readouterr().out)
    by = {r["name"]: r for r in rows}
    assert by["bert-tiny"]["non_embedding_params"] == 512_128
    assert by["bert-base"]["non_embedding_params"] == 86_235_648
    assert len(rows) == 24
