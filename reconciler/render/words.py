"""Small phrases for reasons: a reviewer reads these in a pull request."""

from __future__ import annotations

from datetime import datetime, timedelta

from ..model import Schedule


def duration(td: timedelta) -> str:
    s = int(td.total_seconds())
    if s < 0:
        return "in the future"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            whole, rest = divmod(s, size)
            sub = {"d": ("h", 3600), "h": ("m", 60), "m": ("s", 1)}[unit]
            part = rest // sub[1]
            return f"{whole}{unit}" + (f"{part}{sub[0]}" if part and whole < 10 else "")
    return f"{s}s"


def ago(t: datetime | None, now: datetime) -> str:
    if t is None:
        return "at an unknown time"
    return f"{duration(now - t)} ago" if now >= t else f"{duration(t - now)} ahead of now"


def describe_schedule(s: Schedule) -> str:
    if s.cron:
        return f"cron '{s.cron}'"
    assert s.every is not None
    return f"every {duration(s.every)}"


def human_size(n: int) -> str:
    """Bytes in binary units, one decimal: what a reviewer compares at a glance (JSON has the bytes)."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def progress(what: str, done: int, total: int, files: tuple[int, int] | None = None, seconds: float = 0.0) -> str:
    """One progress line of long work (a copy, a checksum verification), the same on a terminal
    and in a log: ``streamed 42% (145.2 MiB of 345.3 MiB, 812 of 2358 files, 29.8 MiB/s)``."""
    pct = 100 * done // total if total else 100
    parts = [f"{human_size(done)} of {human_size(total)}"]
    if files is not None:
        parts.append(f"{files[0]} of {files[1]} files")
    if seconds > 0:
        parts.append(f"{human_size(int(done / seconds))}/s")
    return f"{what} {pct}% ({', '.join(parts)})"
