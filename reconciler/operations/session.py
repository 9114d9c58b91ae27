"""What every command starts with: the config, loaded and its secrets registered with the
redactor, and the time it decides as of."""

from __future__ import annotations

from datetime import datetime

from .. import redact
from ..config import load_config
from ..errors import ReconcilerError
from ..model import UTC, Config, parse_iso


def load(path: str) -> Config:
    """The config at ``path``, with every secret it holds hidden from every message after this."""
    config = load_config(path)
    redact.register(config.secrets())
    return config


def parse_now(value: str | None) -> datetime:
    """``--now``, or the real time (to the second) when not given."""
    if value is None:
        return datetime.now(UTC).replace(microsecond=0)
    try:
        return parse_iso(value)
    except ValueError:
        raise ReconcilerError(
            f"{value!r} is not an ISO 8601 time such as 2026-11-25T03:00:00Z", where="--now"
        ) from None
