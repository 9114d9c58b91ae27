"""Secrets never leave the process: every text that is printed, logged or written to the bucket
passes through ``redact`` first. ClickHouse prints hidden values as ``[HIDDEN]``; so do we."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

HIDDEN = "[HIDDEN]"

_lock = threading.Lock()
_secrets: set[str] = set()
# userinfo passwords in URLs/DSNs: scheme://user:password@host
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)(?P<pw>[^@\s/]+)(?P<at>@)")
# connection-string secrets: AccountKey=...; SharedAccessSignature=...
_CONN_SECRET = re.compile(r"(?P<head>(?:AccountKey|SharedAccessSignature|SharedAccessKey)=)(?P<pw>[^;'\"\s]+)", re.I)


def register(secrets: Iterable[str | None]) -> None:
    """Remember secret values (from the config's credentials, after ``${VAR}`` expansion)."""
    with _lock:
        # very short values would blank out ordinary words; they are not real secrets
        _secrets.update(s for s in secrets if s and len(s) >= 4)


_PLACEHOLDER = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")


def _hide_password(m: re.Match[str]) -> str:
    # `${VAR}` is how a config should write a password: showing it tells the user what to do
    if _PLACEHOLDER.fullmatch(m.group("pw")):
        return m.group(0)
    return m.group("head") + HIDDEN + m.group("at")


def redact(text: str) -> str:
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for s in secrets:
        if s in text:
            text = text.replace(s, HIDDEN)
    text = _URL_PASSWORD.sub(_hide_password, text)
    return _CONN_SECRET.sub(lambda m: m.group("head") + HIDDEN, text)
