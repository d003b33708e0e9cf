"""Requests the platform makes to addresses its users give it: webhook deliveries and input
fetched by URL. One guard for both (SSRF):

- http and https only, no credentials in the URL;
- the host is resolved at request time and every address it resolves to must be public: a
  loopback, private, link-local (the cloud metadata service), shared, reserved or multicast
  address is refused unless `allow_private` (tests, a laptop);
- the connection goes to the address that was checked, not to a second lookup (DNS rebinding),
  with the URL's host name kept for the Host header, TLS SNI and certificate checks;
- redirects are followed only when asked, each hop checked the same way.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

MAX_URL_LENGTH = 2048
REDIRECTS = (301, 302, 303, 307, 308)
USER_AGENT = "BTRO (+https://github.com/btro)"


class OutboundError(Exception):
    """The request could not be made or completed; str() says why in one line."""


class AddressRefused(OutboundError):
    """The URL is not one the platform may call (scheme, credentials, a non-public address)."""


def check_url(url: str) -> None:
    """The URL's form only (no lookup): http(s), a host, no credentials, not too long."""
    if len(url) > MAX_URL_LENGTH:
        raise AddressRefused(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise AddressRefused("The URL contains spaces or control characters.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError as err:
        raise AddressRefused(f"The URL is malformed: {err}.") from None
    if parts.scheme not in ("http", "https"):
        raise AddressRefused("The URL must start with http:// or https://.")
    if not parts.hostname:
        raise AddressRefused("The URL has no host.")
    if parts.username is not None or parts.password is not None:
        raise AddressRefused("The URL must not contain a user name or password.")


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve(host: str, port: int, *, allow_private: bool) -> str:
    """The address to connect to for `host`: refused if any address it resolves to is not
    public (one public record must not smuggle in a private one)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as err:
        raise OutboundError(f"Could not resolve the host {host} ({err}).") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise OutboundError(f"The host {host} has no address.")
    if not allow_private:
        for address in addresses:
            if not _is_public(address):
                raise AddressRefused(
                    f"The host {host} resolves to {address}, a private or reserved address."
                )
    return addresses[0]


class Response:
    """A response whose body is read on demand, within the request's deadline."""

    def __init__(self, raw: urllib3.BaseHTTPResponse, url: str, deadline: float | None):
        self._raw = raw
        self.status = raw.status
        self.headers = raw.headers
        self.url = url
        self._deadline = deadline

    def stream(self, chunk: int = 1 << 16) -> Iterator[bytes]:
        """The body in pieces of at most `chunk` bytes; OutboundError past the deadline."""
        while True:
            if self._deadline is not None and time.monotonic() > self._deadline:
                raise OutboundError("The request took longer than its time limit.")
            try:
                data = self._raw.read1(chunk)
            except Urllib3Timeout:
                raise OutboundError("The server stopped sending (timed out).") from None
            except (Urllib3Error, OSError) as err:
                raise OutboundError(f"The connection failed while reading ({err}).") from None
            if not data:
                return
            yield data

    def read(self, limit: int) -> bytes:
        """At most `limit` bytes of the body (for logs and error messages)."""
        body = bytearray()
        for data in self.stream(min(limit, 1 << 16)):
            body += data[: limit - len(body)]
            if len(body) >= limit:
                break
        return bytes(body)


def _timeout(timeout: float, deadline: float | None) -> float:
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise OutboundError("The request took longer than its time limit.")
    return min(timeout, left)


def _send(
    method: str,
    url: str,
    *,
    allow_private: bool,
    timeout: float,
    body: bytes | None,
    headers: Mapping[str, str],
    deadline: float | None,
) -> urllib3.BaseHTTPResponse:
    check_url(url)
    parts = urlsplit(url)
    host = parts.hostname or ""
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    address = resolve(host, port, allow_private=allow_private)
    seconds = _timeout(timeout, deadline)
    pool: urllib3.HTTPConnectionPool
    if https:
        pool = urllib3.HTTPSConnectionPool(
            address,
            port,
            server_hostname=host,
            assert_hostname=host,
            cert_reqs="CERT_REQUIRED",
            retries=False,
            timeout=urllib3.Timeout(connect=seconds, read=seconds),
        )
    else:
        pool = urllib3.HTTPConnectionPool(
            address, port, retries=False, timeout=urllib3.Timeout(connect=seconds, read=seconds)
        )
    default_port = 443 if https else 80
    host_header = host if ":" not in host else f"[{host}]"
    if parts.port and parts.port != default_port:
        host_header += f":{parts.port}"
    target = parts.path or "/"
    if parts.query:
        target += f"?{parts.query}"
    try:
        return pool.urlopen(
            method,
            target,
            body=body,
            headers={"User-Agent": USER_AGENT, **headers, "Host": host_header},
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
    except NewConnectionError as err:  # a subclass of the timeout: refused, unreachable
        raise OutboundError(f"Could not connect to {host} ({err.__cause__ or err}).") from None
    except Urllib3Timeout:
        raise OutboundError(f"{host} did not answer within {seconds:.3g} s.") from None
    except (Urllib3Error, OSError) as err:
        reason = getattr(err, "reason", None) or err
        raise OutboundError(f"Could not connect to {host} ({reason}).") from None


@contextmanager
def request(
    method: str,
    url: str,
    *,
    allow_private: bool,
    timeout: float,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    max_redirects: int = 0,
    deadline: float | None = None,
) -> Iterator[Response]:
    """Send one request through the guard. `timeout` bounds the connection and each read,
    `deadline` (a time.monotonic() value) the whole exchange, body included. A 3xx is
    answered as it is unless `max_redirects` allows following it; each hop is checked again,
    and a 303 (or a 301/302 to a POST) becomes a GET without a body."""
    headers = dict(headers or {})
    for hop in range(max_redirects + 1):
        raw = _send(
            method,
            url,
            allow_private=allow_private,
            timeout=timeout,
            body=body,
            headers=headers,
            deadline=deadline,
        )
        location = raw.headers.get("Location")
        if raw.status not in REDIRECTS or not location or max_redirects == 0:
            break
        raw.release_conn()
        raw.close()
        if hop == max_redirects:
            raise OutboundError(f"The URL redirected more than {max_redirects} times.")
        url = urljoin(url, location)
        if raw.status == 303 or (raw.status in (301, 302) and method == "POST"):
            method, body = "GET", None
    try:
        yield Response(raw, url, deadline)
    finally:
        raw.close()
