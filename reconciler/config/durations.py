"""Durations as the config writes them: an integer and one unit, ``30s 15m 6h 7d 2w``.

One unit only (no ``1h30m``) on purpose: slots of ``every: D`` are multiples of D since the
epoch, so a duration must be something a reviewer reads at a glance, and the JSON Schema can
describe it with one pattern.
"""

from __future__ import annotations

import re
from datetime import timedelta

#: seconds per unit letter
UNITS: dict[str, int] = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

DURATION_PATTERN = r"^[0-9]+[smhdw]$"
_DURATION = re.compile(DURATION_PATTERN)

EXAMPLES = "30s, 15m, 6h, 7d or 2w"

#: the longest duration accepted: slot and retention arithmetic on dates stays in range with it
MAX_DURATION = timedelta(days=36500)


def duration_hint(text: str) -> str:
    """A clause naming the likely mistake in a malformed duration ('' when none stands out)."""
    value = text.strip()
    if re.fullmatch(r"([0-9]+[smhdw]){2,}", value):
        return "; only one unit is allowed, so write 90m instead of 1h30m"
    if re.fullmatch(r"[0-9]+", value):
        return "; add a unit, e.g. 6h"
    if re.fullmatch(r"[0-9]+\s*[A-Za-z]+", value):
        return "; units are s, m, h, d and w (lowercase)"
    if value.startswith("-"):
        return "; a duration cannot be negative"
    return ""


def parse_duration(text: str) -> timedelta:
    """Parse ``<integer><unit>`` with unit s, m, h, d or w into a timedelta.

    Raises ValueError with a message that says what is accepted; the message quotes the text,
    so do not pass secrets here (durations never are).
    """
    if not isinstance(text, str):
        raise ValueError(f"a duration must be a string like {EXAMPLES}, got {text!r}")
    value = text.strip()
    if not _DURATION.match(value):
        raise ValueError(
            f"`{text}` is not a duration: write an integer and one unit, like {EXAMPLES}{duration_hint(value)}"
        )
    digits, unit = value[:-1].lstrip("0") or "0", value[-1]
    # dates computed with a longer one would overflow (and int() refuses thousands of digits)
    if len(digits) > 12 or int(digits) * UNITS[unit] > MAX_DURATION.total_seconds():
        shown = value if len(value) <= 40 else value[:37] + "..."
        raise ValueError(f"`{shown}` is too long a duration; the longest is {MAX_DURATION.days}d (100 years)")
    return timedelta(seconds=int(digits) * UNITS[unit])
