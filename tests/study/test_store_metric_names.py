"""Results schema 4: SQL-safe metric columns; older databases are renamed in place."""

from __future__ import annotations

import sqlalchemy as sa

from densescale.study import SCHEMA_VERSION, Store
from densescale.study.store import V4_RENAMES, meta_table, runs_table


def test_schema_3_metric_columns_are_renamed_in_place(tmp_path):
    """A database of schema 3 keeps its values under the new names, and plain SQL reads them
    without quoting."""
    back = {new: old for old, new in V4_RENAMES.items()}
    db = tmp_path / "old.db"
    eng = sa.create_engine(f"sqlite:///{db}")
    old = sa.MetaData()
    meta_table.to_metadata(old)
    cols = []
    for c in runs_table.columns:
        cc = c._copy()
        cc.name = cc.key = back.get(c.name, c.name)
        cols.append(cc)
    sa.Table("runs", old, *cols, sa.UniqueConstraint("spec_hash", "point_key"))
    with eng.begin() as c:
        old.create_all(c)
        c.execute(sa.text("INSERT INTO meta VALUES ('schema_version', '3')"))
        c.execute(sa.text('INSERT INTO runs (spec_hash, point_key, rung, d, annotation, seed, '
                          'heldout, status, attempts, "ndcg@10", "bm25_recall@1000", map) '
                          "VALUES ('h','p','r',10,'human',1,0,'done',1,0.31,0.9,0.2)"))
    eng.dispose()
    assert "ndcg@10" in back.values() and len(V4_RENAMES) == 8
    store = Store(db)
    assert store.schema_version() == SCHEMA_VERSION == 4
    names = {c["name"] for c in sa.inspect(store.engine).get_columns("runs")}
    assert not any("@" in n for n in names)
    row = store.row("h", "p")
    assert row["ndcg_at_10"] == 0.31 and row["bm25_recall_at_1000"] == 0.9 and row["map"] == 0.2
    with store.engine.connect() as c:
        assert c.execute(sa.text("SELECT ndcg_at_10 FROM runs")).scalar() == 0.31
    store.upsert("h", "p", **{"mrr@10": 0.4})  # the old names still write the new columns
    assert Store(db).row("h", "p")["mrr_at_10"] == 0.4
