"""The one gate every deletion of backup data passes (docs/bucket-layout.md, §4).

A key may be deleted only if it lies inside ``<prefix>/<service>/<schedule>/<backup>/`` of a
schedule declared in the config, or ``<prefix>/<service>/_snapshots/<name>/`` of a declared
snapshot, with a backup name that is one plain path segment. Anything
else is refused before a request is made, whatever the plan says.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..bucket import layout
from ..errors import ReconcilerError
from ..model import Config


class ContainmentError(ReconcilerError):
    """A deletion outside what the reconciler manages was attempted and refused."""


def backup_folder(config: Config, schedule: str, backup: str, bucket: str | None = None) -> str:
    """The folder key of a backup of a declared schedule (in ``bucket``: the schedule's own, or
    one of its declared copy buckets); refuses names that could escape."""
    if schedule not in config.schedules:
        raise ContainmentError(f"refusing to delete: schedule {schedule!r} is not declared")
    _check_name(backup)
    s = config.schedules[schedule]
    where = bucket or s.bucket
    if where != s.bucket and s.copy_to(where) is None:
        raise ContainmentError(f"refusing to delete: bucket {where!r} is not a copy bucket of schedule {schedule!r}")
    return layout.backup_prefix(config.buckets[where], s.service, schedule, backup)


def snapshot_folder(config: Config, snapshot: str) -> str:
    """The folder key of a declared snapshot (``<prefix>/<service>/_snapshots/<name>/``). A
    snapshot removed from the config is never deleted: it is refused here."""
    if snapshot not in config.snapshots:
        raise ContainmentError(f"refusing to delete: snapshot {snapshot!r} is not declared")
    _check_name(snapshot)
    s = config.snapshots[snapshot]
    return layout.snapshot_prefix(config.buckets[s.bucket], s.service, snapshot)


def _check_name(backup: str) -> None:
    if (
        not backup
        or backup in (".", "..")
        or "/" in backup
        or "\\" in backup
        or not backup.isascii()
        or not backup.isprintable()
        or backup.startswith(".")
    ):
        raise ContainmentError(f"refusing to delete: {backup!r} is not a backup folder name")


def check_keys(folder: str, keys: Iterable[str]) -> list[str]:
    """The keys, if every one is strictly inside ``folder``; ContainmentError otherwise."""
    out = []
    for key in keys:
        rest = key[len(folder) :] if key.startswith(folder) else None
        if not rest or any(part in ("", ".", "..") for part in rest.split("/")):
            raise ContainmentError(f"refusing to delete {key!r}: it is not inside {folder!r}")
        out.append(key)
    return out
