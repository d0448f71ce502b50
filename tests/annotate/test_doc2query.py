from __future__ import annotations

import json
import math

import pytest

from densescale.cli import app
from densescale.data import read_annotation_set
from densescale.errors import ConfigError


def _run(args):
    app(["annotate", "doc2query", *args, "--no-progress"], standalone_mode=False)


def test_doc2query_tiny_t5(scifact_path, tiny_t5, tmp_path):
    out = tmp_path / "d2q"
    common = ["--data", str(scifact_path), "--out", str(out), "--model", str(tiny_t5),
              "--limit", "12", "--num-queries", "2", "--batch-size", "8",
              "--max-query-len", "6", "--max-input-len", "48", "--seed", "1"]
    _run(common)
    aset = read_annotation_set(out)
    c = aset.provenance["counts"]
    assert c["passages_selected"] == 12
    assert c["queries_written"] + 2 * c["failures"] == 24 and c["failures"] == 0
    assert len(aset.pairs) == len(set(aset.queries)) == 24
    assert all(q.strip() for q in aset.queries.values())
    assert aset.provenance["parameters"]["top_k"] == 10
    first = aset.queries
    # resume from the journal: same arguments regenerate nothing
    journal = (out / "journal.jsonl").read_text()
    _run(common)
    assert read_annotation_set(out).queries == first
    assert (out / "journal.jsonl").read_text() == journal
    with pytest.raises(ConfigError, match="different arguments"):
        _run([*common[:-1], "2"])  # another seed


def test_doc2query_train_from(scifact_path, tiny_t5, tmp_path):
    out = tmp_path / "ft"
    _run(["--data", str(scifact_path), "--out", str(out), "--model", str(tiny_t5),
          "--passages", "6", "--seed", "0", "--train-from", "train", "--train-steps", "3",
          "--train-batch-size", "4", "--max-query-len", "6", "--max-input-len", "48"])
    info = json.loads((out / "generator" / "finetune.json").read_text())
    assert info["pairs"] == 919 and info["config"]["steps"] == 3
    assert math.isfinite(info["last_loss"])
    aset = read_annotation_set(out)
    assert aset.provenance["parameters"]["base_model"] == str(tiny_t5)
    assert aset.provenance["model"] == str(out / "generator")
    assert aset.provenance["source"]["selection"]["mode"] == "random"
    assert len(aset.pairs) + aset.provenance["counts"]["failures"] == 6
