"""`densescale data validate`: PROVENANCE counts on real data; every problem named by file+line."""

from __future__ import annotations

import gzip
import json

from densescale.data.validate import validate_dataset


def _split(report, name):
    return report.counts["splits"][name]


def test_scifact_counts_match_provenance(scifact_path):
    r = validate_dataset(scifact_path)
    assert r.ok and r.layout == "beir"
    assert r.counts["docs"] == 5183 and r.counts["queries"] == 1109
    assert _split(r, "train") == {"queries": 809, "qrels": 919, "queries_with_positive": 809,
                                  "positive_docs": 565}
    assert _split(r, "test")["queries"] == 300 and _split(r, "test")["qrels"] == 339


def test_squad_counts_match_provenance(squad_path):
    r = validate_dataset(squad_path)
    assert r.ok
    assert r.counts["docs"] == 20958 and r.counts["queries"] == 98169
    assert _split(r, "train") == {"queries": 87599, "qrels": 87599,
                                  "queries_with_positive": 87599, "positive_docs": 18891}
    assert _split(r, "test") == {"queries": 10570, "qrels": 10570,
                                 "queries_with_positive": 10570, "positive_docs": 2067}


def test_arguana_dangling_qrels_are_problems(datasets_dir):
    r = validate_dataset(datasets_dir / "arguana")
    assert r.n_problems == 5
    assert all(p.message.startswith("qrel points to unknown document") for p in r.problems)
    assert {p.line for p in r.problems} == {180, 833, 1026, 1345, 1384}


def _corrupt_copy(src, dst):
    """A 40-doc slice of scifact with a bad JSON line, a duplicate id and dangling qrels."""
    dst.mkdir()
    (dst / "qrels").mkdir()
    docs = (src / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:40]
    ids = [json.loads(d)["_id"] for d in docs]
    docs[9] = docs[9][:-5]                         # line 10: truncated JSON
    docs.append(docs[3])                           # line 41: duplicate of line 4
    docs.append(json.dumps({"_id": "empty", "title": "t", "text": "  "}))  # line 42: empty text
    docs.append(json.dumps({"title": "no id", "text": "x"}))               # line 43: no _id
    (dst / "corpus.jsonl").write_text("\n".join(docs) + "\n", encoding="utf-8")
    queries = (src / "queries.jsonl").read_text(encoding="utf-8").splitlines()[:5]
    qids = [json.loads(q)["_id"] for q in queries]
    (dst / "queries.jsonl").write_bytes(("\n".join(queries) + "\n").encode()
                                        + b'{"_id": "bad", "text": "caf\xe9"}\n')  # line 6
    rows = ["query-id\tcorpus-id\tscore", f"{qids[0]}\t{ids[0]}\t1",
            f"{qids[1]}\tno-such-doc\t1",          # line 3: unknown doc
            f"ghost\t{ids[1]}\t1",                 # line 4: unknown query
            f"{qids[2]}\t{ids[2]}"+"\t1\textra\tcols",  # line 5: malformed TSV
            f"{qids[2]}\t{ids[2]}\tone"]           # line 6: bad score
    (dst / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n")
    return dst


def test_corrupted_copy_reports_every_problem(scifact_path, tmp_path):
    d = _corrupt_copy(scifact_path, tmp_path / "broken")
    r = validate_dataset(d)
    got = {(p.path.rsplit("/", 1)[-1], p.line): p.message for p in r.problems}
    assert not r.ok and r.n_problems == len(got) == 9
    assert got[("corpus.jsonl", 10)].startswith("malformed JSON")
    assert got[("corpus.jsonl", 41)].startswith("duplicate document id")
    assert got[("corpus.jsonl", 42)].startswith("empty text")
    assert got[("corpus.jsonl", 43)] == "missing field '_id'"
    assert got[("queries.jsonl", 6)].startswith("undecodable bytes")
    assert got[("test.tsv", 3)] == "qrel points to unknown document 'no-such-doc'"
    assert got[("test.tsv", 4)] == "qrel points to unknown query 'ghost'"
    assert got[("test.tsv", 5)].startswith("malformed TSV")
    assert "not a number" in got[("test.tsv", 6)]
    limited = validate_dataset(d, max_problems=2)
    assert limited.n_problems == 9 and len(limited.problems) == 2
    assert limited.to_dict()["problems_truncated"] is True


def test_truncated_gzip_and_msmarco_duplicates(tmp_path):
    root = tmp_path / "msm"
    root.mkdir()
    blob = gzip.compress("".join(f"{i}\tpassage {i}\n" for i in range(2000)).encode())
    (root / "collection.tsv.gz").write_bytes(blob[: len(blob) // 2])
    (root / "queries.train.tsv").write_text("1\tq one\n1\tq again\n")
    (root / "qrels.train.tsv").write_text("1\t0\t0\t1\n")
    r = validate_dataset(root)
    msgs = [str(p) for p in r.problems]
    assert r.layout == "msmarco"
    assert any("collection.tsv.gz" in m and "compressed stream" in m for m in msgs)
    assert any("queries.train.tsv:2: duplicate query id '1'" in m for m in msgs)
