"""One spelling of UTC timestamps for every layer."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["UTC", "iso", "parse_iso"]


def iso(t: datetime) -> str:
    """``2026-11-25T03:00:00Z`` (microseconds kept only when present)."""
    s = t.astimezone(UTC).isoformat()
    return s.replace("+00:00", "Z")


def parse_iso(s: str) -> datetime:
    """Parse ISO 8601; a value without a zone is UTC."""
    t = datetime.fromisoformat(s.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)
