"""Azurite, Microsoft's Azure Storage emulator, as a test server process (see servers.py).

Azurite is an npm package, pinned in ``tests/azurite/package.json`` and installed into
``tests/azurite/node_modules`` by ``scripts/setup.sh`` (``npm ci``). Only its blob service runs,
on a free loopback port, with the emulator's well-known development account; its data lives in
a temporary folder that survives a ``stop()``/``start()`` (an outage keeps the containers).

    server = AzuriteServer(); server.start()
    server.endpoint            # "http://127.0.0.1:PORT/devstoreaccount1" (the account URL)
    server.connection_string   # the same account as a connection string
    server.create_container("t-1234abcd")
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from tests.support.servers import ServerProcess

AZURITE_DIR = Path(__file__).resolve().parent.parent / "azurite"
AZURITE_BLOB = AZURITE_DIR / "node_modules" / ".bin" / "azurite-blob"

#: Azurite's well-known development account (public, documented by Microsoft; not a secret)
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_missing() -> str | None:
    """Why Azurite cannot run here (a sentence saying how to fix it), or None if it can."""
    if not AZURITE_BLOB.exists():
        return (
            f"Azurite is not installed ({os.path.relpath(AZURITE_BLOB, AZURITE_DIR.parent.parent)} is missing): "
            "run scripts/setup.sh, which installs it with `npm ci --prefix tests/azurite` (needs Node.js and npm)"
        )
    if shutil.which("node") is None:
        return "Azurite needs Node.js: `node` is not on PATH (install Node.js, then run scripts/setup.sh)"
    return None


class AzuriteServer(ServerProcess):
    """Azurite's blob service on loopback, with the well-known account ``devstoreaccount1``."""

    name = "azurite"
    account_name = ACCOUNT_NAME
    account_key = ACCOUNT_KEY
    start_timeout = 30.0  # node starts in about 1 s; leave room on a loaded machine

    def __init__(self, port: int | None = None) -> None:
        super().__init__(port)
        self.location = tempfile.mkdtemp(prefix="azurite-data-")
        self._client: Any = None

    @property
    def endpoint(self) -> str:
        """The account URL (path style, as Azurite and ClickHouse expect for an emulator)."""
        return f"http://{self.host}:{self.port}/{self.account_name}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account_name};AccountKey={self.account_key};"
            f"BlobEndpoint={self.endpoint};"
        )

    def command(self) -> list[str]:
        missing = azurite_missing()
        if missing:
            raise RuntimeError(missing)
        return [
            str(AZURITE_BLOB),
            "--blobHost",
            self.host,
            "--blobPort",
            str(self.port),
            "--location",
            self.location,
            "--skipApiVersionCheck",  # the Python SDK and ClickHouse may speak a newer API version
            "--loose",  # ignore headers Azurite does not implement instead of refusing the request
            "--disableTelemetry",  # no traffic beyond loopback
            "--blobKeepAliveTimeout",
            "60",  # idle pooled connections are not cut every 5 s
            "--silent",
        ]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("AZURITE_ACCOUNTS", None)  # the well-known account only
        return env

    def ready(self) -> bool:
        return self.answers(f"{self.endpoint}?comp=list")

    def client(self) -> Any:
        """An azure-storage-blob ``BlobServiceClient`` of this server (made on first use)."""
        if self._client is None:
            from azure.storage.blob import BlobServiceClient

            self._client = BlobServiceClient.from_connection_string(self.connection_string, retry_total=0)
        return self._client

    def create_container(self, name: str) -> None:
        self.client().create_container(name)

    def delete_container(self, name: str) -> None:
        self.client().delete_container(name)

    def cleanup(self) -> None:
        """Stop, and remove the data folder and the log."""
        self.stop()
        shutil.rmtree(self.location, ignore_errors=True)
        shutil.rmtree(self._logdir, ignore_errors=True)
