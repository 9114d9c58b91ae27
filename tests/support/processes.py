"""The CLI in its own process, as a pipeline runs it: one call to its end (``cli``), or one in
the background whose output a test reads as it comes (``Reconciler``), and ``poll`` to wait for a
moment in it. A subprocess has its own chdb engine, can be killed, and sees only its environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
T = TypeVar("T")


def cli(
    env: dict[str, str] | None,
    *args: str,
    ok: tuple[int, ...] = (0, 2),
    timeout: float = 300,
    stdin: str | None = None,
    cwd: Path = ROOT,
) -> subprocess.CompletedProcess[str]:
    """``python -m reconciler ARGS`` to its end. An exit code outside ``ok`` fails the test with
    the output (``ok=()`` accepts any: the test checks the code itself). ``env`` None: this
    process's environment, with the repository on the path."""
    p = subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        env=env if env is not None else {**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
    )
    if ok and p.returncode not in ok:
        raise AssertionError(f"reconciler {' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


class Reconciler:
    """``python -m reconciler ...`` in the background; its stdout and stderr are read line by
    line as they come (the plain console prints ``start    <action id>`` when an action starts)."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.args = args
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler", *args],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._cv = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for t in self._readers:
            t.start()

    def _read(self, stream: Any, into: list[str]) -> None:
        for line in stream:
            with self._cv:
                into.append(line.rstrip("\n"))
                self._cv.notify_all()
        with self._cv:
            self._cv.notify_all()

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def text(self) -> str:
        with self._cv:
            return "\n".join(self.out) + "\n--- stderr ---\n" + "\n".join(self.err)

    def wait_line(self, needle: str, timeout: float = 120) -> str:
        """The first stderr line containing ``needle``; fails if the process ends without it."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for line in self.err:
                    if needle in line:
                        return line
                if not self.alive and not any(t.is_alive() for t in self._readers):
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(min(left, 0.2))
        self.kill()
        pytest.fail(f"no line with {needle!r} from reconciler {' '.join(self.args)}:\n{self.text()}")

    def kill(self) -> None:
        if self.alive:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def finish(self, timeout: float = 240) -> int:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"reconciler {' '.join(self.args)} did not end within {timeout:.0f}s:\n{self.text()}")
        for t in self._readers:
            t.join(timeout=10)
        return self.proc.returncode


def poll(
    what: str, check: Callable[[], T | None], proc: Reconciler | None = None, timeout: float = 120, every: float = 0.01
) -> T:
    """Call ``check`` until it returns something truthy; fail if ``proc`` ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        if proc is not None and not proc.alive:
            pytest.fail(f"the apply ended before {what}:\n{proc.text()}")
        time.sleep(every)
    if proc is not None:
        proc.kill()
    pytest.fail(f"timed out waiting for {what}")
