"""Reading a backup's sidecar and recording a validation in it: the read-modify-write every
validation level shares."""

from __future__ import annotations

from dataclasses import replace

from ..bucket import layout
from ..bucket.sidecar import Sidecar, SidecarState
from ..errors import PreconditionFailed
from ..model import Validation, ValidationResult
from ..stores import Store


def read_sidecar(store: Store, folder: str) -> Sidecar | None:
    got = store.read(folder + layout.SIDECAR)
    if got is None:
        return None
    try:
        return Sidecar.decode(got[0])
    except ValueError:
        return None


def base_folder_of(store: Store, folder: str) -> str | None:
    """The folder of a backup's base, from its sidecar (bases live beside it, same schedule)."""
    sc = read_sidecar(store, folder)
    if sc is None or not sc.base:
        return None
    parent = folder.rstrip("/").rpartition("/")[0]
    return f"{parent}/{sc.base}/"


def record_validation(
    store: Store, folder: str, v: Validation, files: int | None = None, size: int | None = None
) -> None:
    """Append the validation to the sidecar (conditional on its etag; retried once on a race).
    A validation that passes on a backup whose sidecar still says in_progress (its apply died
    after ClickHouse finished) completes the record."""
    for _ in range(3):
        got = store.read(folder + layout.SIDECAR)
        if got is None:
            return
        try:
            sc = Sidecar.decode(got[0])
        except ValueError:
            return  # not ours to rewrite: the folder is reported as unmanaged
        updated = sc.with_validation(v)
        if v.result == ValidationResult.OK and sc.state == SidecarState.IN_PROGRESS:
            updated = replace(updated, state=SidecarState.COMPLETE, num_files=files, total_size=size)
        try:
            store.replace(folder + layout.SIDECAR, updated.encode(), got[1])
            return
        except PreconditionFailed:
            continue
