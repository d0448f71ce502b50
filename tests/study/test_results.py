"""``read_results``: the one reader of CSV, Parquet, the results database and a study spec."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from densescale.errors import DataError
from densescale.study.results import read_results


def _frame() -> pd.DataFrame:
    n = np.repeat([1e6, 4e6, 16e6], 3)
    d = np.tile([100, 1000, 10000], 3)
    return pd.DataFrame({"rung": [f"r{i // 3}" for i in range(9)], "n": n, "d": d,
                         "annotation": "human", "seed": 1,
                         "contrastive_entropy": 1.0 + 1e3 / n ** 0.3 + 10 / d ** 0.5,
                         "contrastive_entropy_stderr": 0.01, "ndcg@10": 0.3,
                         "status": "done"})


def test_csv_columns_rows_status_and_metric(tmp_path):
    df = _frame()
    df.loc[[0, 7], "status"] = "pending"
    df.loc[[0, 7], "contrastive_entropy"] = np.nan
    df["learned"] = ["True", "", "false", "1", "0", "yes", "True", "", "TRUE"]
    df["invalid_reason"] = None
    path = tmp_path / "r.csv"
    df.to_csv(path, index=False)
    frame = read_results(path)
    assert list(frame.columns[:8]) == ["n", "d", "annotation", "y", "sigma", "heldout",
                                       "learned", "row"]
    # an export of before results schema 4: "ndcg@10" is read as ndcg_at_10
    assert {"rung", "seed", "ndcg_at_10", "contrastive_entropy", "invalid_reason"} <= set(frame)
    assert "ndcg@10" not in frame
    assert len(frame) == 7 and frame["row"].tolist() == [3, 4, 5, 6, 7, 8, 10]  # CSV lines
    assert frame["learned"].tolist() == [None, False, True, False, True, True, True]
    assert frame["y"].tolist() == pytest.approx(frame["contrastive_entropy"].tolist())
    assert (frame["sigma"] == 0.01).all() and not frame["heldout"].any()
    assert frame.attrs == {"source": str(path), "metric": "contrastive_entropy"}
    every = read_results(path, metric=None, done_only=False)
    assert len(every) == 9 and "y" not in every and every["row"].iloc[0] == 2
    ndcg = read_results(path, metric="ndcg@10")
    assert (ndcg["y"] == 0.3).all() and ndcg["sigma"].isna().all()
    assert ndcg.attrs["metric"] == "ndcg_at_10"
    assert (read_results(path, metric="nDCG@10")["y"] == 0.3).all()  # ir_measures name
    with pytest.raises(DataError, match="metric column 'map' not found"):
        read_results(path, metric="map")
    df.loc[2, "learned"] = "maybe"
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"r.csv:4: learned must be true/false, got 'maybe'"):
        read_results(path)
    with pytest.raises(DataError, match="not found"):
        read_results(tmp_path / "missing.csv")
    df["status"] = "failed"
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match="no result rows with status 'done'"):
        read_results(path)


def test_parquet_keeps_values(tmp_path):
    df = _frame()
    df["heldout"] = df["n"] == df["n"].max()
    df["learned"] = [True, False, None] * 3
    df.to_parquet(tmp_path / "r.parquet", index=False)
    frame = read_results(tmp_path / "r.parquet")
    assert frame["row"].tolist() == list(range(1, 10))
    assert frame["heldout"].sum() == 3 and frame["learned"].tolist()[:3] == [True, False, None]
    assert frame["y"].tolist() == pytest.approx(df["contrastive_entropy"].tolist())
    df = df.rename(columns={"ndcg@10": "ndcg_at_10"}).assign(**{"bm25_ndcg@10": 0.5})
    df.to_parquet(tmp_path / "r.parquet", index=False)
    frame = read_results(tmp_path / "r.parquet", metric="ndcg_at_10")
    assert (frame["y"] == 0.3).all() and (frame["bm25_ndcg_at_10"] == 0.5).all()


def test_database_path_url_and_errors(tmp_path):
    df = _frame()
    df.insert(0, "id", np.arange(11, 20))
    df.loc[0, "status"] = "failed"
    df["heldout"] = df["n"] == df["n"].max()
    url = f"sqlite:///{tmp_path / 'study.db'}"
    engine = sa.create_engine(url)
    df.to_sql("runs", engine, index=False)
    engine.dispose()
    for source in (url, str(tmp_path / "study.db")):
        frame = read_results(source)
        assert len(frame) == 8 and frame["row"].iloc[0] == 12       # the table's id
        assert frame["heldout"].sum() == 3 and np.isfinite(frame["sigma"]).all()
        assert "learned" not in frame                               # not recorded: unknown
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'other.db'}")
    df.to_sql("points", engine, index=False)
    engine.dispose()
    with pytest.raises(DataError, match="table 'runs' not found"):
        read_results(tmp_path / "other.db")
    with pytest.raises(DataError, match="not found"):
        read_results(tmp_path / "nope.db")


def test_spec_goes_through_the_study_driver(tmp_path, monkeypatch):
    import densescale.study.driver as driver

    df = _frame()
    df.loc[8, "status"] = "pending"
    seen = []

    def fake(path):
        seen.append(path)
        return df

    monkeypatch.setattr(driver, "results_frame", fake)
    frame = read_results(tmp_path / "spec.yaml")
    assert seen == [str(tmp_path / "spec.yaml")] and len(frame) == 8
    assert len(read_results(tmp_path / "spec.yml", done_only=False)) == 9
