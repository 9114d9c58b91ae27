"""Markdown for pull-request comments: a summary, a table of actions, drift and warnings."""

from __future__ import annotations

from ..model import ACTION_ORDER, Plan, iso
from .storage import held_table, storage_table

#: GitHub refuses comments longer than this
COMMENT_LIMIT = 65536


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def plan_markdown(plan: Plan, limit: int = COMMENT_LIMIT) -> str:
    s = plan.summary()
    head = [
        f"### Backup reconciler plan ({iso(plan.now)})",
        "",
        "**"
        + ", ".join(f"{s[t.value]} {t.value}" for t in ACTION_ORDER)
        + "**"
        + (f" · {len(plan.drift)} drift" if plan.drift else "")
        + (f" · {len(plan.warnings)} warnings" if plan.warnings else ""),
        "",
        "| action | count |",
        "|---|---:|",
        *[f"| {t.value} | {s[t.value]} |" for t in ACTION_ORDER],
        "",
    ]
    rows = ["| type | target | reason |", "|---|---|---|"]
    rows += [f"| {a.type.value} | `{_cell(a.id)}` | {_cell(a.reason)} |" for a in plan.actions]
    body = rows + [""] if plan.actions else ["No changes.", ""]
    if plan.held:
        body += ["**Held by an object lock** (pruned once the lock ends):", "", *held_table(plan), ""]
    if any(e.bytes_now or e.bytes_after for e in plan.storage):
        body += ["**Storage** (noncurrent versions not counted):", "", *storage_table(plan), ""]
    if plan.drift:
        body += ["<details><summary>Drift (" + str(len(plan.drift)) + ")</summary>", ""]
        body += [
            f"- **{d.type.value}** {d.schedule or d.service or d.bucket or ''}: {_cell(d.detail)}" for d in plan.drift
        ]
        body += ["", "</details>", ""]
    if plan.warnings:
        body += ["<details><summary>Warnings (" + str(len(plan.warnings)) + ")</summary>", ""]
        body += [f"- {_cell(w)}" for w in plan.warnings]
        body += ["", "</details>", ""]
    foot = [f"<sub>config {plan.config_digest} · state {plan.state_digest}</sub>", ""]
    text = "\n".join(head + body + foot)
    if len(text) <= limit:
        return text
    # keep whole lines until the limit, then say what was cut
    kept: list[str] = []
    size = len("\n".join(head + foot)) + 200
    lines = head + body
    for i, line in enumerate(lines):
        if size + len(line) + 1 > limit:
            note = (
                f"_…{len(lines) - i} more lines cut to stay under GitHub's {limit}-character limit; "
                "run `reconciler plan` for all._"
            )
            return "\n".join(kept + ["", note, ""] + foot)
        kept.append(line)
        size += len(line) + 1
    return "\n".join(kept + foot)
