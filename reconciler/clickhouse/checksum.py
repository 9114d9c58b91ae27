"""ClickHouse's backup-file checksum, the ``<checksum>`` of a file in a backup's ``.backup`` manifest.

CityHash128 of CityHash v1.0.2 (the version ClickHouse vendors) chained over 2048-byte blocks
from the state (0, 0), printed as 32 lowercase hex digits, the high 64 bits first (checked on
ClickHouse 26.9, chdb 4.4).
An empty file has no ``<checksum>`` in a manifest; its state is (0, 0), i.e. ``EMPTY_CHECKSUM``.

A file's ``<checksum>`` is of the whole file. For a file with ``<use_base>`` and a
``<base_size>`` below its size, this backup stores only the bytes after ``base_size`` and
``<base_checksum>`` is the checksum of the first ``base_size`` bytes (the base's file): the
whole-file checksum needs the base's bytes followed by the stored tail.

The work is done by the C extension ``reconciler.clickhouse._cityhash102`` (built by ``pip install``; about
3 GB/s, and it releases the GIL, so threads can verify files in parallel). Only when it is missing
does the pure-Python implementation (a few MB/s) take over; ``BACKEND`` says which is in use.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Literal, Protocol, cast

from ._cityhash import pure

Buffer = bytes | bytearray | memoryview

#: the checksum of no bytes (ClickHouse's state (0, 0)); manifests give none for an empty file
EMPTY_CHECKSUM = "0" * 32
#: the chaining block size (ClickHouse's DBMS_DEFAULT_HASHING_BLOCK_SIZE)
BLOCK_SIZE = 2048


class Hasher(Protocol):
    """An incremental checksum: ``update`` any number of times, then ``hexdigest``."""

    @property
    def size(self) -> int: ...

    def update(self, data: Buffer, /) -> None: ...

    def hexdigest(self) -> str: ...

    def digest_pair(self) -> tuple[int, int]:
        """(low64, high64), CityHash's uint128 order."""
        ...

    def copy(self) -> Hasher: ...


_c: ModuleType | None
try:
    from . import _cityhash102 as _c  # type: ignore[attr-defined,no-redef,unused-ignore]
except ImportError:  # not built: the slow fallback
    _c = None

BackendName = Literal["c", "python"]

BACKEND: BackendName = "c" if _c is not None else "python"


def available_backends() -> list[BackendName]:
    return ["c", "python"] if _c is not None else ["python"]


def _module(backend: BackendName | None) -> ModuleType:
    name = backend or BACKEND
    if name == "c":
        if _c is None:
            raise RuntimeError("the C extension reconciler.clickhouse._cityhash102 is not built (pip install -e .)")
        return _c
    if name == "python":
        return pure
    raise ValueError(f"unknown checksum backend {name!r}")


def new_hasher(backend: BackendName | None = None) -> Hasher:
    """An incremental hasher (``backend`` forces one; tests use it to cross-check)."""
    return cast(Hasher, _module(backend).Hasher())


def checksum_of(data: Buffer, backend: BackendName | None = None) -> str:
    """The checksum of ``data`` as ClickHouse writes it in a manifest."""
    return cast(str, _module(backend).checksum(data))


def checksum_stream(
    read: Callable[[int], bytes], chunk: int = 1 << 20, backend: BackendName | None = None
) -> tuple[str, int]:
    """Read ``read(chunk)`` until it returns ``b""``; the checksum and the number of bytes read.

    ``read`` may return fewer bytes than asked (a socket, a streaming HTTP body)."""
    if chunk <= 0:
        raise ValueError(f"chunk must be positive, not {chunk}")
    h = new_hasher(backend)
    total = 0
    while True:
        data = read(chunk)
        if not data:
            break
        h.update(data)
        total += len(data)
    return h.hexdigest(), total
