"""A webhook receiver on loopback for the ``notify`` tests: records every POST; can answer 500
for the first N requests (or all of them) to exercise the retries."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class WebhookReceiver:
    fail_first: int = 0  # answer 500 to this many requests first (-1: to all of them)
    token: str = "T0SECRET/B0SECRET/xoxb-webhook-token-5f3a9c"
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                with receiver._lock:
                    receiver.received.append(
                        Received(self.path, dict(self.headers.items()), json.loads(raw.decode() or "null"))
                    )
                    failing = receiver.fail_first < 0 or len(receiver.received) <= receiver.fail_first
                self.send_response(500 if failing else 200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"no" if failing else b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/services/{self.token}"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def bodies(self) -> list[Any]:
        with self._lock:
            return [r.body for r in self.received]
