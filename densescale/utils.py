"""Small shared helpers: cache location, output folders and atomic writes, optional packages,
seeding, hardware description.

Output faults (read-only or full disk, a path under a regular file) raise :class:`OutputError`,
a DenseScaleError naming the target path (the CLI prints ``error: <path>: <reason>``, exit 1);
temporary files are removed first, so the target is left as it was.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import platform
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from densescale.errors import DenseScaleError

# What --data accepts (densescale.data.open_dataset), for help texts.
DATA_SOURCES = ("a dataset folder (BEIR or MS MARCO layout), a name under "
                "$DENSESCALE_DATA_DIR (scifact, nfcorpus, fiqa, arguana, squad_v11 are "
                "downloaded on first use), beir/NAME or beir/NAME/SPLIT, irds:ID (ir_datasets) "
                "or hf:PATH (Hugging Face datasets folder or hub id)")


class OutputError(DenseScaleError, OSError):
    """An output path cannot be written. Also an OSError, for callers that catch those."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        DenseScaleError.__init__(self, f"{self.path}: {reason}")

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _file_ancestor(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` (or ``path``) when it is not a folder."""
    for p in (path, *path.parents):
        if p.exists() or p.is_symlink():
            return None if p.is_dir() else p
    return None


def output_error(path: str | os.PathLike, e: OSError) -> OutputError:
    """OutputError naming ``path`` for an OSError met while writing it."""
    if isinstance(e, OutputError):
        return e
    path = Path(path)
    blocker = _file_ancestor(path.parent)
    if blocker is not None:
        return OutputError(path, f"cannot write: {blocker} is a file, not a folder")
    return OutputError(path, f"cannot write ({e.strerror or e})")


def prepare_output_dir(path: str | os.PathLike) -> Path:
    """Create an output folder (with parents) and check that files can be created in it.

    Raises:
        OutputError: it is a file, sits under a file, or is read-only (names the folder).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(path, "exists and is not a folder")
    blocker = _file_ancestor(path)
    if blocker is not None:
        raise OutputError(path, f"cannot create folder: {blocker} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".densescale-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OutputError(path, f"cannot write in this folder ({e.strerror or e})") from None
    return path


# Optional packages -> the densescale extra that installs them (pyproject.toml
# [project.optional-dependencies]); `densescale[all]` installs every one.
EXTRAS: dict[str, str] = {
    "matplotlib": "plots",
    "pyarrow": "parquet",
    "fastparquet": "parquet",
    "ray": "ray",
    "ir_datasets": "irds",
    "datasets": "hf",
}


def missing_extra(e: ImportError) -> str | None:
    """``pip install 'densescale[<extra>]'`` advice for an ImportError of an optional package
    (by the missing module's name, else a package named in the message, as pandas' "Unable to
    find a usable engine; tried using: 'pyarrow'..."), or None for any other ImportError."""
    name = (e.name or "").split(".")[0]
    if name not in EXTRAS:
        text = str(e)
        name = next((m for m in EXTRAS if f"'{m}'" in text or f" {m} " in f" {text} "), "")
    if name not in EXTRAS:
        return None
    return (f"this needs the optional package {name!r}: pip install "
            f"'densescale[{EXTRAS[name]}]' (or 'densescale[all]')")


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import an optional dependency, or say which extra installs it.

    Args:
        module: Module to import, e.g. "ray".
        extra: The densescale extra that provides it, e.g. "ray".
        purpose: What needs it, e.g. "--executor ray".

    Raises:
        DenseScaleError: ``<purpose> needs <module>: pip install 'densescale[<extra>]'``.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DenseScaleError(f"{purpose} needs the optional package {module!r}: "
                              f"pip install 'densescale[{extra}]'") from None


def cache_dir() -> Path:
    """$DENSESCALE_CACHE_DIR, else ~/.cache/densescale. Created on demand."""
    d = Path(os.environ.get("DENSESCALE_CACHE_DIR") or Path.home() / ".cache" / "densescale")
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        blocker = _file_ancestor(d)
        reason = (f"{blocker} is a file, not a folder" if blocker is not None
                  else e.strerror or str(e))
        raise OutputError(d, f"cannot create the cache folder ({reason}); set "
                             "DENSESCALE_CACHE_DIR to a writable folder") from None
    return d


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename into place.

    Raises:
        OutputError: the file cannot be written (names ``path``); nothing is left behind.
    """
    atomic_write_files({path: data})


def atomic_write_files(files: dict[str | os.PathLike, bytes]) -> None:
    """Write several files all or nothing: every temporary file is written and fsynced before
    the first is renamed into place, so a write fault changes none of the targets.

    Raises:
        OutputError: names the file that could not be written; no temporary file is left.
    """
    staged: list[tuple[str, Path]] = []
    path = Path()
    try:
        for path, data in ((Path(p), d) for p, d in files.items()):
            staged.append((_write_temp(path, data), path))
        for tmp, path in staged:
            os.replace(tmp, path)
    except BaseException as e:
        for tmp, _ in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)
        if isinstance(e, OSError):
            raise output_error(path, e) from None
        raise


def _write_temp(path: Path, data: bytes) -> str:
    """A fsynced temporary copy of ``data`` beside ``path`` (mode as a normal new file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual file mode
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return tmp


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def json_safe(obj: Any) -> Any:
    """``obj`` as strict-JSON-ready Python values: NaN/inf floats -> None (JSON null), numpy
    scalars and arrays -> Python numbers and lists, paths -> str, tuples/sets -> lists."""
    if isinstance(obj, dict):
        return {_json_key(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in obj]
    if type(obj).__module__ == "numpy":  # np.float64, np.int64, np.bool_, np.ndarray
        obj = obj.tolist() if hasattr(obj, "tolist") else obj
        if isinstance(obj, list):
            return json_safe(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if type(obj).__name__ in ("NAType", "NaTType"):  # pandas missing values
        return None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def _json_key(key: Any) -> Any:
    """A dict key json.dumps accepts: str/int/float/bool/None as is, numpy scalars as Python
    values, anything else (paths, tuples) as its ``str``."""
    if type(key).__module__ == "numpy" and hasattr(key, "item"):
        key = key.item()
    return key if key is None or isinstance(key, (str, int, float, bool)) else str(key)


def json_text(obj: Any, *, indent: int | None = 2) -> str:
    """Strict JSON text of ``obj`` (see :func:`json_safe`; other objects via ``str``).

    Never writes ``NaN`` / ``Infinity``: ``allow_nan=False`` guards what ``json_safe`` missed.
    """
    return json.dumps(json_safe(obj), indent=indent, ensure_ascii=False, allow_nan=False,
                      default=str)


def dump_json(obj: Any, *, indent: int | None = 2, file: TextIO | None = None) -> None:
    """Print ``obj`` as one strict JSON document (NaN/inf -> null) on stdout (or ``file``).

    Every command's ``--json`` goes through here, so any output parses with a strict parser.
    """
    stream = sys.stdout if file is None else file
    stream.write(json_text(obj, indent=indent) + "\n")
    stream.flush()


def set_seed(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def hardware_info() -> dict:
    """What ran a job: CPU/GPU names and counts, torch version."""
    import torch

    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_count"] = torch.cuda.device_count()
    return info


def git_commit() -> str | None:
    """Commit of the densescale source tree, when it is a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def device(name: str | None = None):
    """torch.device: the given name, else cuda when available, else cpu."""
    import torch

    return torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))
