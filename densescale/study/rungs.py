"""Thin adapter between studies and densescale.models (rung names and parameter counts)."""

from __future__ import annotations

from pathlib import Path

from densescale.errors import ConfigError, DenseScaleError


def rung_ref(rung: str, ladder_file: Path | None) -> str:
    """How densescale.models / TrainConfig name a rung: ``FILE.yaml:name`` for user ladders."""
    return f"{ladder_file}:{rung}" if ladder_file else rung


def ladder_file_rungs(path: Path) -> list[str]:
    """Rung names of a user ladder YAML, in file order."""
    from densescale.models import load_ladder_yaml

    try:
        return list(load_ladder_yaml(path))
    except DenseScaleError as e:
        raise ConfigError(f"ladder.file: {e}") from None


def non_embedding_params(rung: str, ladder_file: Path | None, proj_dim: int = 768) -> int:
    """Non-embedding parameter count N of a rung, as the paper counts it."""
    from densescale.models import count_non_embedding_params, resolve_rung

    try:
        return count_non_embedding_params(resolve_rung(rung_ref(rung, ladder_file)), proj_dim)
    except DenseScaleError as e:
        raise ConfigError(f"ladder: {e}") from None
