"""The root CLI: version/help without heavy imports, the lazy command table, the error path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from densescale import __version__
from densescale.cli import COMMANDS, STAGES, load_stage, main, os_error_message

HEAVY = ("torch", "pandas", "scipy", "sklearn", "matplotlib", "sqlalchemy", "transformers")


def _imported(args: list[str]) -> tuple[str, set[str]]:
    """stdout of ``python -X importtime -m densescale ARGS`` and the top-level modules imported."""
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "densescale", *args],
                       capture_output=True, text=True, check=True)
    mods = {line.rsplit("|", 1)[-1].strip().split(".")[0]
            for line in r.stderr.splitlines() if line.startswith("import time:")}
    return r.stdout, mods


def test_help_and_version_import_no_heavy_module():
    out, mods = _imported(["--version"])
    assert out.strip() == __version__
    assert "typer" in mods  # the importtime parse works
    assert not mods & set(HEAVY), sorted(mods & set(HEAVY))
    out, mods = _imported(["--help"])
    for name in COMMANDS:
        assert f" {name} " in out
    assert not mods & set(HEAVY), sorted(mods & set(HEAVY))


def test_command_table_matches_the_stages():
    registered = {name: stage for stage in STAGES for name in load_stage(stage)}
    assert registered == {name: stage for name, (stage, _) in COMMANDS.items()}


def test_unknown_command_suggests_close_name():
    r = subprocess.run([sys.executable, "-m", "densescale", "evl"], capture_output=True,
                       text=True)
    assert r.returncode == 2
    assert "Did you mean 'eval'" in r.stderr


def test_os_error_message_names_the_paths():
    assert os_error_message(PermissionError(13, "Permission denied", "/x/y")) == \
        "/x/y: Permission denied"
    e = OSError(39, "Directory not empty", "/a.tmp", None, "/a")
    assert os_error_message(e) == "/a.tmp -> /a: Directory not empty"


def test_os_error_is_one_line_and_debug_shows_traceback(scifact_path, monkeypatch, capsys):
    import densescale.data.validate as validate

    def fail(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "/srv/x.jsonl")

    monkeypatch.setattr(validate, "validate_dataset", fail)
    monkeypatch.setattr("densescale.cli._debug", [False])
    with pytest.raises(SystemExit) as ex:
        main(["data", "validate", str(scifact_path)])
    assert ex.value.code == 1
    assert capsys.readouterr().err == "error: /srv/x.jsonl: Permission denied\n"
    with pytest.raises(PermissionError):
        main(["--debug", "data", "validate", str(scifact_path)])


def test_cache_dir_under_a_file_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "f").write_text("x")
    monkeypatch.setenv("DENSESCALE_CACHE_DIR", str(tmp_path / "f" / "cache"))
    r = subprocess.run([sys.executable, "-m", "densescale", "data", "index", "scifact"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"error: {tmp_path / 'f' / 'cache'}: ")
    assert "DENSESCALE_CACHE_DIR" in r.stderr


def test_binary_input_is_one_line_error(scifact_path, monkeypatch, capsys):
    import densescale.data.validate as validate

    def fail(*args, **kwargs):
        b"\x80abc".decode("utf-8")

    monkeypatch.setattr(validate, "validate_dataset", fail)
    monkeypatch.setattr("densescale.cli._debug", [False])
    with pytest.raises(SystemExit) as ex:
        main(["data", "validate", str(scifact_path)])
    assert ex.value.code == 1
    assert capsys.readouterr().err == ("error: an input file is not UTF-8 text (invalid start "
                                       "byte at byte 0); --debug shows which\n")


@pytest.mark.parametrize("error, extra", [
    (ModuleNotFoundError("No module named 'matplotlib'", name="matplotlib"), "plots"),
    (ImportError("Unable to find a usable engine; tried using: 'pyarrow', 'fastparquet'."),
     "parquet"),
])
def test_missing_optional_package_names_the_extra(scifact_path, monkeypatch, capsys, error,
                                                  extra):
    import densescale.data.validate as validate

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(validate, "validate_dataset", fail)
    monkeypatch.setattr("densescale.cli._debug", [False])
    with pytest.raises(SystemExit) as ex:
        main(["data", "validate", str(scifact_path)])
    assert ex.value.code == 1
    assert f"pip install 'densescale[{extra}]'" in capsys.readouterr().err
    monkeypatch.setattr(validate, "validate_dataset",
                        lambda *a, **k: __import__("densescale_no_such_module"))
    with pytest.raises(ModuleNotFoundError):  # not an optional package: a real bug, traceback
        main(["data", "validate", str(scifact_path)])


def test_extras_in_pyproject_match_the_code():
    import tomllib

    from densescale.utils import EXTRAS

    meta = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    extras = meta["project"]["optional-dependencies"]
    core = " ".join(meta["project"]["dependencies"])
    for module, extra in EXTRAS.items():
        assert extra in extras, (module, extra)
        assert module.replace("_", "") not in core.replace("-", "").replace("_", "")
    assert set(extras["all"][0].split("[")[1].rstrip("]").split(",")) == \
        set(extras) - {"all", "test", "msmarco"}
    assert "densescale[all]" in extras["test"]
    torch = next(d for d in meta["project"]["dependencies"] if d.startswith("torch"))
    assert torch.startswith("torch>=") and "<" in torch and "==" not in torch


@pytest.mark.slow
def test_core_modules_import_without_any_extra():
    """Every module except the plotting ones imports with the optional packages missing."""
    code = (
        "import sys, importlib, pkgutil\n"
        f"for m in {sorted(EXTRAS_BLOCKED)!r}: sys.modules[m] = None\n"
        "import densescale\n"
        "bad = []\n"
        "for i in pkgutil.walk_packages(densescale.__path__, 'densescale.'):\n"
        "    if i.name.rsplit('.', 1)[-1] in ('__main__', 'plots'): continue\n"
        "    try: importlib.import_module(i.name)\n"
        "    except ImportError as e: bad.append(f'{i.name}: {e}')\n"
        "print('\\n'.join(bad))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "", r.stdout


EXTRAS_BLOCKED = ("matplotlib", "pyarrow", "fastparquet", "ray", "ir_datasets", "datasets")


def _command_paths() -> list[list[str]]:
    """Every command and sub-command, as argv prefixes (["data", "validate"], ["train"], ...)."""
    paths = []

    def walk(prefix, cmd):
        paths.append(prefix)
        for name, sub in getattr(cmd, "commands", {}).items():
            walk([*prefix, name], sub)

    for stage in STAGES:
        for name, cmd in load_stage(stage).items():
            walk([name], cmd)
    return paths


def test_dash_h_is_help_everywhere(capsys):
    paths = _command_paths()
    assert ["data", "validate"] in paths and ["train"] in paths
    for argv in [[], *paths]:
        with pytest.raises(SystemExit) as ex:
            main([*argv, "-h"])
        out = capsys.readouterr().out
        assert ex.value.code == 0, argv
        assert "Usage:" in out and "--help" in out, argv
