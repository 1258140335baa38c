"""A thread-safe record of every output action and failure, in memory and optionally as JSONL."""

from __future__ import annotations

import collections
import json
import threading
import time
from pathlib import Path
from typing import Any


class ActionLog:
    """Records ``{"t_ns": time.monotonic_ns(), "device": ..., "event": ..., ...}`` dicts.

    Each record is kept in a bounded in-memory ring and, when ``path`` is given, appended to a JSONL
    file and flushed at once, so the log survives the process being killed.

    Parameters
    ----------
    path
        Optional JSONL file (opened for append).
    maxlen
        How many records the in-memory ring keeps: at 20 firings a second (3 records each) the
        default holds the last ~3 minutes in ~4 MB; the JSONL file keeps everything.
    """

    def __init__(self, path: str | Path | None = None, maxlen: int = 10_000) -> None:
        self._records: collections.deque[dict[str, Any]] = collections.deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self.path = Path(path) if path is not None else None
        self._file = open(self.path, "a", encoding="utf-8") if self.path is not None else None  # noqa: SIM115

    def record(self, event: str, device: str = "", t_ns: int | None = None, **fields: Any) -> dict:
        """Append one record and return it. ``t_ns`` defaults to ``time.monotonic_ns()`` now."""
        rec = {"t_ns": time.monotonic_ns() if t_ns is None else t_ns, "device": device}
        rec["event"] = event
        rec.update(fields)
        with self._lock:
            self._records.append(rec)
            if self._file is not None:
                self._file.write(json.dumps(rec, default=str) + "\n")
                self._file.flush()
        return rec

    def keep(self, maxlen: int) -> None:
        """From now on keep the last ``maxlen`` records in memory (those held stay)."""
        with self._lock:
            self._records = collections.deque(self._records, maxlen=maxlen)

    def records(self, event: str | None = None, device: str | None = None) -> list[dict]:
        """A copy of the in-memory records, optionally filtered by event and device name."""
        with self._lock:
            out = list(self._records)
        return [
            r
            for r in out
            if (event is None or r["event"] == event) and (device is None or r["device"] == device)
        ]

    def close(self) -> None:
        """Close the JSONL file (the in-memory records stay readable)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)
