"""densescale.report.output.replacing_outputs: a report folder is replaced all or nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from densescale.report import output as output_mod
from densescale.report.output import replacing_outputs


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def _old_report(out: Path) -> dict[str, bytes]:
    (out / "figures").mkdir(parents=True)
    (out / "fits").mkdir()
    (out / "figures" / "stale.png").write_bytes(b"old figure")
    (out / "fits" / "model.json").write_text('{"old": true}')
    (out / "index.html").write_text("<html>old</html>")
    (out / "notes.txt").write_text("the user's own file")
    return _files(out)


def _write_new(out: Path) -> None:
    (out / "figures").mkdir()
    (out / "figures" / "new.png").write_bytes(b"new figure")
    (out / "index.html").write_text("<html>new</html>")


def test_success_replaces_the_outputs_whole_and_keeps_other_files(tmp_path):
    out = tmp_path / "rep"
    _old_report(out)
    with replacing_outputs(out):
        _write_new(out)
    assert _files(out) == {"figures/new.png": b"new figure", "index.html": b"<html>new</html>",
                           "notes.txt": b"the user's own file"}
    assert sorted(p.name for p in out.iterdir()) == ["figures", "index.html", "notes.txt"]


def test_failure_puts_the_previous_report_back(tmp_path):
    out = tmp_path / "rep"
    before = _old_report(out)
    with pytest.raises(KeyboardInterrupt):
        with replacing_outputs(out):
            _write_new(out)
            (out / "report.json").write_text("{}")
            raise KeyboardInterrupt
    assert _files(out) == before
    assert sorted(p.name for p in out.iterdir()) == ["figures", "fits", "index.html",
                                                     "notes.txt"]


def test_failure_removes_the_folders_it_created(tmp_path):
    out = tmp_path / "a" / "b" / "rep"
    with pytest.raises(OSError):
        with replacing_outputs(out):
            _write_new(out)
            raise OSError(27, "File too large")
    assert list(tmp_path.iterdir()) == []


def test_a_failure_while_moving_the_old_report_aside_deletes_nothing(tmp_path, monkeypatch):
    """The second move fails (say): the first one is moved back, nothing is removed."""
    out = tmp_path / "rep"
    before = _old_report(out)
    calls = []

    def replace(src, dst):
        calls.append(src)
        if len(calls) == 2:
            raise OSError(18, "Invalid cross-device link")
        os.rename(src, dst)

    monkeypatch.setattr(output_mod.os, "replace", replace)
    ran = []
    with pytest.raises(OSError, match="cross-device"):
        with replacing_outputs(out):
            ran.append(True)
    assert not ran and _files(out) == before
    assert sorted(p.name for p in out.iterdir()) == ["figures", "fits", "index.html",
                                                     "notes.txt"]


def test_an_old_report_that_cannot_be_put_back_stays_whole_aside(tmp_path, monkeypatch):
    out = tmp_path / "rep"
    before = _old_report(out)
    real = os.replace

    def replace(src, dst):
        if ".old" in str(src):  # moving back fails
            raise OSError(5, "Input/output error")
        real(src, dst)

    monkeypatch.setattr(output_mod.os, "replace", replace)
    with pytest.raises(RuntimeError):
        with replacing_outputs(out):
            _write_new(out)
            raise RuntimeError("boom")
    aside = [p for p in out.iterdir() if p.name.endswith(".old")]
    assert len(aside) == 1  # kept, with the previous report in it
    assert {k.split("/", 1)[1]: v for k, v in _files(out).items()
            if k.startswith(aside[0].name)} == {k: v for k, v in before.items()
                                               if k != "notes.txt"}
