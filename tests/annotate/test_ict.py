from __future__ import annotations

import json

import numpy as np
import pytest

from densescale.annotate.base import run_annotation, select_items
from densescale.annotate.ict import ICTAnnotator, ict_pair, kept_sentences
from densescale.annotate.sentences import words
from densescale.cli import app
from densescale.data import open_dataset, read_annotation_set


def _read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def test_ict_rule_branches():
    text = "First sentence is here. Second one follows now. Third sentence ends it."
    sents = kept_sentences(text)
    assert len(sents) == 3
    assert ict_pair(text, 0.2, 0.99) == (sents[0], " ".join(sents[1:]))  # coin < .5: first
    assert ict_pair(text, 0.7, 0.99) == (sents[2], " ".join(sents[:2]))  # random: last
    assert ict_pair(text, 0.7, 0.4) == (sents[1], f"{sents[0]} {sents[2]}")
    # short sentences (< 3 words) are dropped before the rule applies
    short = "Hi there. " + " ".join(f"w{i}" for i in range(30)) + "."
    q, p = ict_pair(short, 0.2, 0.0)
    assert q == "Hi there. w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15 w16 w17"
    assert p == " ".join(f"w{i}" for i in range(10, 30)) + "."
    assert len(words(q)) == 20 and len(words(p)) == 20
    q, p = ict_pair("中文句子。再来一句吧！", 0.2, 0.0)
    assert (q, p) == ("中文句子。", "再来一句吧！")


def test_ict_scifact(scifact_path, tmp_path):
    out = tmp_path / "ict"
    app(["annotate", "ict", "--data", str(scifact_path), "--out", str(out), "--seed", "3",
         "--no-progress"], standalone_mode=False)
    ds = open_dataset(scifact_path)
    human = ds.pairs("train")
    aset = read_annotation_set(out)
    assert len(aset.pairs) == len(human) == aset.provenance["counts"]["passages_selected"]
    assert [p.doc_id for p in aset.pairs] == [p.doc_id for p in human]  # one per human pair
    assert len(set(aset.queries)) == len(aset.queries) == len(human)
    assert (out / "failures.jsonl").read_text() == ""
    pos = _read_jsonl(out / "positives.jsonl")
    assert [r["query_id"] for r in pos] == [p.query_id for p in aset.pairs]
    n_first = n_fallback = 0
    for rec, pair in zip(pos[:300], aset.pairs[:300]):
        text = ds.corpus.get(pair.doc_id).text
        query = aset.queries[pair.query_id]
        sents = kept_sentences(text)
        if len(sents) < 2:
            n_fallback += 1
            assert query == " ".join(text.split()[:20])
            assert rec["text"] == " ".join(text.split()[-20:])
        else:
            assert query in sents
            assert query not in rec["text"]
            others = [s for s in sents if s != query]
            assert rec["text"] == " ".join(others)
            n_first += query == sents[0]
    assert 0.4 < n_first / (300 - n_fallback) < 0.85  # P(first) = 0.5 + 0.5 / n_sentences
    assert aset.provenance["method"] == "ict" and aset.provenance["seed"] == 3
    assert aset.provenance["source"]["dataset"] == "scifact"


def test_ict_deterministic_and_selection_modes(scifact_path, tmp_path):
    ds = open_dataset(scifact_path)
    items = select_items(ds, "train", unique_passages=True)
    assert len({it.doc_id for it in items}) == len(items) < len(ds.pairs("train"))
    sets = []
    for name in ("a", "b"):
        run_annotation(ICTAnnotator(seed=5), ds, items[:50], tmp_path / name, {"seed": 5},
                       journaled=False, progress=False)
        sets.append(read_annotation_set(tmp_path / name).queries)
    assert sets[0] == sets[1]
    sampled = select_items(ds, passages=40, seed=1)
    assert len(sampled) == 40 and sampled == select_items(ds, passages=40, seed=1)
    assert sampled != select_items(ds, passages=40, seed=2)
    ids = [it.doc_id for it in sampled]
    assert len(set(ids)) == 40 and set(ids) <= set(ds.corpus.ids)
    assert np.all(np.diff(ds.corpus.rows_of(ids)) > 0)


def test_ids_stable_for_repeated_passages(tmp_path):
    d = tmp_path / "ds"
    (d / "qrels").mkdir(parents=True)
    (d / "corpus.jsonl").write_text(
        "\n".join(json.dumps({"_id": f"d{i}", "title": "", "text": f"Sentence one of doc {i}. "
                              f"Sentence two of doc {i}. And a third one here."})
                  for i in range(3)) + "\n")
    (d / "queries.jsonl").write_text(
        "\n".join(json.dumps({"_id": f"q{i}", "text": f"q {i}"}) for i in range(5)) + "\n")
    (d / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq0\td1\t1\nq1\td1\t1\nq2\td0\t1\nq3\td1\t1\nq4\td2\t0\n")
    app(["annotate", "ict", "--data", str(d), "--out", str(tmp_path / "o"), "--no-progress"],
        standalone_mode=False)
    aset = read_annotation_set(tmp_path / "o")
    assert [p.query_id for p in aset.pairs] == ["ict-d1-0", "ict-d1-1", "ict-d0-0", "ict-d1-2"]
    app(["annotate", "ict", "--data", str(d), "--out", str(tmp_path / "u"), "--no-progress",
         "--unique-passages"], standalone_mode=False)
    assert [p.query_id for p in read_annotation_set(tmp_path / "u").pairs] == ["ict-d1-0",
                                                                                "ict-d0-0"]


def test_refuses_to_overwrite_foreign_folder(tmp_path, scifact_path):
    from densescale.errors import ConfigError

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError):
        app(["annotate", "ict", "--data", str(scifact_path), "--out", str(tmp_path / "mine"),
             "--no-progress"], standalone_mode=False)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
