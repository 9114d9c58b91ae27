"""Request accounting: how many storage requests a run made, by kind, and the bytes it read
(``--stats``), so that the cost of a plan is visible. One counter per process: a CLI run is one
process; tests reset it."""

from __future__ import annotations

import threading
from collections import Counter


class RequestStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.bytes_read = 0

    def request(self, what: str) -> None:
        """Count one attempt of a request described as "<Provider> <operation> on <url>"."""
        words = what.split(" ")
        op = " ".join(words[:2]) if len(words) > 1 else what
        if len(words) > 2 and words[1] == "batch":
            op = " ".join(words[:3])
        with self._lock:
            self.requests[op] += 1

    def read(self, n: int) -> None:
        with self._lock:
            self.bytes_read += n

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.bytes_read = 0

    def total(self) -> int:
        with self._lock:
            return sum(self.requests.values())

    def line(self) -> str:
        with self._lock:
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.requests.items()))
            return f"storage requests: {sum(self.requests.values())} ({kinds or 'none'}); bytes read: {self.bytes_read}"


STATS = RequestStats()
