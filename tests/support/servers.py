"""Real server processes on loopback for tests: moto's S3 server now, fake-gcs-server and
Azurite beside it later, all with the same shape:

    server = MotoServer(); server.start()   # a free port, waits until it answers
    server.endpoint                          # "http://127.0.0.1:PORT"
    server.stop(); server.start()            # an outage, then the same server back on the same port
    server.stop()

A server's output goes to a log file (``server.log_path``), not to pytest's output; a server
that does not come up fails with the tail of that log.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def venv_executable(name: str) -> str | None:
    """``name`` next to the running Python (the venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    return shutil.which(name)


class ServerProcess:
    """A server process on a fixed loopback port, restartable on that same port.

    Subclasses give ``name``, ``command()`` and ``ready()`` (does it answer?).
    """

    name = "server"
    start_timeout = 20.0  # seconds
    stop_timeout = 5.0  # seconds between terminate and kill

    def __init__(self, port: int | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._logdir = tempfile.mkdtemp(prefix=f"{self.name}-")
        self.log_path = Path(self._logdir) / f"{self.name}.log"

    # -- to be given by a subclass --------------------------------------------------------

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def ready(self) -> bool:
        raise NotImplementedError

    @staticmethod
    def answers(url: str) -> bool:
        """Whether an HTTP server answers at ``url`` with anything but a server error: an
        unsigned probe of a storage emulator gets 403 or 400, which still means it listens."""
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                return bool(resp.status < 500)
        except urllib.error.HTTPError as e:
            return e.code < 500
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start (or restart, on the same port) and wait until the server answers."""
        if self.running:
            return
        deadline = time.monotonic() + self.start_timeout
        while port_open(self.port) and time.monotonic() < deadline:  # a previous run releasing the port
            time.sleep(0.05)
        with open(self.log_path, "ab") as log:
            log.write(f"--- start: {' '.join(self.command())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env(),
                start_new_session=True,  # Ctrl-C in pytest does not hit the server first
            )
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with code {self.proc.returncode} on start:\n{self.log_tail()}")
            try:
                if self.ready():
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"{self.name} did not answer on {self.host}:{self.port} within {self.start_timeout:.0f} s:\n"
            f"{self.log_tail()}"
        )

    def stop(self) -> None:
        """Terminate, and kill after ``stop_timeout`` seconds. The port is kept for ``start()``."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(self.stop_timeout)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.host}:{self.port}, {'running' if self.running else 'stopped'})"


class MotoServer(ServerProcess):
    """moto's S3 server (``moto_server``); any access key / secret is accepted."""

    name = "moto"
    access_key = "testing"
    secret_key = "testing"
    region = "us-east-1"

    def __init__(self, port: int | None = None) -> None:
        super().__init__(port)
        self._client: Any = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        exe = venv_executable("moto_server")
        if exe:
            return [exe, "-H", self.host, "-p", str(self.port)]
        return [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("AWS_EC2_METADATA_DISABLED", "true")
        return env

    def ready(self) -> bool:
        return self.answers(f"{self.endpoint}/moto-api/")

    def client(self) -> Any:
        """A boto3 S3 client of this server (one, made on first use; boto3 clients are thread-safe)."""
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def _make_client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "path"}, max_pool_connections=32),
        )

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def reset(self) -> None:
        """Forget every bucket and object (moto's reset API)."""
        req = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=10):
            pass
