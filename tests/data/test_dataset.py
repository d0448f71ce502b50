"""Dataset API over the on-disk index: the three layouts, gzip, ids, rows, pickling."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from densescale.data import Corpus, Doc, Pair, open_dataset
from densescale.errors import DataError


@pytest.mark.parametrize("gz", [False, True])
def test_beir_layout_roundtrip(tmp_path, beir_factory, gz):
    ds = open_dataset(beir_factory(tmp_path / "tiny", gz=gz))
    assert ds.layout.name == "beir" and ds.name == "tiny"
    c = ds.corpus
    assert len(c) == 6 and c[0] == Doc("d0", "T0", "text of doc 0")
    assert c[-1].id == "d5"
    assert list(c.ids) == [f"d{i}" for i in range(6)]
    assert c.texts([0, 1]) == ["T0 text of doc 0", "text of doc 1"]
    assert c.rows_of(["d3", "d0", "d3"]).tolist() == [3, 0, 3]
    assert c.rows_of(np.array(["d5"])).dtype == np.int64
    assert "d2" in c and "nope" not in c and c.get("d4").text == "text of doc 4"
    assert ds.splits() == ["test", "train"]
    assert ds.queries()["q1"] == "query 1"
    assert ds.qrels("train") == {"q0": {"d0": 1, "d1": 1}, "q1": {"d2": 1, "d3": 0}}
    assert ds.pairs("train") == [Pair("q0", "d0"), Pair("q0", "d1"), Pair("q1", "d2")]
    assert ds.qrels("test")["q2"] == {"d4": 2}
    with pytest.raises(DataError, match="unknown document id 'zzz'"):
        c.rows_of(["d1", "zzz"])
    assert c.rows_of(["d1", "zzz", "d1-longer-than-any-id"], strict=False).tolist() == [1, -1, -1]
    with pytest.raises(DataError, match="no qrels for split 'dev'"):
        ds.qrels("dev")
    with pytest.raises(IndexError):
        c[6]


def test_batches_docs_and_pickle(tmp_path, beir_factory):
    c = open_dataset(beir_factory(tmp_path / "tiny")).corpus
    batches = list(c.iter_batches(4))
    assert [b[0].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5]]
    assert batches[1][1] == c.texts([4, 5])
    assert c.docs(np.array([5, 2])) == [c[5], c[2]]
    c2 = pickle.loads(pickle.dumps(c))
    assert c2.texts([1, 2]) == c.texts([1, 2]) and c2.rows_of(["d5"]).tolist() == [5]


def test_in_memory_corpus_matches_index(tmp_path, beir_factory):
    disk = open_dataset(beir_factory(tmp_path / "tiny")).corpus
    mem = Corpus(list(disk.ids), [d.title for d in disk.docs(range(6))],
                 [d.text for d in disk.docs(range(6))])
    rows = np.array([5, 0, 3, 3])
    assert mem.texts(rows) == disk.texts(rows)
    assert mem.rows_of(["d4", "d1"]).tolist() == disk.rows_of(["d4", "d1"]).tolist() == [4, 1]
    assert pickle.loads(pickle.dumps(mem)).texts([2]) == mem.texts([2])
    empty = Corpus([], [], [])
    assert len(empty) == 0 and empty.rows_of(["x"], strict=False).tolist() == [-1]


def test_msmarco_layout(tmp_path, writer):
    root = tmp_path / "msm"
    writer(root / "collection.tsv", "0\tfirst passage\n1\tsecond passage\n2\tthird\n", gz=True)
    writer(root / "queries.train.tsv", "10\twhat is first\n11\twhat is third\n")
    writer(root / "queries.dev.small.tsv", "20\tdev query\n")
    writer(root / "qrels.train.tsv", "10\t0\t0\t1\n11\t0\t2\t1\n")
    writer(root / "qrels.dev.small.tsv", "20 0 1 1\n")
    ds = open_dataset(root)
    assert ds.layout.name == "msmarco"
    assert ds.splits() == ["dev.small", "train"]
    assert ds.corpus[1] == Doc("1", "", "second passage")
    assert ds.corpus.texts([2]) == ["third"]
    assert ds.queries() == {"10": "what is first", "11": "what is third", "20": "dev query"}
    assert ds.pairs("train") == [Pair("10", "0"), Pair("11", "2")]
    assert ds.qrels("dev.small") == {"20": {"1": 1}}


def test_t2ranking_layout_chinese(tmp_path, writer):
    root = tmp_path / "t2"
    writer(root / "collection.tsv", "pid\tpassage\n0\t北京是中国的首都。\n1\t上海是一座城市。\n")
    writer(root / "queries.train.tsv", "qid\ttext\n7\t中国的首都是哪里\n")
    writer(root / "queries.dev.tsv", "qid\ttext\n8\t上海\n")
    writer(root / "qrels.retrieval.train.tsv", "qid\tpid\n7\t0\n")
    writer(root / "qrels.retrieval.dev.tsv", "qid\tpid\n8\t1\n")
    writer(root / "qrels.train.tsv", "qid\t-\tpid\trel\n7\t0\t0\t3\n")  # graded, not used
    ds = open_dataset(root)
    assert ds.layout.name == "t2ranking" and ds.splits() == ["dev", "train"]
    assert ds.corpus.texts([0]) == ["北京是中国的首都。"]
    assert ds.corpus.rows_of(["1"]).tolist() == [1]
    assert ds.queries()["7"] == "中国的首都是哪里"
    assert ds.pairs("train") == [Pair("7", "0")] and ds.pairs("dev") == [Pair("8", "1")]


def test_resolution_by_name_and_clear_errors(tmp_path, beir_factory, monkeypatch):
    beir_factory(tmp_path / "dd" / "mine")
    assert open_dataset("mine", data_dir_override=tmp_path / "dd").name == "mine"
    monkeypatch.setenv("DENSESCALE_DATA_DIR", str(tmp_path / "dd"))
    assert len(open_dataset("mine").corpus) == 6
    with pytest.raises(DataError, match="put it there"):
        open_dataset("no-such-thing")
    with pytest.raises(DataError, match="downloading is disabled"):
        open_dataset("fiqa", download=False)
    (tmp_path / "junk").mkdir()
    with pytest.raises(DataError, match="no known dataset layout"):
        open_dataset(tmp_path / "junk")


def test_malformed_corpus_names_file_and_line(tmp_path, writer, to_jsonl):
    root = tmp_path / "bad"
    writer(root / "corpus.jsonl", to_jsonl([{"_id": "a", "text": "x"}]) + "{oops\n")
    writer(root / "queries.jsonl", to_jsonl([{"_id": "q", "text": "y"}]))
    with pytest.raises(DataError, match=r"corpus\.jsonl:2: malformed JSON"):
        open_dataset(root)


def test_scifact_and_squad(scifact_path, squad_path):
    sf = open_dataset(scifact_path)
    assert len(sf.corpus) == 5183 and len(sf.queries()) == 1109
    assert len(sf.pairs("train")) == 919 and len(sf.pairs("test")) == 339
    sq = open_dataset(squad_path)
    assert len(sq.corpus) == 20958
    ids = list(sq.corpus.ids)
    assert (sq.corpus.rows_of(ids) == np.arange(len(ids))).all()
    assert sq.corpus.get("dev-000-000").title == "Super Bowl 50"
    pos = [p.doc_id for p in sq.pairs("test")]
    assert (sq.corpus.rows_of(pos) >= 0).all()
