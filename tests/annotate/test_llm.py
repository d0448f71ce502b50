from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAI

from densescale.annotate.llm import InvalidResponse, parse_query
from densescale.cli import app, main
from densescale.data import read_annotation_set
from densescale.errors import ConfigError, DenseScaleError

KEY = "sk-densescale-FAKE-9f8e7d6c5b4a"
REPO = Path(__file__).resolve().parents[2]
PROMPT = 'FAULT: {title}\nPASSAGE: {passage}\nReply with JSON only: {"query": "..."}\n'


def _dataset(root: Path, faults: list[str], repeat_first: int = 0) -> Path:
    """A BEIR folder: doc i has title faults[i]; one train pair per doc (+ repeats of doc 0)."""
    d = root / "ds"
    (d / "qrels").mkdir(parents=True)
    with open(d / "corpus.jsonl", "w") as f:
        for i, fault in enumerate(faults):
            f.write(json.dumps({"_id": f"d{i}", "title": fault,
                                "text": f"Passage number {i} talks about topic {i * 7}."}) + "\n")
    pairs = [(f"q{i}", f"d{i}") for i in range(len(faults))]
    pairs += [(f"r{j}", "d0") for j in range(repeat_first)]
    with open(d / "queries.jsonl", "w") as f:
        for q, _ in pairs:
            f.write(json.dumps({"_id": q, "text": f"human {q}"}) + "\n")
    (d / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{doc}\t1\n" for q, doc in pairs))
    (root / "prompt.txt").write_text(PROMPT)
    return d


def _files_text(folder: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


FAULTS = ["ok", "429", "500", "timeout", "malformed", "envelope", "refuse", "ok",
          "always_refuse", "toolong", "echo400", "ok", "always500"]


def test_llm_faults_retries_failures_and_redaction(tmp_path, monkeypatch, capfd):
    data = _dataset(tmp_path, FAULTS, repeat_first=2)
    monkeypatch.setenv("FAKE_LLM_KEY", KEY)
    out = tmp_path / "llm"
    with FakeOpenAI(KEY, timeout_sleep=1.2) as srv:
        app(["annotate", "llm", "--data", str(data), "--out", str(out), "--endpoint", srv.url,
             "--model", "fake-model", "--api-key-env", "FAKE_LLM_KEY", "--prompt",
             str(tmp_path / "prompt.txt"), "--concurrency", "4", "--timeout", "0.4",
             "--backoff", "0.01", "--max-attempts", "3", "--max-retries", "2",
             "--max-query-words", "20", "--price-in", "2", "--price-out", "10", "--json",
             "--max-failure-rate", "0.5", "--no-progress"],
            standalone_mode=False)
    aset = read_annotation_set(out)
    prov = aset.provenance
    n_items = len(FAULTS) + 2
    failed = {"always_refuse", "toolong", "echo400", "always500"}
    assert prov["counts"]["passages_selected"] == n_items
    assert prov["counts"]["failures"] == len(failed)
    assert len(aset.pairs) == len(aset.queries) == n_items - len(failed)
    fails = [json.loads(x) for x in (out / "failures.jsonl").read_text().splitlines()]
    assert sorted(FAULTS[int(f["doc_id"][1:])] for f in fails) == sorted(failed)
    assert all(f["attempts"] == 3 and f["error"] for f in fails)
    assert "refusal" in next(f["error"] for f in fails if f["doc_id"] == "d8")
    assert "HTTP 500" in next(f["error"] for f in fails if f["doc_id"] == "d12")
    # each injected fault cost exactly one extra request, then the item succeeded
    lines = (out / "journal.jsonl").read_text().splitlines()[1:]  # after the header
    recs = {r["key"]: r for r in map(json.loads, lines)}
    assert [recs[f"d{i}#0"]["attempts"] for i in range(8)] == [1, 2, 2, 2, 2, 2, 2, 1]
    # every non-failing passage got its query; the two repeats of d0 are separate items
    got = {p.doc_id for p in aset.pairs}
    assert got == {f"d{i}" for i, x in enumerate(FAULTS) if x not in failed}
    assert sorted(q for q in aset.queries if q.startswith("llm-d0-")) == [
        "llm-d0-0", "llm-d0-1", "llm-d0-2"]
    for qid, text in aset.queries.items():
        i = qid.split("-")[1][1:]
        assert text == f"what is Passage number {i} talks"
    # token / cost accounting: 100 prompt + 10 completion tokens per answered request
    u = prov["usage"]
    assert u["prompt_tokens"] > 0 and u["completion_tokens"] * 10 == u["prompt_tokens"]
    assert u["cost"] == pytest.approx(u["prompt_tokens"] * 2e-6 + u["completion_tokens"] * 1e-5)
    assert prov["prompt"] == PROMPT and len(prov["prompt_sha256"]) == 64
    # the key never appears: files (journal, provenance, failures), stdout, stderr
    captured = capfd.readouterr()
    assert KEY not in _files_text(out) + captured.out + captured.err
    assert "***" in (out / "failures.jsonl").read_text()  # the echoed key was redacted
    assert json.loads(captured.out.strip().splitlines()[-1])["failures"] == 4
    # --retry-failed asks again only for the failed items (4 x 3 requests), ids stay the same
    with FakeOpenAI(KEY) as srv:
        app(["annotate", "llm", "--data", str(data), "--out", str(out), "--endpoint", srv.url,
             "--model", "fake-model", "--api-key-env", "FAKE_LLM_KEY", "--prompt",
             str(tmp_path / "prompt.txt"), "--backoff", "0.01", "--max-attempts", "3",
             "--max-retries", "2", "--max-query-words", "20", "--retry-failed",
             "--max-failure-rate", "0.5", "--no-progress"], standalone_mode=False)
        assert srv.requests == 12
    assert read_annotation_set(out).queries == aset.queries


def test_llm_bad_key_aborts_without_leaking(tmp_path, monkeypatch):
    data = _dataset(tmp_path, ["ok", "ok"])
    wrong = "sk-WRONG-densescale-0000111122223333"
    monkeypatch.setenv("FAKE_LLM_KEY", wrong)
    with FakeOpenAI(KEY) as srv, pytest.raises(DenseScaleError) as err:
        app(["annotate", "llm", "--data", str(data), "--out", str(tmp_path / "o"),
             "--endpoint", srv.url, "--model", "m", "--api-key-env", "FAKE_LLM_KEY",
             "--prompt", str(tmp_path / "prompt.txt"), "--no-progress"], standalone_mode=False)
    assert "401" in str(err.value) and wrong not in str(err.value) + repr(err.value)
    assert not (tmp_path / "o" / "queries.jsonl").exists()
    assert wrong not in _files_text(tmp_path / "o")


def _cli(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "densescale.annotate", "llm", *args],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_llm_killed_run_resumes_exactly(tmp_path, monkeypatch, capfd):
    faults = (["ok"] * 5 + ["429", "malformed"]) * 6 + ["always_refuse"]
    data = _dataset(tmp_path, faults)
    out = tmp_path / "llm"
    env = {**os.environ, "FAKE_LLM_KEY": KEY, "PYTHONPATH": str(REPO)}
    with FakeOpenAI(KEY, delay=0.04) as srv:
        args = ["--data", str(data), "--out", str(out), "--endpoint", srv.url, "--model",
                "fake-model", "--api-key-env", "FAKE_LLM_KEY", "--prompt",
                str(tmp_path / "prompt.txt"), "--concurrency", "2", "--backoff", "0.01",
                "--max-attempts", "2", "--json"]
        proc = _cli(args, env)
        journal = out / "journal.jsonl"
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            if journal.exists() and journal.read_text().count("\n") >= 8:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        o1, e1 = proc.communicate()
        n_before = journal.read_text().count("\n") - 1
        assert 7 <= n_before < len(faults)
        assert not (out / "queries.jsonl").exists()  # nothing that looks complete
        with open(journal, "a") as f:  # a torn last line, as a crash mid-write leaves it
            f.write('{"type": "result", "key": "d3#0", "doc_id": "d3", "quer')
        monkeypatch.setenv("FAKE_LLM_KEY", KEY)
        app(["annotate", "llm", *args, "--no-progress"], standalone_mode=False)  # restart
        requests = srv.requests
        # a different argument is refused instead of mixing two runs in one journal
        with pytest.raises(ConfigError, match="different arguments.*temperature"):
            app(["annotate", "llm", *args, "--temperature", "0.1"], standalone_mode=False)
        assert srv.requests == requests
        cap = capfd.readouterr()
    aset = read_annotation_set(out)
    assert aset.provenance["counts"]["failures"] == 1
    assert sorted(p.doc_id for p in aset.pairs) == sorted(f"d{i}" for i in range(len(faults) - 1))
    assert len(aset.queries) == len(faults) - 1  # unique ids, one per passage
    recs = [json.loads(x) for x in journal.read_text().splitlines()[1:]]
    keys = [r["key"] for r in recs]
    assert len(keys) == len(set(keys)) == len(faults)  # nothing lost or duplicated
    # the killed run's in-flight requests were redone, nothing more
    assert srv.requests <= len(faults) + 12 + 2 + 2 * 2 + 2
    assert KEY not in _files_text(out) + o1 + e1 + cap.out + cap.err


@pytest.mark.parametrize("content,reason", [
    ("", "empty"), ("not json at all", "malformed"), ('{"q": "x"}', "query"),
    ('{"query": "   "}', "empty"), ('{"query": "As an AI, I cannot do that"}', "refusal"),
    ('{"query": "' + "w " * 30 + '"}', "longer"),
])
def test_parse_query_rejects(content, reason):
    with pytest.raises(InvalidResponse, match=reason):
        parse_query(content, "json", max_words=20)


def test_parse_query_accepts():
    assert parse_query('```json\n{"query": " who wrote it "}\n```') == "who wrote it"
    assert parse_query('Sure! {"query": "中文查询"} done') == "中文查询"
    assert parse_query('Query: "cheap flights"\nmore', "text") == "cheap flights"


def test_llm_hf_backend_tiny_gpt2(scifact_path, tiny_gpt2, tmp_path):
    out = tmp_path / "hf"
    app(["annotate", "llm", "--backend", "hf", "--model", str(tiny_gpt2), "--data",
         str(scifact_path), "--out", str(out), "--limit", "3", "--output-format", "text",
         "--max-tokens", "6", "--batch-size", "3", "--max-attempts", "2", "--no-progress",
         "--max-failure-rate", "1"],
        standalone_mode=False)
    aset = read_annotation_set(out)
    c = aset.provenance["counts"]
    assert c["passages_selected"] == 3 and c["queries_written"] + c["failures"] == 3
    assert c["queries_written"] >= 1
    assert aset.provenance["usage"]["completion_tokens"] > 0
    assert aset.provenance["parameters"]["backend"] == "hf"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _llm_main(data: Path, out: Path, url: str, *extra: str) -> int:
    with pytest.raises(SystemExit) as ex:
        main(["annotate", "llm", "--data", str(data), "--out", str(out), "--endpoint", url,
              "--model", "m", "--api-key-env", "FAKE_LLM_KEY", "--prompt",
              str(data.parent / "prompt.txt"), "--backoff", "0.01", "--max-retries", "1",
              "--no-progress", *extra])
    return ex.value.code


@pytest.mark.parametrize("endpoint", ["always500", "unreachable"])
def test_total_llm_failure_exits_1_and_publishes_nothing(tmp_path, monkeypatch, capsys,
                                                         endpoint):
    data = _dataset(tmp_path, ["always500"] * 4)
    monkeypatch.setenv("FAKE_LLM_KEY", KEY)
    out = tmp_path / "llm"
    if endpoint == "unreachable":
        code = _llm_main(data, out, f"http://127.0.0.1:{_free_port()}/v1")
    else:
        with FakeOpenAI(KEY) as srv:
            code = _llm_main(data, out, srv.url)
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(f"error: {out}: 4 of 4 items failed (100%") and "Traceback" not in err
    assert ("HTTP 500" if endpoint == "always500" else "connection error") in err
    assert sorted(p.name for p in out.iterdir()) == ["journal.jsonl"]  # no set, nothing half
    assert not list(tmp_path.glob(".llm*"))
    recs = [json.loads(x) for x in (out / "journal.jsonl").read_text().splitlines()[1:]]
    assert [r["type"] for r in recs] == ["failure"] * 4


def test_failure_rate_over_threshold_keeps_successes_in_the_journal(tmp_path, monkeypatch,
                                                                    capsys):
    data = _dataset(tmp_path, ["ok", "always500", "ok", "ok"])
    monkeypatch.setenv("FAKE_LLM_KEY", KEY)
    out = tmp_path / "llm"
    with FakeOpenAI(KEY) as srv:
        assert _llm_main(data, out, srv.url) == 1  # 25% > the default 10%
        assert "1 of 4 items failed (25%, over --max-failure-rate 10%)" in capsys.readouterr().err
        assert not (out / "queries.jsonl").exists()
        n = srv.requests
        # a laxer threshold publishes from the journal without asking again
        app(["annotate", "llm", "--data", str(data), "--out", str(out), "--endpoint", srv.url,
             "--model", "m", "--api-key-env", "FAKE_LLM_KEY", "--prompt",
             str(tmp_path / "prompt.txt"), "--backoff", "0.01", "--max-retries", "1",
             "--no-progress", "--max-failure-rate", "0.25"], standalone_mode=False)
        assert srv.requests == n
    aset = read_annotation_set(out)
    assert len(aset.queries) == 3 and aset.provenance["counts"]["failures"] == 1
