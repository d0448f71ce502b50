"""Fixtures shared by the study tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def env(tmp_path_factory, datasets_dir):
    """Offline, a shared cache (tokenizer, CRN negatives), `squad_v11` resolvable by name."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DENSESCALE_DATA_DIR", str(datasets_dir))
        mp.setenv("DENSESCALE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        yield
