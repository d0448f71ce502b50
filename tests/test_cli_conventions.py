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
               "n": np.int64(3), "t": (1, 2)})
    assert _strict(capsys.readouterr().out) == {"nan": None, "inf": None, "arr": [1.5, None],
                                                "n": 3, "t": [1, 2]}


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
