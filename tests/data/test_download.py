"""Known collections fetched from a local HTTP server: verified, atomic, clear errors offline."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import socket
import threading
import zipfile
from pathlib import Path

import pytest

from densescale.data import open_dataset, registry
from densescale.data.registry import Source
from densescale.errors import DataError


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:  # noqa: N802
        if self.path.startswith("/short/"):  # announces the full size, sends half, hangs up
            body = (Path(self.directory) / self.path.removeprefix("/short/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a, **k: _Handler(*a, directory=str(root), **k))
    threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _beir_zip(name: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        docs = [{"_id": f"d{i}", "title": "", "text": f"doc number {i} " * 30} for i in range(40)]
        zf.writestr(f"{name}/corpus.jsonl", "".join(json.dumps(d) + "\n" for d in docs))
        zf.writestr(f"{name}/queries.jsonl", '{"_id": "q1", "text": "number 3"}\n')
        zf.writestr(f"{name}/qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\td3\t1\n")
    return buf.getvalue()


def _leftovers(data: Path) -> list[str]:
    return sorted(p.name for p in data.iterdir()) if data.exists() else []


@pytest.mark.parametrize("with_md5", [True, False])
def test_download_verify_extract(server, tmp_path, monkeypatch, with_md5):
    root, url = server
    blob = _beir_zip("toy")
    (root / "toy.zip").write_bytes(blob)
    md5 = hashlib.md5(blob).hexdigest() if with_md5 else None
    monkeypatch.setitem(registry.KNOWN, "toy", Source("beir", md5=md5))
    monkeypatch.setenv("DENSESCALE_BEIR_URL", url)
    data = tmp_path / "data"
    ds = open_dataset("toy", data_dir_override=data)
    assert ds.path == data / "toy" and len(ds.corpus) == 40 and ds.pairs("test")[0].doc_id == "d3"
    assert _leftovers(data) == ["toy"]
    (root / "toy.zip").unlink()  # second open uses the local copy, no network
    assert len(open_dataset("toy", data_dir_override=data).corpus) == 40


@pytest.mark.parametrize("kind", ["corrupt", "truncated_file", "truncated_transfer", "wrong_files"])
@pytest.mark.parametrize("with_md5", [True, False])
def test_bad_archives_leave_nothing(server, tmp_path, monkeypatch, kind, with_md5):
    root, url = server
    good = _beir_zip("toy")
    blob = {"corrupt": good[:300] + bytes(b ^ 0xFF for b in good[300:600]) + good[600:],
            "truncated_file": good[: len(good) * 2 // 3],
            "truncated_transfer": good,
            "wrong_files": _beir_zip("other")}[kind]
    (root / "toy.zip").write_bytes(blob)
    monkeypatch.setitem(registry.KNOWN, "toy",
                        Source("beir", md5=hashlib.md5(good).hexdigest() if with_md5 else None))
    short = "/short" if kind == "truncated_transfer" else ""
    monkeypatch.setenv("DENSESCALE_BEIR_URL", url + short)
    data = tmp_path / "data"
    with pytest.raises(DataError) as err:
        open_dataset("toy", data_dir_override=data)
    msg = str(err.value)
    if kind == "truncated_transfer":
        assert "cannot download" in msg or "truncated" in msg
    elif with_md5:
        assert "checksum mismatch" in msg
    else:
        assert any(w in msg for w in ("corrupted", "truncated", "lacks expected files")), msg
    assert _leftovers(data) == []  # no dataset folder, no temporary folder


def test_offline_error_says_where_to_put_files(tmp_path, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("DENSESCALE_BEIR_URL", f"http://127.0.0.1:{port}")
    with pytest.raises(DataError, match=r"offline\? put the files at .*data/scifact"):
        open_dataset("scifact", data_dir_override=tmp_path / "data")
    assert _leftovers(tmp_path / "data") == []


def test_msmarco_without_ir_datasets_is_a_clear_error(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ir_datasets", None)  # import fails even if installed
    with pytest.raises(DataError, match=r"pip install 'densescale\[msmarco\]'.*collection.tsv"):
        open_dataset("msmarco-passage", data_dir_override=tmp_path / "data")


def _squad_json(prefix: str) -> dict:
    para = "Paris is the capital of France."
    articles = [
        {"title": "Paris_City", "paragraphs": [
            {"context": para, "qas": [{"id": f"{prefix}1", "question": " Capital of France? ",
                                       "answers": [{"text": "Paris", "answer_start": 0}]}]},
            {"context": "The Seine flows through Paris.", "qas": [
                {"id": f"{prefix}2", "question": "Which river?",
                 "answers": [{"text": "The Seine", "answer_start": 0},
                             {"text": "Seine", "answer_start": 4}]}]},
            {"context": para, "qas": [{"id": f"{prefix}3", "question": "Duplicate paragraph q",
                                       "answers": [{"text": "France", "answer_start": 24}]}]}]},
        {"title": "Rome", "paragraphs": [
            {"context": "Rome is in Italy.", "qas": [
                {"id": f"{prefix}4", "question": "Where is Rome?",
                 "answers": [{"text": "Italy", "answer_start": 11}]},
                {"id": f"{prefix}5", "question": "What is in Italy?",
                 "answers": [{"text": "Rome", "answer_start": 0}]}]}]},
    ]
    return {"version": "1.1", "data": articles}


def test_squad_fetch_and_convert(server, tmp_path, monkeypatch):
    root, url = server
    (root / "train-v1.1.json").write_text(json.dumps(_squad_json("t")))
    (root / "dev-v1.1.json").write_text(json.dumps(_squad_json("5733be284776f4190066")))
    monkeypatch.setenv("DENSESCALE_SQUAD_URL", url)
    data = tmp_path / "data"
    ds = open_dataset("squad_v11", data_dir_override=data)
    assert list(ds.corpus.ids) == ["train-000-000", "train-000-001", "train-001-000",
                                   "dev-000-000", "dev-000-001", "dev-001-000"]
    assert ds.corpus.get("train-000-001").title == "Paris City"
    q = ds.queries()
    assert q["train-000-000-q0"] == "Capital of France?"
    assert "train-000-002-q0" in q and "train-001-000-q1" in q and "5733be2847766f41900662" not in q
    assert q["5733be284776f41900662"] == "Which river?"
    assert ds.qrels("train")["train-000-002-q0"] == {"train-000-000": 1}  # dropped copy -> first
    assert ds.qrels("test")["5733be284776f41900663"] == {"dev-000-000": 1}
    assert len(ds.pairs("train")) == len(ds.pairs("test")) == 5
    lines = (data / "squad_v11" / "answers.jsonl").read_text().splitlines()
    answers = [json.loads(x) for x in lines]
    assert {"_id": "5733be284776f41900662", "answers": ["The Seine", "Seine"]} in answers
    assert _leftovers(data) == ["squad_v11"]


def test_squad_missing_dev_file_leaves_nothing(server, tmp_path, monkeypatch):
    root, url = server
    (root / "train-v1.1.json").write_text(json.dumps(_squad_json("t")))
    monkeypatch.setenv("DENSESCALE_SQUAD_URL", url)
    with pytest.raises(DataError, match="HTTP 404"):
        open_dataset("squad_v11", data_dir_override=tmp_path / "data")
    assert _leftovers(tmp_path / "data") == []
