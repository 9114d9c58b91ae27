"""Core code never prints: it tells a ``Console`` what happens, and the CLI decides how that
looks (a live terminal, plain lines for CI logs, nothing in tests)."""

from __future__ import annotations

from typing import Protocol

from .model import Action, Outcome


class Console(Protocol):
    def info(self, message: str) -> None: ...

    def warn(self, message: str) -> None: ...

    def action_started(self, action: Action) -> None: ...

    def action_progress(self, action: Action, message: str) -> None: ...

    def action_finished(self, action: Action, outcome: Outcome) -> None: ...


class NullConsole:
    """Swallows everything; collects lines for tests that want to look."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str) -> None:
        self.lines.append(message)

    def warn(self, message: str) -> None:
        self.lines.append("warning: " + message)

    def action_started(self, action: Action) -> None:
        self.lines.append(f"start {action.id}")

    def action_progress(self, action: Action, message: str) -> None:
        pass

    def action_finished(self, action: Action, outcome: Outcome) -> None:
        self.lines.append(f"{outcome.status.value} {action.id} {outcome.detail}")
