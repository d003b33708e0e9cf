"""A real HTTP file server on loopback, in a thread, for input by URL (file_url): files,
redirect chains, errors, bodies past a size limit and a server too slow to finish.

    /files/<name>            a file of `files` (its bytes and Content-Type), Content-Length set
    /redirect/<n>/<name>     302 to /redirect/<n-1>/<name>, … then to /files/<name>
    /status/<code>           that status, a short text body
    /endless/<mode>          bytes without end (until the client hangs up): mode `close`
                             (no Content-Length, the body ends with the connection),
                             `chunked`, or `declared` (an honest, huge Content-Length)
    /slow/<name>             the file, one small piece every 50 ms
    /flaky/<name>            the first time, half the file and a dropped connection; then all
    /to?url=<url>            302 to any URL
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ENDLESS_BYTES = 1 << 30  # what an endless body would send, if the client never hung up


@dataclass
class FileServer:
    host: str
    port: int
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)  # paths, in the order they came
    sent: dict[str, int] = field(default_factory=dict)  # body bytes written, by path

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def add(self, name: str, data: bytes, content_type: str = "audio/wav") -> str:
        self.files[name] = (data, content_type)
        return self.url(f"/files/{name}")


def _handler(server: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            server.requests.append(self.path)
            parts = urlsplit(self.path)
            kind, _, rest = parts.path.lstrip("/").partition("/")
            try:
                if kind == "files" and rest in server.files:
                    data, content_type = server.files[rest]
                    self._send(200, data, content_type)
                elif kind == "redirect":
                    hops, _, name = rest.partition("/")
                    target = f"/redirect/{int(hops) - 1}/{name}" if int(hops) > 1 else ""
                    self._redirect(target or f"/files/{name}")
                elif kind == "to":
                    self._redirect(parse_qs(parts.query)["url"][0])
                elif kind == "status":
                    self._send(int(rest), b"no file here\n", "text/plain")
                elif kind == "endless":
                    self._endless(rest)
                elif kind == "slow" and rest in server.files:
                    self._slow(*server.files[rest])
                elif kind == "flaky" and rest in server.files:
                    data, content_type = server.files[rest]
                    if server.requests.count(self.path) == 1:
                        self._send(200, data, content_type, cut=len(data) // 2)
                    else:
                        self._send(200, data, content_type)
                else:
                    self._send(404, b"not found\n", "text/plain")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client hung up: what the size and time limits do

        def _count(self, n: int) -> None:
            server.sent[self.path] = server.sent.get(self.path, 0) + n

        def _send(self, status: int, body: bytes, content_type: str, cut: int = 0) -> None:
            """`cut`: send only that much of the body, then drop the connection."""
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:cut] if cut else body)
            self._count(cut or len(body))
            if cut:
                self.close_connection = True

        def _redirect(self, location: str) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _endless(self, mode: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "audio/wav")
            if mode == "declared":
                self.send_header("Content-Length", str(ENDLESS_BYTES))
            elif mode == "chunked":
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            piece = b"\0" * 65536
            for _ in range(ENDLESS_BYTES // len(piece)):
                if mode == "chunked":
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                else:
                    self.wfile.write(piece)
                self._count(len(piece))

        def _slow(self, data: bytes, content_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            step = max(1, len(data) // 200)
            for start in range(0, len(data), step):
                self.wfile.write(data[start : start + step])
                self.wfile.flush()
                self._count(len(data[start : start + step]))
                time.sleep(0.05)

    return Handler


@contextmanager
def serving(host: str = "127.0.0.1") -> Iterator[FileServer]:
    """A FileServer listening on `host` (a free port) until the block ends."""
    state = FileServer(host, 0)
    httpd = ThreadingHTTPServer((host, 0), _handler(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
