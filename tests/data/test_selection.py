"""The selection split is disjoint from the reporting split and from every training subset."""

from __future__ import annotations

import pytest

from densescale.data import SELECTION, nested_subsets, open_dataset
from densescale.errors import DataError


@pytest.mark.parametrize("name", ["squad_v11", "scifact"])
def test_selection_disjoint_from_report_and_training(datasets_dir, name):
    ds = open_dataset(datasets_dir / name)
    sel = ds.selection()
    assert sel.carved and sel.source == "train"
    sel_q = set(ds.qrels(SELECTION))
    assert sel_q == set(sel.qrels) and len(sel_q) >= 10
    assert not sel_q & set(ds.qrels("test"))  # never the reporting split
    train = ds.training_pairs("train")
    assert len(train) < len(ds.pairs("train"))
    sel_docs = {d for docs in sel.qrels.values() for d in docs}
    assert sel_docs <= sel.held_out_docs
    for d, pairs in nested_subsets(train, [10, 100, len(train)], seed=3).items():
        assert not {p.query_id for p in pairs} & sel_q
        assert not {p.doc_id for p in pairs} & sel.held_out_docs


def test_squad_is_carved_by_article(squad_path):
    ds = open_dataset(squad_path)
    sel = ds.selection()
    assert sel.group_by == "title"
    held_titles = {ds.corpus.get(d).title for d in sel.held_out_docs}
    train_titles = {ds.corpus.get(p.doc_id).title for p in ds.training_pairs("train")}
    assert held_titles and not held_titles & train_titles


def test_selection_is_deterministic(scifact_path):
    a = open_dataset(scifact_path).selection()
    b = open_dataset(scifact_path).selection()
    assert a.qrels == b.qrels and a.held_out_docs == b.held_out_docs


def test_dev_split_is_used_when_present(tmp_path, scifact_path):
    import shutil

    for f in ("corpus.jsonl", "queries.jsonl"):
        (tmp_path / f).symlink_to(scifact_path / f)
    (tmp_path / "qrels").mkdir()
    shutil.copy(scifact_path / "qrels" / "test.tsv", tmp_path / "qrels" / "test.tsv")
    shutil.copy(scifact_path / "qrels" / "train.tsv", tmp_path / "qrels" / "dev.tsv")
    ds = open_dataset(tmp_path)
    sel = ds.selection()
    assert sel.source == "dev" and not sel.carved
    assert ds.qrels(SELECTION) == ds.qrels("dev")


def test_too_few_queries_is_a_clear_error(tmp_path, scifact_path):
    for f in ("corpus.jsonl", "queries.jsonl"):
        (tmp_path / f).symlink_to(scifact_path / f)
    (tmp_path / "qrels").mkdir()
    lines = (scifact_path / "qrels" / "train.tsv").read_text().splitlines()[:6]
    (tmp_path / "qrels" / "train.tsv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="too few"):
        open_dataset(tmp_path).selection()
