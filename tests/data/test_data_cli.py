"""`densescale data` commands end to end (in process, through the real CLI wiring)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from densescale.cli import app

runner = CliRunner()


def _run(*args):
    return runner.invoke(app, ["data", *map(str, args)])


def test_help():
    r = _run("--help")
    assert r.exit_code == 0
    for cmd in ("validate", "info", "subset", "index", "fetch"):
        assert cmd in r.output


def test_validate_json_and_exit_codes(scifact_path, datasets_dir):
    r = _run("validate", scifact_path, "--json")
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert doc["ok"] and doc["counts"]["docs"] == 5183
    assert doc["counts"]["splits"]["train"]["queries_with_positive"] == 809
    r = _run("validate", "arguana", "--data-dir", datasets_dir, "--max-problems", "3")
    assert r.exit_code == 1
    assert "5 problem(s), first 3 shown" in r.stdout and "test.tsv:180:" in r.stdout


def test_info(scifact_path):
    r = _run("info", scifact_path, "--json")
    assert r.exit_code == 0
    info = json.loads(r.stdout)
    assert info["docs"] == 5183 and info["queries"] == 1109
    assert info["splits"]["train"] == {"queries": 809, "qrels": 919, "pairs": 919}
    assert 150 < info["doc_words"]["mean"] < 300 and info["doc_words"]["p95"] > 300
    assert 5 < info["query_words"]["mean"] < 20
    r = _run("info", scifact_path)
    assert r.exit_code == 0 and "doc words" in r.stdout


def test_subset_writes_nested_qrels(scifact_path, tmp_path):
    r = _run("subset", scifact_path, "--split", "train", "--sizes", "100,1_00,500", "--seed", 1,
             "--out", tmp_path / "subs", "--json")
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert list(doc["subsets"]) == ["100", "500"] and doc["available_pairs"] == 919
    small = (tmp_path / "subs" / "train-100.tsv").read_text().splitlines()
    big = (tmp_path / "subs" / "train-500.tsv").read_text().splitlines()
    assert small[0] == "query-id\tcorpus-id\tscore" and len(small) == 101 and big[:101] == small
    r = _run("subset", scifact_path, "--sizes", "5000")
    assert r.exit_code != 0 and "only 919 exist" in str(r.exception)


def test_index_command(tmp_path, beir_factory):
    root = beir_factory(tmp_path / "tiny")
    r = _run("index", root, "--json")
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert doc["docs"] == 6 and doc["duplicate_ids"] == 0
    r2 = _run("index", root, "--rebuild")
    assert r2.exit_code == 0 and "6 docs indexed" in r2.stdout


def test_cli_error_is_one_line(tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "densescale", "data", "info", str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode == 1 and out.stderr.startswith("error: ")
    assert "no known dataset layout" in out.stderr and "Traceback" not in out.stderr
