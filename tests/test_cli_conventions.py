"""CLI conventions across commands: help text, strict JSON, error messages, choices."""

from __future__ import annotations

import json

import pytest

from densescale.cli import main


def _run(capsys, monkeypatch, *argv: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``densescale ARGV`` in this process."""
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setenv("TERM", "dumb")
    try:
        main(list(argv))
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


def _strict(text: str):
    """json.loads that refuses NaN / Infinity / -Infinity."""
    def refuse(c):
        raise ValueError(f"not strict JSON: {c}")

    return json.loads(text, parse_constant=refuse)


def test_train_help_shows_no_empty_default(capsys, monkeypatch):
    code, out, _ = _run(capsys, monkeypatch, "train", "--help")
    assert code == 0 and "--data" in out
    assert "()" not in out and "[]" not in out


@pytest.mark.parametrize("with_dir", [True, False])
def test_missing_dataset_path_has_no_double_slash(capsys, monkeypatch, tmp_path, with_dir):
    if with_dir:
        monkeypatch.setenv("DENSESCALE_DATA_DIR", str(tmp_path))
    else:
        monkeypatch.delenv("DENSESCALE_DATA_DIR", raising=False)
    code, _, err = _run(capsys, monkeypatch, "data", "info", "/nonexistent")
    assert code == 1 and "//" not in err
    assert "error: dataset folder /nonexistent does not exist" in err
    code, _, err = _run(capsys, monkeypatch, "data", "info", "no-such-set")
    assert code == 1 and "//" not in err
    where = f"{tmp_path}/no-such-set" if with_dir else "$DENSESCALE_DATA_DIR/no-such-set"
    assert where in err


def test_dump_json_is_strict(capsys):
    import numpy as np

    from densescale.utils import dump_json

    dump_json({"nan": float("nan"), "inf": np.float64("inf"), "arr": np.array([1.5, -np.inf]),
               "n": np.int64(3), "t": (1, 2), "by_n": {np.int64(7): np.float32("nan")}})
    assert _strict(capsys.readouterr().out) == {"nan": None, "inf": None, "arr": [1.5, None],
                                                "n": 3, "t": [1, 2], "by_n": {"7": None}}


@pytest.mark.parametrize("argv", [
    ("budget", "--preset", "v2", "--budget", "10k", "--no-inference", "--json"),
    ("models", "--json"),
    ("data", "info", "{scifact}", "--json"),
])
def test_json_output_is_strict(capsys, monkeypatch, scifact_path, argv):
    argv = [a.format(scifact=scifact_path) for a in argv]
    code, out, err = _run(capsys, monkeypatch, *argv)
    assert code == 0, err
    doc = _strict(out)
    assert isinstance(doc, (dict, list)) and doc


def _commands():
    """(path, click command) of every command and sub-command, demo aside (not owned here)."""
    import typer._click.core as core
    import typer.main

    from densescale.cli import COMMANDS, app

    root = typer.main.get_command(app)
    ctx = core.Context(root)
    todo = [([name], root.get_command(ctx, name)) for name in COMMANDS if name != "demo"]
    while todo:
        path, cmd = todo.pop()
        if hasattr(cmd, "list_commands"):
            todo += [([*path, n], cmd.get_command(ctx, n)) for n in cmd.list_commands(ctx)]
        else:
            yield " ".join(path), cmd


def test_every_option_has_help_text():
    missing = [f"{path} {'/'.join(p.opts)}" for path, cmd in _commands() for p in cmd.params
               if not getattr(p, "help", None)]
    assert not missing


def test_data_help_names_every_source(capsys, monkeypatch):
    for argv in (["eval", "--help"], ["annotate", "ict", "--help"], ["data", "info", "--help"],
                 ["train", "--help"]):
        code, out, _ = _run(capsys, monkeypatch, *argv)
        text = " ".join(out.replace("│", " ").split())
        assert code == 0 and "irds:ID" in text and "hf:PATH" in text, argv
        assert "beir/NAME" in text and "$DENSESCALE_DATA_DIR" in text, argv


@pytest.mark.parametrize("flag, value, choices", [
    ("--law", "linear", "'model', 'data', 'joint', 'annotations'"),
    ("--method", "l1", "'lsq', 'huber'"),
    ("--bootstrap-mode", "jackknife", "'resample', 'parametric', 'both'"),
    ("--holdout", "smallest", "largest, largest-n, largest-d"),
])
def test_fit_choices_are_listed_and_enforced(capsys, monkeypatch, tmp_path, flag, value,
                                             choices):
    code, out, _ = _run(capsys, monkeypatch, "fit", "--help")
    assert code == 0 and "<model|data|joint|annotations>" in out and "<lsq|huber>" in out
    assert "<resample|parametric|both>" in out
    code, _, err = _run(capsys, monkeypatch, "fit", "--results", str(tmp_path / "r.csv"),
                        flag, value)
    text = " ".join(err.replace("│", " ").split())
    assert code == 2 and f"Invalid value for '{flag}'" in text and choices in text, text


def test_report_holdout_takes_the_fit_values(capsys, monkeypatch, tmp_path):
    missing = str(tmp_path / "none.csv")
    code, _, err = _run(capsys, monkeypatch, "report", "--results", missing, "--holdout", "x")
    assert code == 2 and "Invalid value for '--holdout'" in err
    for value in ("largest", "largest-n", "largest-d"):  # accepted: fails later, on the file
        code, _, err = _run(capsys, monkeypatch, "report", "--results", missing,
                            "--out", str(tmp_path / "rep"), "--holdout", value)
        assert code == 1 and "none.csv" in err and "--holdout" not in err


@pytest.mark.parametrize("flags, shown", [((), True), (("--quiet",), False),
                                          (("--no-progress",), False), (("--progress",), True)])
def test_study_run_progress_by_default(capsys, monkeypatch, flags, shown):
    import densescale.study.driver as driver

    seen = {}

    def fake_run_study(spec, **kw):
        seen.update(kw)
        return {"study": "s", "spec_hash": "h", "total": 0, "points": [],
                "counts": {"done": 0, "running": 0, "failed": 0, "pending": 0}}

    monkeypatch.setattr(driver, "run_study", fake_run_study)
    code, out, _ = _run(capsys, monkeypatch, "study", "run", "spec.yaml", *flags, "--json")
    assert code == 0 and _strict(out)["total"] == 0 and seen["progress"] is shown


def test_annotate_accepts_quiet(capsys, monkeypatch, scifact_path, tmp_path):
    import densescale.annotate.base as base

    seen = []
    real = base.run_annotation
    monkeypatch.setattr(base, "run_annotation",
                        lambda *a, **kw: seen.append(kw["progress"]) or real(*a, **kw))
    for flags in ((), ("--quiet",)):
        code, out, err = _run(capsys, monkeypatch, "annotate", "ict", "--data", str(scifact_path),
                              "--out", str(tmp_path / f"ict{len(flags)}"), "--limit", "3",
                              *flags, "--json")
        assert code == 0, err
        assert _strict(out)["queries_written"] == 3
    assert seen == [True, False]
