"""Error types. Every user-facing failure raises a DenseScaleError; the CLI prints it, exits 1."""

from __future__ import annotations


class DenseScaleError(Exception):
    """Base class for errors reported to the user (no traceback, exit status 1)."""


class DataError(DenseScaleError):
    """A problem with an input file. Names the file and, where known, the line."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        self.path = str(path) if path is not None else None
        self.line = line
        where = ""
        if self.path is not None:
            where = f"{self.path}:{line}: " if line is not None else f"{self.path}: "
        super().__init__(f"{where}{message}")


class ConfigError(DenseScaleError):
    """An invalid configuration value (names the key)."""


class TrainingDiverged(DenseScaleError):
    """Training produced a non-finite loss or contrastive entropy (NaN or inf).

    A study records such a point as failed, never as done.
    """

    def __init__(self, message: str, step: int | None = None):
        self.step = step
        super().__init__(message if step is None else f"step {step}: {message}")
