"""The address of the person making a request, the one answer for every part that needs it: the
login lockout (django-axes, AXES_CLIENT_IP_CALLABLE), the audit log's `ip`, the per-address limits
of the public forms, and the API's write throttle for anonymous requests (portal.core.throttles).

Behind TRUSTED_PROXIES reverse proxies (settings; 1 in the production profile, which sits behind a
TLS proxy), REMOTE_ADDR is the nearest proxy for every client: the client is the address the
outermost trusted proxy appended to X-Forwarded-For, the TRUSTED_PROXIES-th entry from the right.
Entries further left are whatever the client sent, never trusted. With no proxy (0), or a header
too short or not an address (a request that did not come through the proxies), REMOTE_ADDR."""

from __future__ import annotations

import ipaddress

from django.conf import settings


def _address(value: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:
        return None


def client_ip(request) -> str | None:
    peer = request.META.get("REMOTE_ADDR") or None
    proxies = settings.TRUSTED_PROXIES
    if proxies <= 0:
        return peer
    forwarded = [part for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if len(forwarded) < proxies:
        return peer
    return _address(forwarded[-proxies]) or peer
