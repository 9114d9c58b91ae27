"""ClickHouse's backup manifest (``.backup``, XML) and the ``manifest`` validation level.

The manifest lists every file of the backup with its size and checksum (checked on ClickHouse 26.9, chdb 4.4). A file
with ``use_base`` is (partly) held by the base backup: ``base_size`` bytes come from the base
(all of them when ``base_size`` is absent) and only the rest is stored here, under
``data_file`` when that is given (deduplicated files share one data file).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass

#: a manifest larger than this is not parsed (a tampered object must not exhaust memory)
MAX_MANIFEST_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class ManifestFile:
    name: str
    size: int
    checksum: str | None
    use_base: bool = False
    base_size: int = 0
    base_checksum: str | None = None
    data_file: str | None = None
    encrypted_by_disk: bool = False

    @property
    def stored_name(self) -> str:
        return self.data_file or self.name

    @property
    def stored_size(self) -> int:
        """Bytes of this file held by this backup (the rest is in the base)."""
        return self.size - self.base_size

    @property
    def in_base_only(self) -> bool:
        return self.use_base and self.base_size == self.size


@dataclass(frozen=True)
class Manifest:
    version: int
    timestamp: str | None
    uuid: str | None
    backup_id: str | None
    base_backup: str | None
    base_backup_uuid: str | None
    files: tuple[ManifestFile, ...]

    def tables(self) -> list[tuple[str, str]]:
        """(database, table) of every table whose definition the backup holds."""
        out = []
        for f in self.files:
            parts = f.name.split("/")
            if len(parts) == 3 and parts[0] == "metadata" and parts[2].endswith(".sql"):
                out.append((_unescape(parts[1]), _unescape(parts[2][: -len(".sql")])))
        return out

    def databases(self) -> list[str]:
        out = []
        for f in self.files:
            parts = f.name.split("/")
            if len(parts) == 2 and parts[0] == "metadata" and parts[1].endswith(".sql"):
                out.append(_unescape(parts[1][: -len(".sql")]))
        return out


class ManifestError(ValueError):
    """The manifest does not parse or holds impossible values."""


def parse_manifest(data: bytes) -> Manifest:
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"manifest is {len(data)} bytes, more than the {MAX_MANIFEST_BYTES} accepted")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise ManifestError(f"manifest is not valid XML: {e}") from None
    if root.tag != "config":
        raise ManifestError(f"manifest root element is <{_shown(root.tag)}>, expected <config>")
    version = _int(root.findtext("version"), "version")
    contents = root.find("contents")
    files: list[ManifestFile] = []
    if contents is not None:
        for el in contents.findall("file"):
            name = el.findtext("name")
            if not name:
                raise ManifestError("manifest lists a file without a name")
            size = _int(el.findtext("size"), f"size of {name}")
            use_base = _bool(el.findtext("use_base"))
            base_size = 0
            if use_base:  # no <base_size> means the whole file is in the base
                text = el.findtext("base_size")
                base_size = size if text is None else _int(text, f"base_size of {name}")
            if size < 0 or base_size < 0:
                raise ManifestError(f"manifest gives file {_shown(name)} a negative size")
            if base_size > size:
                raise ManifestError(f"manifest gives {_shown(name)} base_size {base_size} > size {size}")
            files.append(
                ManifestFile(
                    name=name,
                    size=size,
                    checksum=el.findtext("checksum"),
                    use_base=use_base,
                    base_size=base_size,
                    base_checksum=el.findtext("base_checksum"),
                    data_file=el.findtext("data_file") or None,
                    encrypted_by_disk=_bool(el.findtext("encrypted_by_disk")),
                )
            )
    return Manifest(
        version=version,
        timestamp=root.findtext("timestamp"),
        uuid=root.findtext("uuid"),
        backup_id=root.findtext("backup_id"),
        base_backup=root.findtext("base_backup"),
        base_backup_uuid=root.findtext("base_backup_uuid"),
        files=tuple(files),
    )


def check_files(manifest: Manifest, stored: Mapping[str, int], limit: int = 5) -> list[str]:
    """The ``manifest`` level: every file the manifest says this backup stores exists with its
    size. ``stored`` maps names relative to the backup folder to object sizes (one listing).
    Returns problems, at most ``limit`` named, then a count of the rest."""
    problems: list[str] = []
    seen: set[str] = set()
    for f in manifest.files:
        if f.stored_size == 0 or f.in_base_only:
            continue
        if f.stored_name in seen:
            continue
        seen.add(f.stored_name)
        actual = stored.get(f.stored_name)
        if actual is None:
            problems.append(f"{_shown(f.stored_name)} is missing")
        elif actual != f.stored_size:
            problems.append(f"{_shown(f.stored_name)} is {actual} bytes, the manifest says {f.stored_size}")
    if len(problems) > limit:
        return problems[:limit] + [f"and {len(problems) - limit} more"]
    return problems


def _int(text: str | None, what: str) -> int:
    try:
        return int(text or "")
    except ValueError:  # also thousands of digits, which int() refuses
        raise ManifestError(f"manifest {_shown(what)} is not a number: {_shown(repr(text))}") from None


def _shown(text: str, limit: int = 100) -> str:
    """A name or value from the manifest for a one-line message: escaped, and cut to ``limit``."""
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _bool(text: str | None) -> bool:
    return (text or "").strip().lower() in ("true", "1")


def _unescape(name: str) -> str:
    """ClickHouse escapes names in backup paths with %XX (escapeForFileName)."""
    from urllib.parse import unquote

    return unquote(name)
