"""An HTTP proxy on loopback that injects faults between a client and a real server (moto):
throttling, 5xx, connection resets and slowness, from a queue the test fills.

    proxy = FaultProxy("http://127.0.0.1:5000"); proxy.start()
    proxy.inject(503, code="SlowDown", times=2)   # the next two requests answer 503 SlowDown
    proxy.inject_reset(times=1)                    # the next request's connection is dropped
    proxy.endpoint                                 # "http://127.0.0.1:PORT": give this to the client
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from tests.support.servers import free_port

S3_ERROR = (
    '<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message>'
    "<RequestId>FAULTPROXY</RequestId></Error>"
)


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        u = urlsplit(upstream)
        self.upstream_host, self.upstream_port = u.hostname or "127.0.0.1", u.port or 80
        self.port = free_port()
        self.faults: deque[tuple[str, int, str, float]] = deque()
        self.lock = threading.Lock()
        self.seen: list[tuple[str, str, str]] = []  # (method, path, what happened)
        self._server: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def inject(self, status: int, code: str = "InternalError", times: int = 1, match: str = "") -> None:
        with self.lock:
            self.faults.extend([("status", status, code + "|" + match, 0.0)] * times)

    def inject_reset(self, times: int = 1, match: str = "") -> None:
        with self.lock:
            self.faults.extend([("reset", 0, "|" + match, 0.0)] * times)

    def inject_delay(self, seconds: float, times: int = 1, match: str = "") -> None:
        with self.lock:
            self.faults.extend([("delay", 0, "|" + match, seconds)] * times)

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()

    def _next_fault(self, method: str, path: str) -> tuple[str, int, str, float] | None:
        with self.lock:
            if not self.faults:
                return None
            kind, status, code_match, seconds = self.faults[0]
            match = code_match.split("|", 1)[1]
            if match and match not in f"{method} {path}":
                return None
            return self.faults.popleft()

    def start(self) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = proxy._next_fault(self.command, self.path)
                if fault is not None:
                    kind, status, code_match, seconds = fault
                    if kind == "reset":
                        proxy.seen.append((self.command, self.path, "reset"))
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    if kind == "status":
                        code = code_match.split("|", 1)[0]
                        proxy.seen.append((self.command, self.path, f"{status} {code}"))
                        payload = S3_ERROR.format(code=code, message="injected by the fault proxy").encode()
                        self.send_response(status)
                        self.send_header("Content-Type", "application/xml")
                        self.send_header("Content-Length", str(len(payload)))
                        self.end_headers()
                        self.wfile.write(payload)
                        return
                    time.sleep(seconds)
                proxy.seen.append((self.command, self.path, "forwarded"))
                conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                headers["Host"] = f"{proxy.upstream_host}:{proxy.upstream_port}"
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
