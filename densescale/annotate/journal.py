"""Append-only, fsynced JSONL journal that makes long generation runs resumable.

Layout of ``out/journal.jsonl``::

    {"type": "header", "args_hash": "…", "args": {…}, "method": "llm", "created": "…"}
    {"type": "result", "key": "…", "doc_id": "…", "queries": ["…"], "usage": {…}}
    {"type": "failure", "key": "…", "doc_id": "…", "error": "…", "attempts": 3}

Records are appended and flushed as results arrive (a killed process loses nothing it has
recorded) and ``os.fsync``-ed every ``fsync_every`` records or ``fsync_interval`` seconds (a power
loss loses at most that small batch). On open, a torn last line (a crash in the
middle of a write) is cut off before anything new is appended. The header stores a hash of the
arguments that determine the output; reopening with different arguments raises ConfigError.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from densescale.errors import ConfigError, DataError


def args_hash(args: dict) -> str:
    """sha256 of the canonical JSON of ``args``."""
    blob = json.dumps(args, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class Journal:
    """Open (create or resume) a journal; ``done`` maps item key -> its last record.

    Args:
        path: The journal file.
        args: Arguments that determine the output (hashed into the header).
        method: Generator name, stored in the header.
        fsync_every: Records per fsync (1 = every record; every record is flushed).
        fsync_interval: Also flush + fsync when this many seconds passed since the last one.
    """

    def __init__(self, path: str | os.PathLike, args: dict, method: str,
                 fsync_every: int = 1, fsync_interval: float = 1.0):
        self.path = Path(path)
        self.hash = args_hash(args)
        self.records: dict[str, dict] = {}
        self.fsync_every = max(1, fsync_every)
        self.fsync_interval = fsync_interval
        self._pending = 0
        self._last_sync = time.monotonic()
        self.resumed = self.path.exists() and self.path.stat().st_size > 0
        if self.resumed:
            self._load(args)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "a", encoding="utf-8")
        if not self.resumed:
            header = {"type": "header", "args_hash": self.hash, "method": method, "args": args,
                      "created": datetime.now(UTC).isoformat()}
            self._write(header)
            self.sync()

    def _load(self, args: dict) -> None:
        raw = self.path.read_bytes()
        good_end = 0
        lines = raw.split(b"\n")
        pos = 0
        parsed: list[dict] = []
        for i, line in enumerate(lines):
            end = pos + len(line) + 1
            last = i == len(lines) - 1
            if line.strip():
                try:
                    rec = json.loads(line)
                    if last:  # complete JSON but no newline yet: keep it, add the newline
                        raise ValueError
                    parsed.append(rec)
                    good_end = end
                except ValueError:
                    if not last and i != len(lines) - 2:
                        raise DataError("corrupt journal line (not the last one)", self.path, i + 1)
                    break
            else:
                good_end = min(end, len(raw))
            pos = end
        if good_end < len(raw):  # cut a torn last line before appending
            with open(self.path, "r+b") as f:
                f.truncate(good_end)
                f.flush()
                os.fsync(f.fileno())
        if not parsed or parsed[0].get("type") != "header":
            raise DataError("journal has no header line; delete it or use another --out", self.path)
        head = parsed[0]
        if head.get("args_hash") != self.hash:
            old = head.get("args", {})
            diff = sorted(k for k in set(old) | set(args) if old.get(k) != args.get(k))
            raise ConfigError(
                f"{self.path} was written with different arguments (differ: {', '.join(diff)}); "
                "rerun with the same arguments to resume, or use a new --out")
        for rec in parsed[1:]:
            if rec.get("type") in ("result", "failure") and "key" in rec:
                prev = self.records.get(rec["key"])
                if prev is None or prev["type"] == "failure":  # a result beats a failure
                    self.records[rec["key"]] = rec

    def _write(self, rec: dict) -> None:
        self._f.write(json.dumps(rec, ensure_ascii=False) + "\n")

    def append(self, rec: dict) -> None:
        """Append and flush one record (fsync per ``fsync_every`` records or interval)."""
        self._write(rec)
        self._f.flush()
        prev = self.records.get(rec["key"])
        if prev is None or prev["type"] == "failure":
            self.records[rec["key"]] = rec
        self._pending += 1
        if (self._pending >= self.fsync_every
                or time.monotonic() - self._last_sync >= self.fsync_interval):
            self.sync()

    def sync(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())
        self._pending = 0
        self._last_sync = time.monotonic()

    def close(self) -> None:
        if not self._f.closed:
            self.sync()
            self._f.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
