"""The split a dataset id names (``beir/<name>/<split>``, ``irds:<id>``) is used by default."""

from __future__ import annotations

import shutil

import pytest

from densescale.data import open_dataset
from densescale.data.dataset import Dataset
from densescale.errors import DataError
from densescale.evaluate.cli import default_split


def test_eval_default_split_follows_the_id(datasets_dir):
    assert default_split(open_dataset("beir/scifact/train", data_dir_override=datasets_dir)) \
        == "train"
    assert default_split(open_dataset("beir/scifact", data_dir_override=datasets_dir)) == "test"


def test_training_reads_the_named_sub_split(scifact_path, tmp_path):
    """irds:msmarco-passage/train/judged names split 'train.judged': training's 'train' reads it
    (and never a split of another name)."""
    root = tmp_path / "sci"
    shutil.copytree(scifact_path, root, ignore=shutil.ignore_patterns("*.md"))
    (root / "qrels" / "train.tsv").rename(root / "qrels" / "train.judged.tsv")
    ds = Dataset(root, default_split="train.judged")
    assert ds.split_of("train") == "train.judged" and ds.split_of("test") == "test"
    pairs = ds.pairs("train")
    assert len(pairs) > 500 and pairs == ds.pairs("train.judged")
    assert ds.training_pairs("train") == ds.training_pairs("train.judged")
    ds.check_ids("train")
    with pytest.raises(DataError, match="no qrels for split 'train'"):
        Dataset(root).pairs("train")                      # no id named it: no guessing
    with pytest.raises(DataError, match="no qrels for split 'dev'"):
        ds.pairs("dev")
