"""Terminal text, Terraform-like: one line per action with its reason underneath."""

from __future__ import annotations

from typing import Any

from ..model import (
    ACTION_ORDER,
    Action,
    ActionType,
    ApplyResult,
    CloudRestoreAction,
    CopyAction,
    Drift,
    ExportAction,
    OutcomeStatus,
    Plan,
    RestoreAction,
    ValidateAction,
    iso,
)
from .storage import held_lines, storage_lines
from .words import human_size

SYMBOL = {
    ActionType.CONFIGURE: "~",
    ActionType.EXPORT: "+",
    ActionType.COPY: "=",
    ActionType.VALIDATE: "?",
    ActionType.RESTORE: "<",
    ActionType.RECOVER: "^",
    ActionType.PRUNE: "-",
}


def action_title(a: Action) -> str:
    what = a.id.split("/", 1)[1] if "/" in a.id else a.id
    return f"{SYMBOL[a.type]} {a.type.value:<9} {what}{_what_of(a)}"


def _what_of(a: Action) -> str:
    """The type's own words after the id, as the explainer of each kind of action."""
    match a:
        case ExportAction():
            return f" ({a.kind}" + (f" on {a.base}" if a.base else "") + ")"
        case ValidateAction():
            return f" ({a.level.value}" + (", adopt" if a.adopt is not None else "") + ")"
        case CopyAction():
            return f" ({a.kind}, {a.method}, {a.level.value}: {a.source_bucket} → {a.bucket})"
        case CloudRestoreAction():
            return f" (Cloud backup {a.backup} of {a.service} → new service {a.new_service.get('name')})"
        case RestoreAction():
            return f" ({a.backup} → service {a.service})"
    return ""


def summary_line(plan: Plan) -> str:
    s = plan.summary()
    parts = [f"{s[t.value]} {t.value}" for t in ACTION_ORDER]
    return "Plan: " + ", ".join(parts) + "."


def drift_lines(drift: tuple[Drift, ...]) -> list[str]:
    out = []
    for d in drift:
        subject = d.schedule or d.service or d.bucket or ""
        out.append(f"  ! {d.type.value:<19} {subject}: {d.detail}")
    return out


def plan_text(plan: Plan) -> str:
    lines = [f"Plan as of {iso(plan.now)}" + (f" for {', '.join(plan.targets)}" if plan.targets else "")]
    lines.append("")
    if plan.actions:
        for a in plan.actions:
            lines.append("  " + action_title(a))
            lines.append(f"      {a.reason}")
            if a.depends_on:
                lines.append(f"      after: {', '.join(a.depends_on)}")
        lines.append("")
    else:
        lines.append("  No changes. The backups match the desired state.")
        lines.append("")
    if plan.held:
        lines.append("Held (an object lock keeps them; pruned once the lock ends):")
        lines += held_lines(plan)
        lines.append("")
    if any(e.bytes_now or e.bytes_after for e in plan.storage):
        lines.append("Storage (backups the reconciler knows; noncurrent versions not counted):")
        lines += storage_lines(plan)
        lines.append("")
    if plan.drift:
        lines.append("Drift:")
        lines += drift_lines(plan.drift)
        lines.append("")
    if plan.warnings:
        lines.append("Warnings:")
        lines += [f"  - {w}" for w in plan.warnings]
        lines.append("")
    lines.append(summary_line(plan))
    return "\n".join(lines) + "\n"


def drift_text(plan: Plan) -> str:
    if not plan.drift:
        return f"No drift as of {iso(plan.now)}.\n"
    lines = [f"Drift as of {iso(plan.now)}:"] + drift_lines(plan.drift)
    if plan.warnings:
        lines += ["", "Warnings:"] + [f"  - {w}" for w in plan.warnings]
    return "\n".join(lines) + f"\n\n{len(plan.drift)} deviation(s).\n"


def apply_text(result: ApplyResult) -> str:
    c = result.counts()
    lines = []
    failed = [o for o in result.outcomes if o.status != OutcomeStatus.DONE]
    for o in failed:
        lines.append(f"  {o.status.value}: {o.action_id}: {o.detail}")
    lines.append(
        f"Apply {'complete' if result.ok else 'finished with failures'} (run {result.run_id}): "
        f"{c['done']} done, {c['failed']} failed, {c['skipped']} skipped"
        + (f", {c['held']} held by an object lock." if c.get("held") else ".")
    )
    backups, freed = result.freed()
    if backups:
        lines.append(f"Pruned {backups} backup(s), freed {human_size(freed)} ({freed} bytes).")
    return "\n".join(lines) + "\n"


