"""Who runs which point: a file lock per output folder and a claim per point in the database.

* One driver per output folder: an exclusive ``flock`` on ``<output_dir>/.driver.lock`` (the OS
  drops it when the process dies, so a killed driver never blocks its restart).
* One training per point across every driver that shares a results database (several machines,
  one PostgreSQL server; or several output folders, one SQLite file): a driver claims each point
  with one conditional UPDATE (:meth:`Store.claim`) and keeps its claims alive with a heartbeat.
  A claim whose heartbeat is older than the lease is taken over (its driver died); a claim of a
  dead driver of the same folder (same host and output folder, which the file lock proves dead)
  is taken over at once.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from pathlib import Path
from typing import IO

from densescale.errors import DenseScaleError
from densescale.study.store import Store
from densescale.utils import prepare_output_dir

LEASE_S = 600.0  # a point whose driver shows no sign of life for this long is taken over


def owner_prefix(folder: Path) -> str:
    """The part of an owner id shared by every driver of ``folder`` on this host."""
    return f"{socket.gethostname()}|{Path(folder).resolve()}|"


def new_owner(folder: Path) -> str:
    """A unique owner id for this driver: host, output folder, pid and a random tag."""
    return f"{owner_prefix(folder)}pid {os.getpid()} {uuid.uuid4().hex[:8]}"


def driver_lock(folder: Path) -> IO[str]:
    """An exclusive lock on ``<folder>/.driver.lock``, held until the returned file is closed
    or the process ends; a second driver of the same folder is refused, naming the holder."""
    prepare_output_dir(folder)
    f = open(folder / ".driver.lock", "a+")  # noqa: SIM115 - held open as the lock
    try:
        import fcntl

        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except ImportError:  # not POSIX: no file lock (database claims still apply)
        return f
    except OSError:
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        raise DenseScaleError(f"{folder}: this study is already being run by {holder}; "
                              "wait for it or stop it first") from None
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    f.flush()
    return f


class Heartbeat:
    """A daemon thread that refreshes ``owner``'s claims every ``interval`` seconds."""

    def __init__(self, store: Store, owner: str, interval: float):
        self._store, self._owner, self._interval = store, owner, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="densescale-heartbeat",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._store.heartbeat(self._owner)
            except DenseScaleError:  # a transient database fault: try again next beat
                continue

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
