"""A light HTTP/1.1 load client for benchmarks: keep-alive sockets driven by one thread.

The threaded ``http.client`` sender costs the client ~0.2-0.4 ms of CPU per request (header
objects, the email parser, GIL hand-offs between 16 threads): on a 2-core machine that is a
large share of the cores the server under test needs. Here every request is a byte string
built before the clock starts, ``selectors`` drives ``connections`` non-blocking sockets from
one thread (one request in flight per connection, like a real sender), and a response is
read by its status line and ``Content-Length`` only.

A connection the server closes (keep-alive timeout, worker recycled) is reopened; a request
that got no answer at all on a closed connection is sent again, as a real sender retries
(intake must acknowledge it without storing it twice).

Only loopback is contacted.
"""
from __future__ import annotations

import selectors
import socket
import time
from dataclasses import dataclass, field


def build_request(host: str, port: int, method: str, path: str, body: bytes = b"", headers: dict | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


@dataclass
class _Conn:
    sock: socket.socket | None = None
    queue: list = field(default_factory=list)   # (tag, request bytes) still to send, in order
    current: tuple | None = None
    out: memoryview | None = None
    buf: bytearray = field(default_factory=bytearray)
    sent_at: float = 0.0
    got_bytes: bool = False


@dataclass
class Result:
    tag: object
    status: int
    seconds: float
    body: bytes


class ProtocolError(Exception):
    pass


def _parse(buf: bytearray):
    """(status, body, close, consumed) when ``buf`` holds a whole response, else None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end]).decode("latin-1").split("\r\n")
    try:
        status = int(head[0].split(" ", 2)[1])
    except (IndexError, ValueError):
        raise ProtocolError(f"bad status line {head[0]!r}") from None
    length, close = 0, head[0].startswith("HTTP/1.0")
    for line in head[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value.lower():
            raise ProtocolError("chunked responses are not supported by this client")
        elif name == "connection":
            close = value.strip().lower() == "close"
    total = end + 4 + length
    if len(buf) < total:
        return None
    return status, bytes(buf[end + 4:total]), close, total


def run(host: str, port: int, items: list[tuple[object, bytes]], connections: int,
        timeout: float = 60.0) -> list[Result]:
    """Send ``items`` (tag, request bytes) over ``connections`` keep-alive sockets, item i on
    connection i % connections, one at a time per connection. Returns one Result per item
    (status 0 and the reason in ``body`` when a request could not be sent)."""
    sel = selectors.DefaultSelector()
    conns = [_Conn(queue=list(reversed(items[i::connections]))) for i in range(connections)]
    results: list[Result] = []

    def open_(c: _Conn):
        s = socket.create_connection((host, port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        c.sock, c.buf, c.got_bytes = s, bytearray(), False
        sel.register(s, selectors.EVENT_WRITE, c)

    def close(c: _Conn):
        if c.sock is not None:
            sel.unregister(c.sock)
            c.sock.close()
            c.sock = None

    def next_(c: _Conn):
        if not c.queue:
            close(c)
            return
        c.current = c.queue.pop()
        c.out = memoryview(c.current[1])
        c.sent_at = time.perf_counter()
        if c.sock is None:
            open_(c)
        else:
            sel.modify(c.sock, selectors.EVENT_WRITE, c)

    for c in conns:
        if c.queue:
            next_(c)
    retries: dict[int, int] = {}
    while sel.get_map():
        events = sel.select(timeout)
        if not events:
            raise TimeoutError(f"no answer for {timeout} s")
        for key, mask in events:
            c: _Conn = key.data
            try:
                if mask & selectors.EVENT_WRITE:
                    n = c.sock.send(c.out)
                    c.out = c.out[n:]
                    if not len(c.out):
                        sel.modify(c.sock, selectors.EVENT_READ, c)
                    continue
                chunk = c.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as e:
                chunk, err = b"", e
            else:
                err = None
            if not chunk:  # closed by the server
                was_answered = c.got_bytes
                close(c)
                if was_answered or retries.get(id(c.current), 0) >= 1:
                    results.append(Result(c.current[0], 0, time.perf_counter() - c.sent_at,
                                          f"connection closed: {err}".encode()))
                    next_(c)
                else:  # nothing came back: the request was not taken; send it again
                    retries[id(c.current)] = retries.get(id(c.current), 0) + 1
                    c.queue.append(c.current)
                    next_(c)
                continue
            c.got_bytes = True
            c.buf += chunk
            parsed = _parse(c.buf)
            if parsed is None:
                continue
            status, body, must_close, used = parsed
            results.append(Result(c.current[0], status, time.perf_counter() - c.sent_at, body))
            del c.buf[:used]
            c.got_bytes = bool(c.buf)
            if must_close:
                close(c)
            next_(c)
    sel.close()
    return results
