"""A ClickHouse server for the tests: ClickHouse's own HTTP handler, the one inside chdb-core,
in a process of its own, so that the reconciler talks to it with clickhouse-connect's real HTTP
client, a BACKUP outlives the reconciler that started it, and the server can be killed and
restarted apart from its clients.

    server = ClickHouseServer(tmp_path / "ch", password="pw")
    server.start()                 # a free loopback port; waits until it answers
    server.dsn                     # "http://reconciler:pw@127.0.0.1:PORT"
    client = server.client()       # a clickhouse-connect HTTP client of it
    server.kill()                  # SIGKILL, as a crash: what ran in it is gone
    server.start()                 # the same data path and port again; system.backups is empty
    server.stop()

How (chdb 4.4, chdb-core 26.9.2.1, clickhouse-connect 0.x/1.12; found by running it):

- chdb-core carries clickhouse-local, whose ``SYSTEM START LISTEN HTTP`` starts ClickHouse's
  HTTP server on the ``http_port`` of a ``config.xml``: the real handler (sessions, settings in
  the URL, formats, compression, errors as ClickHouse answers them), the real access control
  (``users.xml``), one thread per connection. ``BACKUP``/``RESTORE ... ASYNC`` through it run in
  the server's own threads and go on when the client is gone; ``system.backups`` is in memory.
- Only chdb's one-shot ``_chdb.query(sql, fmt, path=...)`` runs clickhouse-local with its
  servers (a ``chdb.connect`` session refuses: "start_servers_callback is not set"). It reads
  ``config.xml`` from the working directory, and ``import chdb`` reads ``./config.xml`` too: the
  process imports chdb in a directory without one, then changes directory.
- The server lives while the query that started it runs: that query sleeps until the process is
  killed. SIGTERM ends the process at once (nothing to flush: MergeTree parts are written when
  their INSERT returns).
- clickhouse-local runs its own query as ``default`` with an empty password, from a loopback
  address (so ``<networks>`` cannot keep HTTP clients out): ``default`` keeps no password and
  only the grants that query needs (SYSTEM LISTEN, and reading ``numbers()``); it sees no
  database and cannot run BACKUP. The reconciler's ``user`` has a password and every grant.
- ``settings`` (e.g. ``max_backup_bandwidth``) go into the profile of every user: a test can make
  a BACKUP of a small database last seconds without spending CPU on a big one.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

CONFIG = """<clickhouse>
    <http_port>{port}</http_port>
    <listen_host>127.0.0.1</listen_host>
    <user_directories><users_xml><path>{users}</path></users_xml></user_directories>
</clickhouse>
"""

USERS = """<clickhouse>
    <users>
        <default>
            <password></password>
            <networks><ip>::/0</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
            <grants>
                <query>GRANT SYSTEM LISTEN ON *.*</query>
                <query>GRANT CREATE TEMPORARY TABLE ON *.*</query>
                <query>GRANT READ ON *</query>
            </grants>
        </default>
        <{user}>
            <password>{password}</password>
            <networks><ip>::/0</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
            <access_management>1</access_management>
        </{user}>
    </users>
    <profiles><default>{settings}</default></profiles>
    <quotas><default/></quotas>
</clickhouse>
"""

#: the query whose run is the server's life (the HTTP server answers while it sleeps)
LISTEN = (
    "SYSTEM START LISTEN HTTP; "
    "SELECT sleepEachRow(1) FROM numbers(1000000000) SETTINGS function_sleep_max_microseconds_per_block = 0"
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ClickHouseServer:
    """ClickHouse's HTTP server on ``data_path`` and a loopback port kept across restarts."""

    start_timeout = 90.0  # seconds; it answers in about 2 s, a loaded machine is slower
    stop_timeout = 10.0

    def __init__(
        self,
        data_path: str | os.PathLike[str],
        password: str,
        user: str = "reconciler",
        port: int | None = None,
        settings: dict[str, str | int] | None = None,
    ) -> None:
        if not password:
            raise ValueError("the test server needs a password")
        self.data_path = Path(data_path)
        self.password = password
        self.user = user
        self.settings = dict(settings or {})
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.dir = Path(tempfile.mkdtemp(prefix="clickhouse-server-"))
        self.log_path = self.dir / "server.log"
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def dsn_for(self, port: int | None = None, password: str | None = None) -> str:
        """A DSN of this server, through another port (a proxy) or with another password."""
        pw = self.password if password is None else password
        return f"http://{quote(self.user, safe='')}:{quote(pw, safe='')}@{self.host}:{port or self.port}"

    @property
    def dsn(self) -> str:
        """The DSN a service of the reconciler's config names."""
        return self.dsn_for()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def client(self, **kwargs: Any) -> Any:
        """A clickhouse-connect HTTP client of this server."""
        import clickhouse_connect

        kwargs.setdefault("username", self.user)
        kwargs.setdefault("password", self.password)
        return clickhouse_connect.get_client(host=self.host, port=self.port, **kwargs)

    def write_config(self) -> None:
        settings = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in self.settings.items())
        (self.dir / "users.xml").write_text(
            USERS.format(user=self.user, password=escape(self.password), settings=settings)
        )
        (self.dir / "config.xml").write_text(CONFIG.format(port=self.port, users=self.dir / "users.xml"))

    def start(self) -> None:
        """Start, or start again on the same data path and port, and wait until it answers."""
        if self.running:
            return
        self.write_config()
        self.data_path.mkdir(parents=True, exist_ok=True)
        workdir = self.dir / "work"  # no config.xml here: `import chdb` must not read ours
        workdir.mkdir(exist_ok=True)
        deadline = time.monotonic() + self.start_timeout
        while self.ping(0.2) and time.monotonic() < deadline:  # a killed one releasing the port
            time.sleep(0.05)
        with open(self.log_path, "ab") as log:
            log.write(f"--- start {self.starts + 1}: port {self.port}, data {self.data_path}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--dir", str(self.dir), "--data", str(self.data_path)],
                cwd=workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C in pytest does not reach it first
            )
        self.starts += 1
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the ClickHouse test server exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.ping():
                return
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(
            f"the ClickHouse test server did not answer in {self.start_timeout:.0f} s:\n{self.log_tail()}"
        )

    def ping(self, timeout: float = 1.0) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=timeout) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def kill(self) -> None:
        """SIGKILL: the server and everything running in it die at once, as in a crash."""
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(self.stop_timeout)

    stop = kill  # nothing to flush (see the module's notes)

    def restart(self) -> None:
        """SIGKILL and start again on the same data path and port."""
        self.kill()
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> ClickHouseServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"ClickHouseServer({self.url}, {self.data_path}, {'running' if self.running else 'stopped'})"


def main() -> int:
    ap = argparse.ArgumentParser(description="ClickHouse's HTTP server of chdb-core (see this module's notes)")
    ap.add_argument("--dir", required=True, help="holds config.xml and users.xml")
    ap.add_argument("--data", required=True, help="the data path")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    from chdb import _chdb  # imported before changing directory: see the module's notes

    os.chdir(args.dir)
    _chdb.query(LISTEN, "TabSeparated", path=args.data)
    print("the listening query ended", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
