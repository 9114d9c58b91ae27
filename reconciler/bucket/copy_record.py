"""The copy fields of a sidecar (docs/bucket-layout.md): what a copy in a copy bucket records
of its source, so that it is restorable and checkable when the source bucket is gone.

A copy's ``reconciler.json`` is a sidecar like any other (service, schedule, slot, kind, base,
scope, sizes, validations: the copy's own), plus ``copy_of``::

    "copy_of": {"bucket": "primary", "location": "s3://acme/clickhouse/analytics/daily/20261125T030000Z/",
                "backup": "20261125T030000Z", "manifest_digest": "sha256:...",
                "operation_id": "<the source's ClickHouse operation id>", "method": "server-side",
                "base_rewritten": true}

``manifest_digest`` is the sha256 of the source's ``.backup`` as it was read; the copy's own
manifest differs from it only where an incremental names its base (the base's copy instead).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any


def manifest_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class CopySource:
    bucket: str  # the source bucket's config name
    location: str  # the source backup's folder, as a URL
    backup: str
    manifest_digest: str
    operation_id: str | None = None  # the source sidecar's ClickHouse operation id
    method: str = "streamed"  # server-side | streamed
    base_rewritten: bool = False  # the manifest's <base_backup> names the base's copy

    def to_json(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "location": self.location,
            "backup": self.backup,
            "manifest_digest": self.manifest_digest,
            "operation_id": self.operation_id,
            "method": self.method,
            "base_rewritten": self.base_rewritten,
        }

    @classmethod
    def from_json(cls, d: Any) -> CopySource:
        if not isinstance(d, dict):
            raise TypeError(f"copy_of: expected an object, got {type(d).__name__}")
        for k in ("bucket", "location", "backup", "manifest_digest"):
            if not isinstance(d.get(k), str) or not d[k] or len(d[k]) > 2048 or not d[k].isprintable():
                raise ValueError(f"copy_of.{k} is not a name")
        op = d.get("operation_id")
        if op is not None and (not isinstance(op, str) or len(op) > 256):
            raise ValueError("copy_of.operation_id is not a name")
        method = d.get("method", "streamed")
        if method not in ("server-side", "streamed"):
            raise ValueError("copy_of.method is not server-side or streamed")
        return cls(
            bucket=d["bucket"],
            location=d["location"],
            backup=d["backup"],
            manifest_digest=d["manifest_digest"],
            operation_id=op,
            method=method,
            base_rewritten=bool(d.get("base_rewritten", False)),
        )
