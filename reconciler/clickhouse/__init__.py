"""ClickHouse: the client for any DSN (``client``), the BACKUP/RESTORE statements (``sql``), the
backup manifest (``manifest``) and its checksums (``checksum``, with the C hasher in
``_cityhash``), and the scratch databases of drills (``scratch``)."""

from __future__ import annotations

from .client import TRANSIENT_CODES, ClickHouse, NoAnswer, OperationGone, connect

__all__ = ["TRANSIENT_CODES", "ClickHouse", "NoAnswer", "OperationGone", "connect"]
