"""What a ClickHouse manifest says about the backup it describes, for adopting a folder made
outside the reconciler (``adopt_unmanaged``): when it was taken, full or incremental on which
base, and which databases and tables it holds."""

from __future__ import annotations

import re
from datetime import datetime

from ..model import UTC
from ..model.adoption import ManifestFacts
from .manifest import Manifest, ManifestError, parse_manifest

_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")


def manifest_facts(data: bytes, schedule_path: str) -> ManifestFacts:
    """Facts of the manifest ``data`` of a folder under ``schedule_path`` (the schedule's folder
    key, ``<prefix>/<service>/<schedule>/``). A manifest that does not parse gives ``problem``."""
    try:
        manifest = parse_manifest(data)
    except ManifestError as e:
        return ManifestFacts(problem=str(e))
    return facts_of(manifest, schedule_path)


def facts_of(manifest: Manifest, schedule_path: str) -> ManifestFacts:
    base, elsewhere = None, False
    if manifest.base_backup:
        base = base_folder(manifest.base_backup, schedule_path)
        elsewhere = base is None
    tables = tuple(sorted(f"{db}.{t}" for db, t in manifest.tables()))
    databases = tuple(sorted(set(manifest.databases())))
    return ManifestFacts(
        timestamp=parse_timestamp(manifest.timestamp),
        kind="incremental" if manifest.base_backup else "full",
        base=base,
        base_elsewhere=elsewhere,
        databases=databases,
        tables=tables,
    )


def base_folder(base_backup: str, schedule_path: str) -> str | None:
    """The folder name of a manifest's ``<base_backup>`` (``S3('http://host/bucket/<path>/B/')``,
    ``AzureBlobStorage('...', 'container', '<path>/B/')``) when it lies directly under
    ``schedule_path``; None when it is anywhere else."""
    want = schedule_path.strip("/") + "/"
    for arg in _QUOTED.findall(base_backup):
        path = arg.rstrip("/")
        at = path.find(want)
        if at < 0 or (at > 0 and path[at - 1] != "/"):
            continue
        rest = path[at + len(want) :]
        if rest and "/" not in rest and rest not in (".", ".."):
            return rest
    return None


def parse_timestamp(text: str | None) -> datetime | None:
    """ClickHouse writes ``<timestamp>`` as ``YYYY-MM-DD hh:mm:ss`` in UTC."""
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