def status_text(doc: dict[str, Any]) -> str:
    lines = [f"Status as of {doc['now']}", ""]
    for s in doc["schedules"]:
        head = f"{s['schedule']}  (service {s['service']}, bucket {s['bucket']}, {s['cadence']})"
        lines.append(head)
        if not s.get("reachable"):
            lines.append(f"  cannot read the bucket: {s.get('error')}")
            lines.append("")
            continue
        newest = s["newest_complete"]
        lines.append(f"  location: {s['location']}")
        lines.append(
            f"  health:   {s['health']}; newest complete: "
            + (f"{newest} ({s['newest_complete_age']})" if newest else "none")
        )
        lines.append(f"  backups:  {s['backup_count']} ({s['complete_count']} complete), {human_size(s['total_size'])}")
        for b in s["backups"]:
            v = b["validation"]
            strongest = b.get("strongest_passed")
            if v and v["result"] == "failed":
                vtext = f"{v['level']} FAILED: {v['detail']}"
            elif strongest:
                vtext = f"{strongest['level']} ok ({strongest['at']})"
            else:
                vtext = "not validated"
            kind = b["kind"] or "-"
            if b.get("chain"):
                kind += f" (chain of {len(b['chain']) + 1}, on {b['base']})"
            line = f"    {b['name']:<22} {b['state']:<10} {kind:<12} {human_size(b['size']):>10}  {vtext}"
            if "copies" in b:
                where = ", ".join(f"{bucket} {state}" for bucket, state in b["copies"].items())
                line += f"; copies {b['valid_copies']}/{len(b['copies'])} valid ({where})"
            if b.get("error") and b["state"] != "complete":
                line += f"  ({b['error']})"
            lines.append(line)
        lines.append("")
    if not doc["schedules"] and not doc.get("snapshots"):
        lines.append("No schedules declared.")
    lines += snapshot_status_lines(doc.get("snapshots") or [])
    lines += cloud_status_lines(doc.get("cloud") or [])
    for bucket, runs in (doc.get("runs") or {}).items():
        lines.append(f"Last runs in bucket {bucket}:" if runs else f"No runs recorded in bucket {bucket}.")
        for r in runs:
            summary = r.get("summary") or {}
            counts = ", ".join(f"{v} {k}" for k, v in summary.items() if v)
            lines.append(f"  {r['run_id']}  {r.get('status', '?'):<10} {counts}")
        lines.append("")
    return "\n".join(lines) + "\n"


def cloud_status_lines(cloud: list[dict[str, Any]]) -> list[str]:
    """ClickHouse Cloud services: settings, and each backup with the declared bucket it is in."""
    lines: list[str] = []
    for c in cloud:
        lines.append(f"ClickHouse Cloud service {c['service']} ({c['service_id']})")
        if not c.get("reachable"):
            lines += [f"  cannot read the Cloud API: {c.get('error')}", ""]
            continue
        f = c.get("facts") or {}
        lines.append(f"  facts:    {f.get('provider')} {f.get('region')}, tier {f.get('tier')}, state {f.get('state')}")
        s = c.get("backup_configuration") or {}
        lines.append(
            f"  backups:  every {s.get('backupPeriodInHours')}h, kept {s.get('backupRetentionPeriodInHours')}h"
            + (f", at {s['backupStartTime']} UTC" if s.get("backupStartTime") else "")
        )
        b = c.get("backup_bucket")
        where = (b.get("bucketPath") or b.get("containerName")) if b else None
        declared = f" (bucket {c['backup_bucket_declared']})" if c.get("backup_bucket_declared") else ""
        lines.append(f"  external: {b['bucketProvider'] + ' ' + str(where) + declared if b else 'none'}")
        for x in c.get("backups") or []:
            size = human_size(x["size"]) if x.get("size") is not None else "-"
            place = (
                f"in bucket {x['bucket']}"
                if x.get("bucket")
                else (
                    f"in {x['location']} (not a declared bucket)"
                    if x.get("location")
                    else "in ClickHouse Cloud storage"
                )
            )
            lines.append(
                f"    {x.get('started_at') or '-':<22} {x.get('status') or '-':<12} {x.get('type') or '-':<12} "
                f"{size:>10}  {place}  {x['id']}"
            )
        lines.append("")
    return lines


def _count(n: int, plural: str) -> str:
    """``1 schedule``, ``2 schedules``, ``0 restores`` (each section's name is its plural + s)."""
    return f"{n} {plural[:-1] if n == 1 else plural}"


def validate_text(file: str, sections: dict[str, int], unset: tuple[tuple[str, str], ...]) -> str:
    """``validate``: the counts, and a note naming each variable that is not set here."""
    kinds = ["services", "buckets", "schedules", "restores"] + (["snapshots"] if sections.get("snapshots") else [])
    counts = ", ".join(_count(sections.get(k, 0), k) for k in kinds)
    lines = [f"{file}: valid ({counts})"]
    if unset:
        uses = ", ".join(f"{name} ({where})" for name, where in unset)
        lines.append(
            f"note: these variables are not set here, so the values that use them were not checked: {uses}; "
            "plan, apply, drift and status need them"
        )
    return "\n".join(lines) + "\n"


def snapshot_status_lines(entries: list[dict[str, Any]]) -> list[str]:

    if not entries:
        return []
    lines = ["Snapshots:"]
    for s in entries:
        v = s["validation"]
        vtext = f"{v['level']} {v['result']}" if v else "not validated"
        until = f"kept until the end of {s['keep_until']}" if s["keep_until"] else "kept until removed"
        if not s["declared"]:
            until = "no longer declared: left in the bucket"
        lines.append(
            f"  {s['snapshot']:<24} {s['state']:<10} {human_size(s['size']):>10}  {vtext}; {until}"
            f" (service {s['service']}, bucket {s['bucket']})"
        )
    lines.append("")
    return lines
