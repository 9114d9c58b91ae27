"""Consoles for the CLI: a live display on a terminal, plain timestamped lines elsewhere."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import TextIO

from ..errors import ReconcilerError
from ..model import UTC, Action, Outcome, OutcomeStatus, Plan
from ..redact import redact

_MARK = {
    OutcomeStatus.DONE: "done",
    OutcomeStatus.FAILED: "FAILED",
    OutcomeStatus.SKIPPED: "skipped",
    OutcomeStatus.HELD: "held",
}


class PlainConsole:
    """One line per event, for CI logs. Progress lines at most every ``progress_every`` seconds
    per action, so a long export does not flood the log."""

    def __init__(self, stream: TextIO | None = None, progress_every: float = 10.0) -> None:
        self.stream = stream or sys.stderr
        self.progress_every = progress_every
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def _line(self, text: str) -> None:
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        with self._lock:
            print(f"[{stamp}] {redact(text)}", file=self.stream, flush=True)

    def info(self, message: str) -> None:
        self._line(message)

    def warn(self, message: str) -> None:
        self._line("warning: " + message)

    def action_started(self, action: Action) -> None:
        self._line(f"start    {action.id}")

    def action_progress(self, action: Action, message: str) -> None:
        now = time.monotonic()
        if now - self._last.get(action.id, 0.0) >= self.progress_every:
            self._last[action.id] = now
            self._line(f"running  {action.id}: {message}")

    def action_finished(self, action: Action, outcome: Outcome) -> None:
        took = ""
        if outcome.started_at and outcome.finished_at:
            took = f" in {(outcome.finished_at - outcome.started_at).total_seconds():.1f}s"
        self._line(f"{_MARK[outcome.status]:<8} {action.id}{took}: {outcome.detail}")


class TerminalConsole:
    """A rich live display: a spinner per running action with its latest progress."""

    def __init__(self) -> None:
        from rich.console import Console as RichConsole
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.rich = RichConsole(stderr=True, highlight=False)
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=self.rich,
            transient=True,
        )
        self._tasks: dict[str, int] = {}
        self._lock = threading.Lock()
        self._started = False

    def _ensure(self) -> None:
        if not self._started:
            self.progress.start()
            self._started = True

    def close(self) -> None:
        if self._started:
            self.progress.stop()
            self._started = False

    def info(self, message: str) -> None:
        self.rich.print(redact(message), markup=False)

    def warn(self, message: str) -> None:
        self.rich.print("[yellow]warning:[/yellow] " + _esc(redact(message)))

    def action_started(self, action: Action) -> None:
        with self._lock:
            self._ensure()
            self._tasks[action.id] = self.progress.add_task(_esc(action.id), total=None)

    def action_progress(self, action: Action, message: str) -> None:
        with self._lock:
            task = self._tasks.get(action.id)
            if task is not None:
                self.progress.update(task, description=_esc(f"{action.id}: {redact(message)}"))  # type: ignore[arg-type]

    def action_finished(self, action: Action, outcome: Outcome) -> None:
        with self._lock:
            task = self._tasks.pop(action.id, None)
            if task is not None:
                self.progress.remove_task(task)  # type: ignore[arg-type]
            colour = {
                OutcomeStatus.DONE: "green",
                OutcomeStatus.FAILED: "red",
                OutcomeStatus.SKIPPED: "yellow",
                OutcomeStatus.HELD: "cyan",
            }[outcome.status]
            self.rich.print(
                f"[{colour}]{_MARK[outcome.status]:<8}[/{colour}] {_esc(action.id)}: {_esc(redact(outcome.detail))}"
            )
            if not self._tasks:
                self.close()


def _esc(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def console_for(stream: TextIO | None = None) -> PlainConsole | TerminalConsole:
    s = stream or sys.stderr
    return TerminalConsole() if s.isatty() else PlainConsole(s)


def confirm_on_terminal(auto_approve: bool) -> Callable[[Plan], None]:
    """``apply`` asks before a fresh plan's actions run, like Terraform: only ``yes`` goes on. Without
    a terminal to ask on it refuses, unless ``--auto-approve``."""

    def confirm(plan: Plan) -> None:
        if auto_approve:
            return
        if not sys.stdin.isatty():
            raise ReconcilerError(
                "refusing to apply without --auto-approve: standard input is not a terminal to confirm on"
            )
        if input(f"Apply these {len(plan.actions)} actions? Only 'yes' will be accepted: ").strip() != "yes":
            raise ReconcilerError("apply cancelled")

    return confirm
