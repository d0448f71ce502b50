from __future__ import annotations

import json

import pytest

from densescale.annotate.journal import Journal
from densescale.errors import ConfigError, DataError


def test_journal_resume_torn_line_and_args_check(tmp_path):
    path = tmp_path / "journal.jsonl"
    args = {"model": "m", "seed": 1}
    with Journal(path, args, "llm") as j:
        j.append({"type": "result", "key": "a", "queries": ["qa"]})
        j.append({"type": "failure", "key": "b", "error": "x"})
    with open(path, "a") as f:
        f.write('{"type": "result", "key": "c", "que')  # torn by a crash
    with Journal(path, args, "llm") as j:
        assert set(j.records) == {"a", "b"}
        j.append({"type": "result", "key": "b", "queries": ["qb"]})  # a retry succeeded
        j.append({"type": "failure", "key": "a", "error": "late"})  # never beats a result
    lines = path.read_text().splitlines()
    assert all(json.loads(x) for x in lines) and len(lines) == 5
    j = Journal(path, args, "llm")
    assert j.records["a"]["queries"] == ["qa"] and j.records["b"]["queries"] == ["qb"]
    j.close()
    with pytest.raises(ConfigError, match="differ: seed"):
        Journal(path, {"model": "m", "seed": 2}, "llm")


def test_journal_corrupt_middle_line(tmp_path):
    path = tmp_path / "journal.jsonl"
    Journal(path, {}, "x").close()
    with open(path, "a") as f:
        f.write("garbage\n" + json.dumps({"type": "result", "key": "a"}) + "\n")
    with pytest.raises(DataError, match="corrupt journal line"):
        Journal(path, {}, "x")
