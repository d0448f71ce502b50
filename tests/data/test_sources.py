"""Dataset sources: irds:<id> (a real ir_datasets dataset over local files), hf:<folder>
(save_to_disk, parquet, JSONL), beir/<name>[/<split>] aliases, and the missing-extra errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from densescale.data import open_dataset
from densescale.data.sources import SOURCE_FILE, safe_name
from densescale.errors import DataError, DenseScaleError


def _scifact_sample(scifact_path: Path, n_docs: int = 8):
    """A few real SciFact documents, and the test queries/qrels that point into them."""
    docs = []
    with open(scifact_path / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            docs.append(json.loads(line))
    qrels = [line.split("\t") for line in
             (scifact_path / "qrels" / "test.tsv").read_text().splitlines()[1:]]
    keep = {d["_id"] for d in docs}
    qrels = [(q, d, int(s)) for q, d, s in qrels if d in keep][:3]
    want = {d for _, d, _ in qrels}
    extra = [d for d in docs if d["_id"] not in want][: n_docs - len(want)]
    docs = [d for d in docs if d["_id"] in want] + extra
    queries = {}
    with open(scifact_path / "queries.jsonl", encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            queries[rec["_id"]] = rec["text"]
    return docs, {q: queries[q] for q, _, _ in qrels}, qrels


# ---------------------------------------------------------------- ir_datasets


@pytest.fixture
def fake_irds(tmp_path, scifact_path, monkeypatch):
    """Registers ``densescale-test/scifact`` (+ ``/test``) in the real ir_datasets registry,
    backed by local TSV/TREC files holding real SciFact ids: no download."""
    import ir_datasets as irds
    from ir_datasets.datasets.base import Dataset
    from ir_datasets.formats import TrecQrels, TsvDocs, TsvQueries
    from ir_datasets.util import LocalDownload

    docs, queries, qrels = _scifact_sample(scifact_path)
    src = tmp_path / "irds-src"
    src.mkdir()
    (src / "docs.tsv").write_text("".join(f"{d['_id']}\t{d['text'][:200]}\n" for d in docs))
    (src / "queries.tsv").write_text("".join(f"{q}\t{t}\n" for q, t in queries.items()))
    (src / "qrels.txt").write_text("".join(f"{q} 0 {d} {s}\n" for q, d, s in qrels))
    parent = Dataset(TsvDocs(LocalDownload(src / "docs.tsv")),
                     TsvQueries(LocalDownload(src / "queries.tsv")))
    test = Dataset(parent, TrecQrels(LocalDownload(src / "qrels.txt"), {}))
    monkeypatch.setitem(irds.registry._registered, "densescale-test/scifact", parent)
    monkeypatch.setitem(irds.registry._registered, "densescale-test/scifact/test", test)
    return docs, queries, qrels


def test_irds_split_id_exports_and_reopens_offline(fake_irds, tmp_path, monkeypatch):
    docs, queries, qrels = fake_irds
    data = tmp_path / "data"
    data.mkdir()
    ds = open_dataset("irds:densescale-test/scifact/test", data_dir_override=data)
    assert ds.name == safe_name("irds", "densescale-test/scifact/test")
    assert ds.path == data / ds.name and (ds.path / SOURCE_FILE).is_file()
    assert ds.default_split == "test" and ds.splits() == ["test"]
    assert ds.source == "irds:densescale-test/scifact/test"
    assert list(ds.corpus.ids) == [d["_id"] for d in docs]
    assert ds.corpus.get(docs[0]["_id"]).text == docs[0]["text"][:200]
    assert ds.queries() == queries
    assert [(p.query_id, p.doc_id) for p in ds.pairs("test")] == [(q, d) for q, d, _ in qrels]
    ds.check_ids("test")
    # the copy is reused: a second open needs no ir_datasets at all
    monkeypatch.setitem(sys.modules, "ir_datasets", None)
    again = open_dataset("irds:densescale-test/scifact/test", data_dir_override=data)
    assert again.path == ds.path and again.default_split == "test"


def test_irds_collection_id_takes_its_childrens_qrels(fake_irds, tmp_path):
    ds = open_dataset("irds:densescale-test/scifact", data_dir_override=tmp_path)
    assert ds.splits() == ["test"] and ds.default_split is None
    assert len(ds.pairs("test")) == len(fake_irds[2])


def test_irds_unknown_id_suggests_close_ones(fake_irds, tmp_path):
    with pytest.raises(DataError, match="no dataset 'densescale-test/scifakt/test'.*did you mean"
                                        " densescale-test/scifact/test"):
        open_dataset("irds:densescale-test/scifakt/test", data_dir_override=tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_irds_read_only_data_dir_falls_back_to_the_cache(fake_irds, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o555)
    try:
        ds = open_dataset("irds:densescale-test/scifact/test", data_dir_override=shared)
    finally:
        shared.chmod(0o755)
    assert ds.path.parent.name == "datasets" and not any(shared.iterdir())


def test_irds_without_the_package_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ir_datasets", None)
    with pytest.raises(DenseScaleError, match=r"pip install 'densescale\[irds\]'"):
        open_dataset("irds:beir/scifact/test", data_dir_override=tmp_path)


# ---------------------------------------------------------------- beir/ aliases


def test_beir_alias_names_the_known_dataset_and_split(datasets_dir):
    ds = open_dataset("beir/scifact/test", data_dir_override=datasets_dir)
    assert ds.name == "scifact" and ds.default_split == "test" and ds.source == "beir/scifact/test"
    plain = open_dataset("beir/scifact", data_dir_override=datasets_dir)
    assert plain.path == ds.path and plain.default_split is None
    with pytest.raises(DataError, match="'scifact' has no split 'dev' \\(have: test, train\\)"):
        open_dataset("beir/scifact/dev", data_dir_override=datasets_dir)
    with pytest.raises(DataError, match="beir/<name>/<split>"):
        open_dataset("beir/scifact/test/x", data_dir_override=datasets_dir)


# ---------------------------------------------------------------- Hugging Face datasets


def _hf_records(scifact_path):
    docs, queries, qrels = _scifact_sample(scifact_path)
    corpus = {"_id": [d["_id"] for d in docs], "title": [d["title"] for d in docs],
              "text": [d["text"] for d in docs]}
    qs = {"_id": list(queries), "text": list(queries.values())}
    qr = {"query-id": [q for q, _, _ in qrels], "corpus-id": [d for _, d, _ in qrels],
          "score": [s for _, _, s in qrels]}
    return corpus, qs, qr


def _check(ds, corpus, qs, qr):
    assert list(ds.corpus.ids) == corpus["_id"]
    assert ds.corpus.get(corpus["_id"][1]).title == corpus["title"][1]
    assert ds.queries() == dict(zip(qs["_id"], qs["text"]))
    assert [(p.query_id, p.doc_id) for p in ds.pairs("test")] == \
        list(zip(qr["query-id"], qr["corpus-id"]))


def test_hf_save_to_disk_dataset_dict(tmp_path, scifact_path):
    import datasets

    corpus, qs, qr = _hf_records(scifact_path)
    dd = datasets.DatasetDict({"corpus": datasets.Dataset.from_dict(corpus),
                               "queries": datasets.Dataset.from_dict(qs),
                               "test": datasets.Dataset.from_dict(qr)})
    dd.save_to_disk(str(tmp_path / "sf"))
    ds = open_dataset(f"hf:{tmp_path / 'sf'}", data_dir_override=tmp_path / "data")
    assert ds.name.startswith("hf_sf-") and ds.splits() == ["test"]
    _check(ds, corpus, qs, qr)


def test_hf_parquet_and_jsonl_folders(tmp_path, scifact_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    corpus, qs, qr = _hf_records(scifact_path)
    pqdir, jdir = tmp_path / "pq", tmp_path / "jl"
    (pqdir / "qrels").mkdir(parents=True)
    pq.write_table(pa.table(corpus), pqdir / "corpus.parquet")
    pq.write_table(pa.table(qs), pqdir / "queries.parquet")
    pq.write_table(pa.table(qr), pqdir / "qrels" / "test.parquet")
    (jdir / "qrels").mkdir(parents=True)
    for name, cols in (("corpus", corpus), ("queries", qs), ("qrels/test", qr)):
        rows = [dict(zip(cols, vals)) for vals in zip(*cols.values())]
        (jdir / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for folder in (pqdir, jdir):
        _check(open_dataset(f"hf:{folder}", data_dir_override=tmp_path / "data"), corpus, qs, qr)


def test_hf_bad_inputs_name_the_source(tmp_path, monkeypatch):
    bad = tmp_path / "bad"
    (bad / "qrels").mkdir(parents=True)
    (bad / "corpus.jsonl").write_text(json.dumps({"doc": "x", "text": "y"}) + "\n")
    (bad / "queries.jsonl").write_text(json.dumps({"_id": "q", "text": "t"}) + "\n")
    (bad / "qrels" / "test.jsonl").write_text(json.dumps({"qid": "q", "pid": "x"}) + "\n")
    with pytest.raises(DataError, match=r"corpus.jsonl: no document id column \(tried _id"):
        open_dataset(f"hf:{bad}", data_dir_override=tmp_path / "data")
    (bad / "corpus.jsonl").write_text(json.dumps({"pid": "x", "text": "y"}) + "\n")
    (bad / "qrels" / "test.jsonl").write_text(json.dumps({"qid": "q", "pid": "x",
                                                          "label": 0.5}) + "\n")
    with pytest.raises(DataError, match=r"qrels test record 1\): relevance score 0.5"):
        open_dataset(f"hf:{bad}", data_dir_override=tmp_path / "data")
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())
    (tmp_path / "pq" / "qrels").mkdir(parents=True)
    for name in ("corpus", "queries", "qrels/test"):
        (tmp_path / "pq" / f"{name}.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(DenseScaleError, match=r"pip install 'densescale\[parquet\]'"):
        open_dataset(f"hf:{tmp_path / 'pq'}", data_dir_override=tmp_path / "data")


def test_hf_without_datasets_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(DenseScaleError, match=r"pip install 'densescale\[hf\]'"):
        open_dataset("hf:BeIR/scifact", data_dir_override=tmp_path)
