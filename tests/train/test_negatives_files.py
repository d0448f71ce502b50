"""Hard-negative files for training: TREC runs (tab or space separated), TSV, on SciFact ids."""

from __future__ import annotations

import pytest

from densescale.data import open_dataset
from densescale.errors import DataError
from densescale.train.negatives import HardNegatives


@pytest.fixture(scope="module")
def scifact(scifact_path):
    return open_dataset(scifact_path)


def _ranking(ds, n_queries=3, depth=6):
    """{qid: docs best first} over real SciFact train queries and documents."""
    qids = list(ds.qrels("train"))[:n_queries]
    ids = list(ds.corpus.ids[50:50 + depth * n_queries])
    return {q: ids[i * depth:(i + 1) * depth] for i, q in enumerate(qids)}


@pytest.mark.parametrize("sep", ["\t", " "])
def test_a_trec_run_gives_its_documents_not_q0(scifact, tmp_path, sep):
    ranking = _ranking(scifact)
    lines = [sep.join([q, "Q0", d, str(r), f"{20 - r:.2f}", "bm25"])
             for q, docs in ranking.items() for r, d in enumerate(docs, 1)]
    path = tmp_path / "bm25.trec"
    path.write_text("\n".join(reversed(lines)) + "\n")  # file order must not matter
    qids = list(ranking) + ["no-negatives"]
    hard = HardNegatives(path, scifact.corpus, qids)
    assert hard.lens.tolist() == [6, 6, 6, 0]
    for i, q in enumerate(ranking):  # each query's documents, best first
        rows = hard.rows[hard.offsets[i]:hard.offsets[i + 1]]
        assert [scifact.corpus.ids[r] for r in rows] == ranking[q]
    drawn = hard.sample(hard.lens.nonzero()[0], 2, seed=0, step=3)
    assert set(drawn.tolist()) <= set(hard.rows.tolist())


def test_tsv_still_works_and_unknown_documents_name_the_file(scifact, tmp_path):
    ranking = _ranking(scifact, n_queries=2, depth=2)
    tsv = tmp_path / "neg.tsv"
    tsv.write_text("query-id\tdoc-id\n" + "".join(f"{q}\t{d}\n" for q, docs in ranking.items()
                                                 for d in docs))
    hard = HardNegatives(tsv, scifact.corpus, list(ranking))
    assert [scifact.corpus.ids[r] for r in hard.rows] == [d for v in ranking.values() for d in v]
    bad = tmp_path / "bad.trec"
    q = next(iter(ranking))
    bad.write_text(f"{q} Q0 not-a-scifact-doc 1 3.0 run\n")
    with pytest.raises(DataError, match="bad.trec.*'not-a-scifact-doc' is not in the corpus"):
        HardNegatives(bad, scifact.corpus, [q])
