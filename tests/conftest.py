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
