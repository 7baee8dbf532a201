"""A small HTTP proxy on loopback in front of an S3 API (moto's server), which forwards every
request and, by rule, fails some of them the ways a network and an object store fail: it drops
the connection, stalls past the client's read timeout, answers 500/503 with S3's error body,
refuses for good (403), or truncates a response body (the connection cut mid-body, or a short
body whose Content-Length agrees with it, as a broken middlebox sends).

    with FaultProxy(moto_endpoint) as proxy:
        proxy.add(Rule("status", method="PUT", path=r"/batch\\.parquet$", times=2, status=503))
        ... a client with endpoint_url=proxy.url ...
        assert proxy.rules[0].hits == 2

Every wait is bounded: a stall ends at its ``stall`` seconds or when the proxy stops.
"""
from __future__ import annotations

import http.client
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

ACTIONS = ("drop", "stall", "status", "truncate", "short")
_S3_CODES = {500: "InternalError", 503: "SlowDown", 403: "AccessDenied"}
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "te", "upgrade"}


@dataclass
class Rule:
    """Fail requests whose method and path match (``path``: a regex searched in the URL path),
    the first ``times`` of them (None: every one)."""

    action: str
    method: str | None = None
    path: str | None = None
    times: int | None = 1
    status: int = 503
    stall: float = 3.0
    keep: float = 0.5  # share of the body a truncated response sends
    hits: int = field(default=0, init=False)

    def __post_init__(self):
        if self.action not in ACTIONS:
            raise ValueError(f"action {self.action!r}: expected one of {ACTIONS}")

    def matches(self, method: str, path: str) -> bool:
        return ((self.method is None or method == self.method)
                and (self.path is None or re.search(self.path, path) is not None)
                and (self.times is None or self.hits < self.times))


class FaultProxy:
    def __init__(self, upstream: str):
        u = urlsplit(upstream)
        self.upstream = (u.hostname, u.port)
        self.rules: list[Rule] = []
        self.log: list[tuple[str, str, str]] = []  # (method, path, what happened)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="s3-fault-proxy", daemon=True)

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def _take(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.hits += 1
                    return rule
        return None

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as S3 clients expect
    disable_nagle_algorithm = True  # headers and body go in two writes: Nagle would hold each answer ~40 ms
    owner: FaultProxy

    def log_message(self, *args) -> None:  # the test's own log says what happened
        pass

    def do_GET(self):
        self._proxy()

    do_PUT = do_POST = do_DELETE = do_HEAD = do_GET

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _cut(self) -> None:
        """Close the connection without (the rest of) an answer."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _proxy(self) -> None:
        proxy = self.owner
        body = self._body()
        path = urlsplit(self.path).path
        rule = proxy._take(self.command, path)
        action = rule.action if rule else "forward"
        proxy.log.append((self.command, path, action if action != "status" else f"status {rule.status}"))
        if action == "drop":
            return self._cut()
        if action == "stall":
            proxy._stopping.wait(rule.stall)
            return self._cut()
        if action == "status":
            code = _S3_CODES.get(rule.status, "InternalError")
            err = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                   f"<Message>injected by the test proxy</Message><Resource>{path}</Resource></Error>").encode()
            self.send_response(rule.status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(err)))
            self.end_headers()
            self.wfile.write(err)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        if body or self.command in ("PUT", "POST"):
            headers["Content-Length"] = str(len(body))
        conn = http.client.HTTPConnection(*proxy.upstream, timeout=30)
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in _HOP:
                self.send_header(k, v)
        if self.command == "HEAD":
            self.send_header("Content-Length", resp.getheader("Content-Length", "0"))
            self.end_headers()
            return
        keep = int(len(data) * rule.keep) if action in ("truncate", "short") else len(data)
        # truncate: the length announced is the whole body's, the connection ends early;
        # short: the length announced is that of what is sent
        self.send_header("Content-Length", str(len(data) if action == "truncate" else keep))
        self.end_headers()
        self.wfile.write(data[:keep])
        if action == "truncate":
            self._cut()
