"""Load generators for ``bench_landing.py``: one-click POSTs over keep-alive connections.

Each runs in a process of its own (multiprocessing, spawn) and puts
``(elapsed seconds, [(profile id, status or 0 for a failure, latency)], CPU
seconds)`` on its queue. Both post each path once, stop after ``seconds``, when the paths
run out, or after three failures in a row on a connection (the server is
gone: the durability run killed it), and read every answer whole.

- ``raw`` (the default): one thread, non-blocking sockets under
  ``selectors``, each request's bytes built before the clock starts, and an
  answer read as far as its status line, ``content-length`` and body. The
  load generator shares the machine's cores with the server; the cheaper it
  is, the more CPU the server gets.
- ``http``: ``http.client``, one thread per connection (the first version's
  generator, kept to compare).
"""

import http.client
import selectors
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit

BODY = b"List-Unsubscribe=One-Click"
HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}
FAILURES_TO_STOP = 3


def request_bytes(host: str, port: int, path: str) -> bytes:
    """The whole request for one one-click POST."""
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: {HEADERS['Content-Type']}\r\nContent-Length: {len(BODY)}\r\n\r\n"
    ).encode("ascii") + BODY


class _Answer(Exception):
    """A response that cannot be read as HTTP/1.1 with a content-length."""


def _parse(buffer: bytearray) -> tuple[int, int, bool] | None:
    """(status, whole length, closes) once the head and body are in ``buffer``; else None."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).lower()
    if not head.startswith(b"http/1.1 "):
        raise _Answer(head[:40])
    status = int(head[9:12])
    at = head.find(b"\r\ncontent-length:")
    if at < 0:
        raise _Answer("no content-length")
    stop = head.find(b"\r\n", at + 2)
    length = int(head[at + 17 : stop if stop >= 0 else len(head)])
    total = end + 4 + length
    if len(buffer) < total:
        return None
    return status, total, b"\r\nconnection: close" in head


class _Connection:
    """One keep-alive connection of the raw generator and its request in flight."""

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.buffer = bytearray()
        self.item: tuple[int, bytes] | None = None
        self.started = 0.0
        self.failures = 0
        self.retry_at = 0.0


def generate_load_raw(
    url: str, paths: list[tuple[int, str]], connections: int, seconds: float, out: Any
) -> None:
    """The raw generator: ``connections`` sockets driven by one ``selectors`` loop."""
    parts = urlsplit(url)
    host, port = str(parts.hostname), int(parts.port or 80)
    requests = iter([(pid, request_bytes(host, port, path)) for pid, path in paths])
    results: list[tuple[int, int, float]] = []
    selector = selectors.DefaultSelector()
    conns = [_Connection() for _ in range(connections)]
    clock = time.perf_counter
    deadline = clock() + seconds
    exhausted = False

    def close(conn: _Connection) -> None:
        if conn.sock is not None:
            selector.unregister(conn.sock)
            conn.sock.close()
            conn.sock = None
        conn.buffer.clear()

    def fail(conn: _Connection) -> None:
        if conn.item is not None:
            results.append((conn.item[0], 0, clock() - conn.started))
            conn.item = None
        close(conn)
        conn.failures += 1
        conn.retry_at = clock() + 0.05

    def send_next(conn: _Connection) -> bool:
        nonlocal exhausted
        if exhausted or clock() >= deadline or conn.failures >= FAILURES_TO_STOP:
            close(conn)
            return False
        item = next(requests, None)
        if item is None:
            exhausted = True
            close(conn)
            return False
        conn.item = item
        conn.started = clock()
        try:
            if conn.sock is None:
                sock = socket.create_connection((host, port), timeout=10)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.setblocking(False)
                conn.sock = sock
                selector.register(sock, selectors.EVENT_READ, conn)
            conn.sock.sendall(item[1])  # small: fits the socket buffer at once
        except OSError:
            fail(conn)
        return True

    started, cpu = clock(), time.process_time()
    for conn in conns:
        send_next(conn)
    while True:
        waiting = [c for c in conns if c.sock is None and c.item is None]
        busy = any(c.sock is not None for c in conns)
        retry = [
            c
            for c in waiting
            if c.failures and c.failures < FAILURES_TO_STOP and not exhausted and clock() < deadline
        ]
        if not busy and not retry:
            break
        now = clock()
        for conn in retry:
            if now >= conn.retry_at:
                send_next(conn)
        for key, _ in selector.select(timeout=0.05 if retry else 1.0):
            conn = key.data
            try:
                chunk = conn.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                fail(conn)
                continue
            if not chunk:
                fail(conn)
                continue
            conn.buffer += chunk
            try:
                answer = _parse(conn.buffer)
            except (_Answer, ValueError):
                fail(conn)
                continue
            if answer is None:
                continue
            status, total, closes = answer
            assert conn.item is not None
            results.append((conn.item[0], status, clock() - conn.started))
            conn.item = None
            conn.failures = 0
            del conn.buffer[:total]
            if closes:
                close(conn)
            send_next(conn)
    selector.close()
    out.put((clock() - started, results, time.process_time() - cpu))


def generate_load_http(
    url: str, paths: list[tuple[int, str]], connections: int, seconds: float, out: Any
) -> None:
    """The ``http.client`` generator: one thread per keep-alive connection."""
    parts = urlsplit(url)
    lock = threading.Lock()
    queue = iter(paths)
    deadline = time.perf_counter() + seconds
    results: list[tuple[int, int, float]] = []

    def worker() -> None:
        conn: http.client.HTTPConnection | None = None
        failures = 0
        mine: list[tuple[int, int, float]] = []
        while time.perf_counter() < deadline and failures < FAILURES_TO_STOP:
            with lock:
                item = next(queue, None)
            if item is None:
                break
            profile_id, path = item
            started = time.perf_counter()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(str(parts.hostname), parts.port, timeout=10)
                conn.request("POST", path, body=BODY, headers=HEADERS)
                response = conn.getresponse()
                response.read()
                mine.append((profile_id, response.status, time.perf_counter() - started))
                failures = 0
            except (OSError, http.client.HTTPException):
                mine.append((profile_id, 0, time.perf_counter() - started))
                failures += 1
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.05)
        if conn is not None:
            conn.close()
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    started, cpu = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put((time.perf_counter() - started, results, time.process_time() - cpu))


GENERATORS = {"raw": generate_load_raw, "http": generate_load_http}
