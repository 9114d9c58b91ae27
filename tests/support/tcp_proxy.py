"""A loopback TCP proxy that can be cut, for storage outages in tests.

    proxy = TcpProxy(upstream_port); proxy.start()
    proxy.endpoint            # "http://127.0.0.1:PORT": point a config's `endpoint` here
    proxy.cut()               # close every connection and refuse new ones (connection refused)
    proxy.restore()           # accept again, on the same port
    proxy.drop_reply_to(b"PUT /bkt/prefix/.reconciler/lock ", b"If-Match:")
                              # the next request whose head holds these bytes reaches the server,
                              # its reply is lost and the connection reset: the client retries a
                              # request that was already carried out
    hold = proxy.hold_request(b"PUT /bkt/key ")
                              # the next such request is held (hold.caught is set) until
                              # hold.release() forwards it, or cut() drops it
    proxy.stop()

The upstream server (moto) keeps running, and with it every bucket and object, while the
clients in front of the proxy see the outage. Threads only; no third-party code.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time

from tests.support.servers import free_port


class TcpProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.upstream = (upstream_host, upstream_port)
        self._listener: socket.socket | None = None
        self._accepter: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._mutex = threading.Lock()
        self._cut = threading.Event()
        self.accepted = 0  # connections accepted so far (tests can check traffic went through)
        self._drop: list[tuple[bytes, ...]] = []  # armed one-shot faults: drop the reply to a request like this
        self._hold: list[Hold] = []  # armed: hold a request like this
        self._holding: list[Hold] = []  # requests being held
        self.dropped: list[bytes] = []  # request heads whose reply was dropped

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def is_cut(self) -> bool:
        return self._cut.is_set()

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> TcpProxy:
        self._cut.clear()
        self._listen()
        return self

    def stop(self) -> None:
        self.cut()

    def cut(self) -> None:
        """Every open connection is closed (reset) and new ones are refused, until restore()."""
        self._cut.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        if self._accepter is not None:
            self._accepter.join(timeout=5)
            self._accepter = None
        with self._mutex:
            conns, self._conns = list(self._conns), set()
            holding, self._holding = self._holding, []
        for hold in holding:
            hold.dropped = True
            hold.released.set()
        for s in conns:
            _abort(s)

    def restore(self) -> None:
        """Accept connections again, on the same port."""
        if self._listener is not None:
            return
        self._cut.clear()
        self._listen()

    def drop_reply_to(self, *patterns: bytes) -> None:
        """Arm a one-shot fault: the next request whose first bytes contain every one of
        ``patterns`` is forwarded to the server, and its reply is thrown away and the connection
        reset (what a client sees when the network fails after the server acted)."""
        with self._mutex:
            self._drop.append(patterns)

    def hold_requests(self, *patterns: bytes) -> Hold:
        """Like ``hold_request``, but every such request (a client's retries too) is held until
        ``hold.release()``: a server that times out and writes again stays stuck all the same."""
        hold = Hold(patterns, repeat=True)
        with self._mutex:
            self._hold.append(hold)
        return hold

    def hold_request(self, *patterns: bytes) -> Hold:
        """Arm a one-shot fault: the next request whose first bytes contain every one of
        ``patterns`` is held, not forwarded, until ``hold.release()`` forwards it or ``cut()``
        resets its connection (it never reaches the server). ``hold.caught`` is set once such a
        request is held: its client is then stuck at exactly that request, which lets a test
        act at that moment (kill the client, cut the network, start another client)."""
        hold = Hold(patterns)
        with self._mutex:
            self._hold.append(hold)
        return hold

    def _held(self, data: bytes) -> Hold | None:
        with self._mutex:
            for hold in list(self._hold):
                if hold.repeat and hold.released.is_set():
                    self._hold.remove(hold)
                    continue
                if all(p in data for p in hold.patterns):
                    if not hold.repeat:
                        self._hold.remove(hold)
                    if self._cut.is_set():  # cut meanwhile: never forwarded
                        hold.dropped = True
                        hold.released.set()
                    else:
                        self._holding.append(hold)
                    hold.caught.set()
                    return hold
        return None

    def _arm(self, pair: _Pair, data: bytes) -> None:
        with self._mutex:
            for patterns in self._drop:
                if all(p in data for p in patterns):
                    self._drop.remove(patterns)
                    self.dropped.append(data.split(b"\r\n", 1)[0])
                    pair.drop_reply = True
                    return

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals --------------------------------------------------------------------------

    def _listen(self) -> None:
        deadline = time.monotonic() + 10
        while True:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((self.host, self.port))
                break
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        s.listen(128)
        s.settimeout(0.2)
        self._listener = s
        self._accepter = threading.Thread(target=self._accept_loop, args=(s,), name="proxy-accept", daemon=True)
        self._accepter.start()

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._cut.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed by cut()
            if self._cut.is_set():
                _abort(client)
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _abort(client)
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = _Pair(client, upstream)
            with self._mutex:
                self._conns.update((client, upstream))
                self.accepted += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(pair, src, dst), name="proxy-pump", daemon=True).start()

    def _pump(self, pair: _Pair, src: socket.socket, dst: socket.socket) -> None:
        upstream = src is pair.sockets[1]
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                hold = self._held(data) if not upstream and self._hold else None
                if hold is not None:
                    hold.released.wait()
                    if hold.dropped:
                        return  # never forwarded; cut() resets both sides
                if not upstream and self._drop:
                    self._arm(pair, data)  # before forwarding: the reply cannot overtake the mark
                if upstream and pair.drop_reply and not data.startswith(b"HTTP/1.1 100 "):
                    raise OSError("reply dropped on purpose")
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)  # pass the half-close on
        except OSError:
            _abort(src)  # a reset on one side resets the other
            _abort(dst)
        if pair.one_done():
            with self._mutex:
                self._conns.discard(src)
                self._conns.discard(dst)
            src.close()
            dst.close()


class Hold:
    """A request held by the proxy (see ``TcpProxy.hold_request``)."""

    def __init__(self, patterns: tuple[bytes, ...], repeat: bool = False) -> None:
        self.patterns = patterns
        self.repeat = repeat
        self.caught = threading.Event()  # set when such a request is being held
        self.released = threading.Event()
        self.dropped = False  # cut() dropped it

    def release(self) -> None:
        """Forward the held request (and let its connection go on as before)."""
        self.released.set()


class _Pair:
    """The two sockets of one proxied connection; closed when both directions are done."""

    def __init__(self, a: socket.socket, b: socket.socket) -> None:
        self.sockets = (a, b)  # (client, upstream)
        self.drop_reply = False
        self._left = 2
        self._mutex = threading.Lock()

    def one_done(self) -> bool:
        with self._mutex:
            self._left -= 1
            return self._left == 0


def _abort(s: socket.socket) -> None:
    """Close with a reset (SO_LINGER 0), as a dropped network path looks to the peer."""
    with contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        s.close()
