"""The guard in front of every request the platform makes to a user's URL, against a real
HTTP server on loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from btro import outbound
from btro.outbound import AddressRefused, OutboundError, check_url, request


class Handler(BaseHTTPRequestHandler):
    hits: list[tuple[str, str, str]] = []

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.hits.append(("GET", self.path, self.headers.get("Host", "")))
        if self.path.startswith("/hop/"):
            left = int(self.path.rsplit("/", 1)[1])
            self.send_response(302)
            self.send_header("Location", f"/hop/{left - 1}" if left > 1 else "/ok")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path.startswith("/to/"):
            self.send_response(302)
            self.send_header("Location", self.path[len("/to/") :])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/drip":
            self.send_response(200)
            self.end_headers()
            for _ in range(40):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.1)
        elif self.path == "/silent":
            time.sleep(2)
            self.send_response(200)
            self.end_headers()
        else:
            body = b"hello " * 1000
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        self.hits.append(("POST", self.path, body.decode()))
        if self.path == "/see-other":
            self.send_response(303)
            self.send_header("Location", "/ok")
            self.send_header("Content-Length", "0")
        else:
            self.send_response(204)
        self.end_headers()


@pytest.fixture
def server() -> Iterator[str]:
    Handler.hits = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/a.wav",
        "file:///etc/passwd",
        "gopher://example.com",
        "http://",
        "https://user:pw@example.com/a.wav",
        "http://example.com:99999/",
        "http://exa mple.com/",
        "http://example.com/\x00",
        "http://example.com/" + "a" * 3000,
    ],
)
def test_urls_of_the_wrong_form_are_refused_without_a_lookup(url):
    with pytest.raises(AddressRefused):
        check_url(url)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # the cloud metadata service
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "::ffff:127.0.0.1",
        "fe80::1",
        "fd00:ec2::254",  # the metadata service over IPv6
    ],
)
def test_non_public_addresses_are_not_public(address):
    assert not outbound._is_public(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_public(address):
    assert outbound._is_public(address)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "127.1"])
def test_loopback_is_refused_unless_private_addresses_are_allowed(server, host):
    port = server.rsplit(":", 1)[1]
    with pytest.raises(AddressRefused, match="private or reserved"):
        with request("GET", f"http://{host}:{port}/ok", allow_private=False, timeout=5):
            pass
    assert Handler.hits == []  # refused before connecting


def test_an_allowed_request_streams_the_body_and_keeps_the_host_header(server):
    with request("GET", f"{server}/ok", allow_private=True, timeout=5) as response:
        assert response.status == 200
        assert b"".join(response.stream(1000)) == b"hello " * 1000
    assert Handler.hits == [("GET", "/ok", server.removeprefix("http://"))]


def test_a_redirect_is_answered_as_it_is_unless_following_is_asked(server):
    with request("GET", f"{server}/hop/1", allow_private=True, timeout=5) as response:
        assert response.status == 302
    assert len(Handler.hits) == 1


def test_up_to_max_redirects_are_followed_and_one_more_is_an_error(server):
    with request(
        "GET", f"{server}/hop/3", allow_private=True, timeout=5, max_redirects=3
    ) as response:
        assert response.status == 200
        assert response.url == f"{server}/ok"
    with pytest.raises(OutboundError, match="more than 3 times"):
        with request("GET", f"{server}/hop/4", allow_private=True, timeout=5, max_redirects=3):
            pass


def test_each_redirect_hop_is_checked_again(server, monkeypatch):
    # 127.0.0.1 plays a public host; its redirect to 127.0.0.2 (private here) is refused.
    monkeypatch.setattr(outbound, "_is_public", lambda address: address == "127.0.0.1")
    port = server.rsplit(":", 1)[1]
    with request("GET", f"{server}/ok", allow_private=False, timeout=5) as response:
        assert response.status == 200
    with pytest.raises(AddressRefused, match="127.0.0.2"):
        with request(
            "GET",
            f"{server}/to/http://127.0.0.2:{port}/ok",
            allow_private=False,
            timeout=5,
            max_redirects=3,
        ):
            pass
    with pytest.raises(AddressRefused, match="http:// or https://"):
        with request(
            "GET",
            f"{server}/to/file:///etc/passwd",
            allow_private=False,
            timeout=5,
            max_redirects=3,
        ):
            pass


def test_a_303_after_a_post_becomes_a_get_without_the_body(server):
    with request(
        "POST", f"{server}/see-other", allow_private=True, timeout=5, body=b"{}", max_redirects=1
    ) as response:
        assert response.status == 200
    assert [hit[0] for hit in Handler.hits] == ["POST", "GET"]


def test_a_body_is_posted_with_the_callers_headers(server):
    with request(
        "POST",
        f"{server}/hook",
        allow_private=True,
        timeout=5,
        body=b'{"a": 1}',
        headers={"Content-Type": "application/json"},
    ) as response:
        assert response.status == 204
    assert Handler.hits == [("POST", "/hook", '{"a": 1}')]


def test_a_server_that_does_not_answer_times_out(server):
    started = time.monotonic()
    with pytest.raises(OutboundError, match="did not answer within 0.5 s"):
        with request("GET", f"{server}/silent", allow_private=True, timeout=0.5):
            pass
    assert time.monotonic() - started < 1.5


def test_a_server_that_drips_is_stopped_at_the_deadline(server):
    started = time.monotonic()
    deadline = started + 1.0
    with pytest.raises(OutboundError, match="time limit"):
        with request(
            "GET", f"{server}/drip", allow_private=True, timeout=5, deadline=deadline
        ) as response:
            for _ in response.stream():
                pass
    assert time.monotonic() - started < 2.0


def test_read_stops_at_its_limit(server):
    with request("GET", f"{server}/ok", allow_private=True, timeout=5) as response:
        assert response.read(10) == b"hello hell"


def test_a_closed_port_and_an_unknown_host_say_why():
    with pytest.raises(OutboundError, match="Could not connect"):
        with request("GET", "http://127.0.0.1:9/", allow_private=True, timeout=2):
            pass
    with pytest.raises(OutboundError, match="Could not resolve"):
        with request("GET", "http://no-such-host.invalid/", allow_private=True, timeout=2):
            pass


@pytest.fixture
def tls_server(tmp_path) -> Iterator[str]:
    import shutil
    import ssl
    import subprocess

    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"https://localhost:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_https_checks_the_certificate_against_the_urls_host(tls_server):
    Handler.hits = []
    with pytest.raises(OutboundError, match="certificate verify failed"):
        with request("GET", f"{tls_server}/ok", allow_private=True, timeout=5):
            pass
