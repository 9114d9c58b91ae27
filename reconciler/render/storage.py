"""The plan's held backups and storage estimate, in words and tables (docs/compliance.md)."""

from __future__ import annotations

from ..model import Held, Plan, iso
from .words import human_size as size


def money(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _what(h: Held) -> str:
    """A held backup as a reader finds it: ``<schedule>/<backup>``, or ``_snapshots/<name>``."""
    return f"_snapshots/{h.snapshot}" if h.snapshot is not None else f"{h.schedule or ''}/{h.backup}"


def held_lines(plan: Plan) -> list[str]:
    return [f"  {_what(h)} in {h.bucket} until {iso(h.until)}: {h.reason}" for h in plan.held]


def storage_lines(plan: Plan) -> list[str]:
    out = []
    for e in plan.storage:
        delta = e.bytes_after - e.bytes_now
        sign = "+" if delta >= 0 else "-"
        line = f"  {e.bucket}: {size(e.bytes_now)} now, {size(e.bytes_after)} after ({sign}{size(abs(delta))})"
        if e.monthly_cost_now is not None and e.monthly_cost_after is not None:
            line += f"; {money(e.monthly_cost_now)} -> {money(e.monthly_cost_after)} a month"
        out.append(line)
    return out


def storage_table(plan: Plan) -> list[str]:
    rows = ["| bucket | now | after | monthly cost now | monthly cost after |", "|---|---:|---:|---:|---:|"]
    for e in plan.storage:
        rows.append(
            f"| {e.bucket} | {size(e.bytes_now)} | {size(e.bytes_after)} | {money(e.monthly_cost_now)} "
            f"| {money(e.monthly_cost_after)} |"
        )
    return rows


def held_table(plan: Plan) -> list[str]:
    rows = ["| backup | bucket | locked until | reason |", "|---|---|---|---|"]
    rows += [f"| `{_what(h)}` | {h.bucket} | {iso(h.until)} | {h.reason} |" for h in plan.held]
    return rows
