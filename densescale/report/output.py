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


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextmanager
def replacing_outputs(out: Path) -> Iterator[None]:
    """Write a report into ``out`` all or nothing.

    A previous report's outputs (``OUTPUTS``) are moved aside into a hidden folder of ``out``
    first. When the body succeeds they are deleted; when it fails (a full disk, a bad results
    file, Ctrl-C) the new outputs are removed, the previous ones moved back, and the folders
    created for the report (``out`` and missing parents) removed: a failed report never leaves
    partial output behind, nor a mix of two reports. Other files in ``out`` are left alone.

    Raises:
        OutputError: ``out`` cannot be created or written (from ``prepare_output_dir``).
    """
    created = missing_folders(out)
    try:
        prepare_output_dir(out)
        aside = Path(tempfile.mkdtemp(dir=out, prefix=".report-", suffix=".old"))
    except BaseException:
        remove_empty(created)
        raise
    try:
        for name in OUTPUTS:
            if (out / name).exists() or (out / name).is_symlink():
                os.replace(out / name, aside / name)
        yield
    except BaseException:
        for name in OUTPUTS:
            try:
                _remove(out / name)
                if (aside / name).exists() or (aside / name).is_symlink():
                    os.replace(aside / name, out / name)
            except OSError:
                pass  # the report's own error is the one to show
        shutil.rmtree(aside, ignore_errors=True)
        remove_empty(created)
        raise
    shutil.rmtree(aside, ignore_errors=True)
