"""Shared fixtures. Tests read ../shared/datasets (read-only) and write only to tmp paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_dir() -> Path:
    env = os.environ.get("DENSESCALE_DATA_DIR")
    return Path(env) if env else (REPO.parent / "shared" / "datasets")


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    d = _shared_dir()
    assert d.exists(), f"shared datasets not found at {d}; set DENSESCALE_DATA_DIR"
    return d


@pytest.fixture(scope="session")
def scifact_path(datasets_dir: Path) -> Path:
    return datasets_dir / "scifact"


@pytest.fixture(scope="session")
def squad_path(datasets_dir: Path) -> Path:
    return datasets_dir / "squad_v11"


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path_factory):
    """No hub access in tests; caches go to a temporary folder."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("DENSESCALE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


def _drop_root_overrides() -> list[str]:
    """Command prefix that makes root obey file modes (a read-only folder is read-only)."""
    if os.geteuid() != 0:
        return []
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", "--bounding-set", caps, "--inh-caps", caps]


@pytest.fixture
def cli_fault(tmp_path):
    """run(args, fault, out) -> CompletedProcess of ``python -m densescale ARGS`` under a fault.

    fault: "file" (``out`` lies under a regular file), "readonly" (``out`` is an existing
    read-only folder) or "full" (writes beyond 1 KiB fail, as on a full disk: RLIMIT_FSIZE).
    """
    import resource
    import signal
    import subprocess
    import sys

    def run(args: list, fault: str, out: Path) -> subprocess.CompletedProcess:
        prefix: list[str] = []
        preexec = None
        if fault == "file":
            out.parent.parent.mkdir(parents=True, exist_ok=True)
            out.parent.write_text("a regular file\n")
        elif fault == "readonly":
            out.mkdir(parents=True)
            out.chmod(0o555)
            prefix = _drop_root_overrides()
        elif fault == "full":
            def preexec() -> None:
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))
        else:
            raise ValueError(fault)
        return subprocess.run([*prefix, sys.executable, "-m", "densescale", *map(str, args)],
                              capture_output=True, text=True, cwd=tmp_path, preexec_fn=preexec,
                              timeout=300)

    return run


@pytest.fixture
def leftovers():
    """leftovers(root) -> temporary or staging files and folders under ``root`` (want none)."""
    marks = (".tmp", "staging", ".densescale-probe-", ".old")

    def find(root: Path) -> list[str]:
        return sorted(str(p) for p in root.rglob("*") if any(m in p.name for m in marks))

    return find
