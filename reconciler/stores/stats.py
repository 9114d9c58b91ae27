"""Request accounting: how many storage requests a run made, by (provider, operation), and the
bytes it read (``--stats``), so that the cost of a plan is visible. One counter per process: a CLI
run is one process; tests reset it.

Stores count at the call site, with the two parts as data (``STATS.request("S3", "GetObject")``,
once per attempt); ``line()`` prints them as ``S3 GetObject 1``, sorted, as the CLI always has.
"""

from __future__ import annotations

import threading
from collections import Counter


class RequestStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, str]] = Counter()  # (provider, operation) -> attempts
        self.bytes_read = 0

    def request(self, provider: str, operation: str) -> None:
        """Count one attempt of ``operation`` (``GetObject``, ``objects.list``) on ``provider``."""
        with self._lock:
            self.requests[(provider, operation)] += 1

    def read(self, n: int) -> None:
        with self._lock:
            self.bytes_read += n

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.bytes_read = 0

    def count(self, provider: str, operation: str) -> int:
        with self._lock:
            return self.requests[(provider, operation)]

    def by_kind(self) -> dict[str, int]:
        """``{"S3 GetObject": 1, ...}``: the kinds as the line names them."""
        with self._lock:
            return {f"{p} {op}": n for (p, op), n in self.requests.items()}

    def total(self) -> int:
        with self._lock:
            return sum(self.requests.values())

    def line(self) -> str:
        kinds = sorted(self.by_kind().items())
        with self._lock:
            total, read = sum(self.requests.values()), self.bytes_read
        shown = ", ".join(f"{k} {v}" for k, v in kinds)
        return f"storage requests: {total} ({shown or 'none'}); bytes read: {read}"


STATS = RequestStats()
