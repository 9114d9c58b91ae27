"""Loaded by scripts/test-shifted-dates.sh (through a .pth file in .venv) into every Python process
of the shifted-date test runs under libfaketime; it does nothing unless FAKETIME is set.

Debian's libfaketime 0.9.10 breaks Python's waits either way: with the monotonic clock faked,
timed lock waits (``Event.wait(t)``, ``Lock.acquire(timeout=)``) hang; with
``FAKETIME_DONT_FAKE_MONOTONIC=1`` those work, but its ``clock_nanosleep`` wrapper still shifts an
absolute ``CLOCK_MONOTONIC`` deadline by the fake offset, so ``time.sleep`` (which sleeps until
an absolute monotonic deadline) fails with EINVAL. The runs use the second mode and sleep with a
timed wait instead, which is what this file installs in every Python process they start.
"""

from __future__ import annotations

import os
import threading
import time

if os.environ.get("FAKETIME"):

    def _sleep(seconds: float) -> None:
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        threading.Event().wait(seconds)

    time.sleep = _sleep
