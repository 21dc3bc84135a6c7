"""How a webhook delivery is signed (docs/webhooks.md), as Stripe and GitHub do:
`X-SLA-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, keyed with the endpoint's
secret, one `v1` per secret that signs now (the previous one too during the grace after a
rotation). The body is the delivery's payload as fixed bytes: the same on every attempt."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from datetime import datetime

from portal.models import WebhookEndpoint

SECRET_PREFIX = "whsec_"


def body_bytes(payload: dict) -> bytes:
    """The exact bytes sent (and signed): the same on every attempt."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    keys = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_until and endpoint.previous_secret_until > now:
        keys.append(endpoint.previous_secret)
    return keys


def sign(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(keys: list[str], timestamp: int, body: bytes) -> str:
    return ",".join([f"t={timestamp}", *(f"v1={sign(k, timestamp, body)}" for k in keys)])


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)
