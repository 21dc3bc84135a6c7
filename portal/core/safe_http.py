"""An HTTPS POST to an address a customer gave us, made safe for the server that makes it (SSRF).

- The URL must be https, with a host name or address and no user:password part.
- The host is resolved once; every address it resolves to must be public (not private, loopback,
  link-local, multicast, reserved, unspecified, shared or otherwise non-global; an IPv4 address
  inside IPv6 is judged as IPv4). One refused address refuses the whole host, so a name that
  answers both a public and a private address cannot be steered to the private one.
- The connection goes to an address that was checked (never a second resolution, which a
  rebinding DNS server could answer differently); TLS still verifies the certificate against the
  host name (SNI and hostname check).
- Redirects are not followed: a 3xx is the receiver's answer, not a place to go.
- Time and size are bounded: a connect timeout, a read timeout between packets, a total deadline
  (a receiver dripping a byte at a time is cut off), and at most WEBHOOK_MAX_RESPONSE_BYTES of the
  response read.

Hosts named in WEBHOOK_ALLOWED_HOSTS skip the address check (tests, a local receiver in
development; production refuses the setting).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings


class Refused(Exception):
    """The URL or the address it leads to is not one we send to; the message says why."""


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    path: str  # with its query


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes  # at most WEBHOOK_MAX_RESPONSE_BYTES
    truncated: bool  # the receiver sent more than that
    location: str = ""


def parse_url(url: str) -> Target:
    try:
        parts = urlsplit(url.strip())
        port = parts.port or 443
    except ValueError as exc:
        raise Refused(f"This is not a valid URL ({exc}).") from None
    if parts.scheme.lower() != "https":
        raise Refused("The URL must start with https:// (deliveries are sent over TLS only).")
    if not parts.hostname:
        raise Refused("The URL has no host.")
    if parts.username is not None or parts.password is not None:
        raise Refused("The URL must not carry a user name or password: deliveries are signed instead.")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(host=parts.hostname.lower().rstrip("."), port=port, path=path)


def address_refusal(address: str) -> str | None:
    """Why an address is refused, or None if it is public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):  # an IPv4 address inside IPv6 is judged as IPv4
        ip = ip.ipv4_mapped or ip.sixtofour or ip
    for flag, why in (
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_unspecified", "unspecified"),
        ("is_reserved", "reserved"),
        ("is_private", "private"),
    ):
        if getattr(ip, flag):
            return why
    if not ip.is_global:
        return "not public"
    return None


def allowed_without_check(host: str) -> bool:
    return host in settings.WEBHOOK_ALLOWED_HOSTS


def resolve(target: Target) -> list[str]:
    """The addresses to connect to, every one of them checked. Raises Refused."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise Refused(f"The host {target.host} could not be resolved.") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise Refused(f"The host {target.host} has no address.")
    if not allowed_without_check(target.host):
        for address in addresses:
            why = address_refusal(address)
            if why:
                subject = address if address == target.host else f"{target.host} resolves to {address}, which"
                raise Refused(f"{subject} is a {why} address: deliveries go to public addresses only.")
    return addresses


def check_destination(url: str) -> Target:
    """What registration asks: a valid https URL whose host resolves to public addresses only."""
    target = parse_url(url)
    resolve(target)
    return target


def ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=settings.WEBHOOK_CA_FILE)


class _PinnedConnection(http.client.HTTPSConnection):
    """An HTTPS connection to a checked address, with the certificate verified for the host name."""

    def __init__(self, target: Target, address: str, context: ssl.SSLContext):
        super().__init__(target.host, target.port, timeout=settings.WEBHOOK_READ_TIMEOUT, context=context)
        self._address = address
        self.raw: socket.socket | None = None  # a duplicate of the socket, for the deadline to shut

    def connect(self):
        sock = socket.create_connection((self._address, self.port), timeout=settings.WEBHOOK_CONNECT_TIMEOUT)
        self.raw = sock.dup()
        sock.settimeout(self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(url: str, body: bytes, headers: dict[str, str]) -> Response:
    """POST `body` to `url` under every rule above. Raises Refused (the address) or OSError and
    http.client.HTTPException (the exchange: refused, timed out, cut off, bad TLS)."""
    target = parse_url(url)
    addresses = resolve(target)
    context = ssl_context()
    deadline = time.monotonic() + settings.WEBHOOK_TOTAL_TIMEOUT
    last_error: OSError | None = None
    for address in addresses:
        if time.monotonic() >= deadline:
            break
        conn = _PinnedConnection(target, address, context)
        try:
            conn.connect()
        except OSError as exc:  # this address does not answer: try the next checked one
            last_error = exc
            conn.close()
            continue
        return _exchange(conn, target, body, headers, deadline)
    raise last_error or TimeoutError("The total time for the delivery ran out.")


def _exchange(conn: _PinnedConnection, target: Target, body: bytes, headers: dict, deadline: float) -> Response:
    expired = threading.Event()

    def cut_off():
        expired.set()
        try:
            conn.raw.shutdown(socket.SHUT_RDWR)  # the reading thread's recv returns at once
        except OSError:
            pass

    timer = threading.Timer(max(0.0, deadline - time.monotonic()), cut_off)
    timer.daemon = True
    timer.start()
    try:
        conn.request("POST", target.path, body=body, headers=headers)
        response = conn.getresponse()
        limit = settings.WEBHOOK_MAX_RESPONSE_BYTES
        data = response.read(limit + 1)
        if expired.is_set():  # a read cut short by the deadline ends early without an error
            raise TimeoutError
        return Response(
            status=response.status, body=data[:limit], truncated=len(data) > limit,
            location=response.getheader("Location", "") or "",
        )  # fmt: skip
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set():
            raise TimeoutError(
                f"The receiver took longer than {settings.WEBHOOK_TOTAL_TIMEOUT:g} s in all; cut off."
            ) from exc
        raise
    finally:
        timer.cancel()
        conn.close()
        if conn.raw is not None:
            conn.raw.close()
