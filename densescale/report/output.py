"""A report's output folder, written all or nothing.

    with replacing_outputs(Path("report")):
        ...  # write index.html, report.json, figures/, fits/

A failed report (a full disk, a bad results file, Ctrl-C) leaves the folder as it was: the
previous report, if any, whole, and no partial new one beside it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from densescale.utils import prepare_output_dir

# what a report writes in its folder (replaced as a whole by the next report)
OUTPUTS = ("index.html", "report.json", "figures", "fits")


def missing_folders(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, deepest first (what creating ``path``
    would create)."""
    path = Path(path)
    return [p for p in (path, *path.parents) if not p.exists() and not p.is_symlink()]


def remove_empty(folders: list[Path]) -> None:
    """Remove each folder (deepest first) while it is empty; stops at the first that is not."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif _exists(path):
        path.unlink()


def _put_back(out: Path, aside: Path, names: list[str]) -> None:
    """Move ``names`` from ``aside`` back into ``out`` (after removing what stands there), then
    remove ``aside`` if that emptied it; what cannot be moved back stays in ``aside``, whole.
    Never raises: the report's own error is the one to show."""
    for name in names:
        try:
            _remove(out / name)
            os.replace(aside / name, out / name)
        except OSError:
            pass
    try:
        aside.rmdir()
    except OSError:
        pass


@contextmanager
def replacing_outputs(out: Path) -> Iterator[None]:
    """Write a report into ``out`` all or nothing.

    A previous report's outputs (``OUTPUTS``) are moved aside into a hidden folder of ``out``
    (``.report-*.old``) first. When the body succeeds they are deleted; when it fails (a full
    disk, a bad results file, Ctrl-C) the new outputs are removed, the previous ones moved back,
    and the folders created for the report (``out`` and missing parents) removed: a failed
    report leaves neither partial output nor a mix of two reports. Other files in ``out`` are
    left alone.

    Raises:
        OutputError: ``out`` cannot be created or written (from ``prepare_output_dir``).
    """
    out = Path(out)
    created = missing_folders(out)
    moved: list[str] = []
    try:
        prepare_output_dir(out)
        aside = Path(tempfile.mkdtemp(dir=out, prefix=".report-", suffix=".old"))
        try:
            for name in OUTPUTS:
                if _exists(out / name):
                    os.replace(out / name, aside / name)
                    moved.append(name)
        except BaseException:
            _put_back(out, aside, moved)
            raise
    except BaseException:
        remove_empty(created)
        raise
    try:
        yield
    except BaseException:
        for name in OUTPUTS:  # all new: the old ones were moved aside
            if name not in moved:
                try:
                    _remove(out / name)
                except OSError:
                    pass
        _put_back(out, aside, moved)
        remove_empty(created)
        raise
    shutil.rmtree(aside, ignore_errors=True)
