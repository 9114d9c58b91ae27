"""The one small protocol every object store implements (S3 now; GCS and Azure next).

Keys are full object keys inside the bucket/container (no leading slash). Everything above
this protocol (observe, apply) knows nothing of boto3, azure or google clients.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Protocol


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    etag: str  # S3/Azure ETag (quotes stripped), GCS generation as a string
    last_modified: datetime


class Store(Protocol):
    """An object store bucket/container. Errors: ``BucketMissing``, ``PreconditionFailed``,
    ``TemporaryError`` (already retried within a bound), ``StoreError``."""

    #: e.g. "s3://acme-ch-backups" — never contains a secret
    description: str

    def bucket_exists(self) -> bool:
        """True if the bucket/container exists and can be listed."""
        ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix`` (recursive), in key order."""
        ...

    def list_folders(self, prefix: str) -> builtins.list[str]:
        """Names of the immediate sub-folders of ``prefix`` (which ends with '/'), sorted."""
        ...

    def read(self, key: str) -> tuple[bytes, str] | None:
        """(content, etag), or None if the object does not exist."""
        ...

    def open(self, key: str) -> BinaryIO:
        """A streaming reader of an object (for large files: checksums)."""
        ...

    def write(self, key: str, data: bytes) -> str:
        """Create or overwrite; returns the new etag."""
        ...

    def create(self, key: str, data: bytes) -> str:
        """Create only if absent; ``PreconditionFailed`` if it exists. Returns the etag."""
        ...

    def replace(self, key: str, data: bytes, etag: str) -> str:
        """Overwrite only if the current etag is ``etag``; ``PreconditionFailed`` otherwise."""
        ...

    def delete(self, key: str, etag: str | None = None) -> None:
        """Delete one object (only if its etag is ``etag`` when given). Missing is not an error."""
        ...

    def delete_many(self, keys: Iterable[str]) -> int:
        """Delete in batches (S3: 1000 keys a request). Returns how many were deleted."""
        ...

    def abort_uploads(self, prefix: str) -> int:
        """Abort unfinished multipart uploads under ``prefix`` (S3); 0 where there are none."""
        ...
