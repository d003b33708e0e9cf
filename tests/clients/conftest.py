"""The SDK against pytest-django's live server, and tiny loopback servers for what a healthy
server never does (429 then 200, a connection cut mid-download)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import pytest
from btro_sdk import Client

T = TypeVar("T")


@pytest.fixture
def sdk(test_key, live_server, transactional_db) -> Iterator[Client]:
    with Client(api_key=test_key, base_url=live_server.url, backoff=0.05) as client:
        yield client


@pytest.fixture
def live_sdk(live_key, live_server, transactional_db) -> Iterator[Client]:
    with Client(api_key=live_key, base_url=live_server.url, backoff=0.05) as client:
        yield client


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Loopback:
    """A real HTTP server on 127.0.0.1; `respond(handler, index)` answers request number index."""

    respond: Callable[[BaseHTTPRequestHandler, int], None]
    seen: list[Seen] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def answer(
    handler: BaseHTTPRequestHandler, status: int, body: bytes = b"{}", **headers: str
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    for name, value in headers.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.end_headers()
    handler.wfile.write(body)


@pytest.fixture
def loopback() -> Iterator[Callable[..., Loopback]]:
    started: list[ThreadingHTTPServer] = []

    def start(respond: Callable[[BaseHTTPRequestHandler, int], None]) -> Loopback:
        box = Loopback(respond)
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with lock:
                    box.seen.append(Seen(self.command, self.path, dict(self.headers), body))
                    index = len(box.seen) - 1
                box.respond(self, index)

            do_GET = do_POST = do_DELETE = handle_any

            def log_message(self, *args: object) -> None:
                pass

        box.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        box.server.daemon_threads = True
        threading.Thread(target=box.server.serve_forever, daemon=True).start()
        started.append(box.server)
        return box

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """asyncio.run in a thread of its own: the browser tests' Playwright keeps an event loop
    running in the main thread for the whole session, where asyncio.run refuses to start."""
    result: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(asyncio.run(coroutine))
        except BaseException as err:  # handed to the test's thread
            errors.append(err)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]
