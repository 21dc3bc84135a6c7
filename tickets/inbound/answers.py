"""The emails a sender gets back from the inbound channel, through the outbox: at most one polite
answer a day to a sender whose message was held, and the refusal of a message over the size limit.
Both go only to the return path and only when our MTA says DMARC passed (else the return path may
be forged, and we would mail a stranger); both are automatic replies (RFC 3834) and never go to
automatic mail or to a program's (Auto-Submitted), so two systems never answer each other forever."""

from __future__ import annotations

import hashlib

from django.conf import settings

from portal.core.outbox import Email, outbox_enqueue

from ..models import InboundMessage
from .parse import Envelope


def answer_headers(env: Envelope) -> dict:
    """Our answer to a sender's own message: a reply to it (it starts the thread), automatic
    (RFC 3834: auto-replied), so that their auto-responder does not answer it."""
    headers = {"Auto-Submitted": "auto-replied"}
    if env.message_id:
        headers |= {"In-Reply-To": env.message_id, "References": env.message_id}
    return headers


def _answerable(env: Envelope) -> bool:
    """Only a person's mail whose DMARC passed, at its return path (RFC 3834: never a program's)."""
    return bool(
        env.return_path and env.return_path != "?" and not env.automatic and not env.auto_generated
        and env.dmarc_failed is False
    )  # fmt: skip


def _keyed(address: str) -> str:
    """An address as part of an outbox key (200 characters): itself, or its digest when long."""
    return address if len(address) <= 100 else hashlib.sha256(address.encode()).hexdigest()


def held_answer(row: InboundMessage, env: Envelope) -> bool:
    """How to reach support, once a day per return path (the outbox key holds the day)."""
    if not _answerable(env):
        return False
    return outbox_enqueue(
        email=Email(
            key=f"inbound:held-answer:{_keyed(env.return_path)}:{row.received_at:%Y-%m-%d}", to=env.return_path,
            template="inbound_held", context={"subject": env.subject, "portal": settings.PORTAL_BASE_URL},
            headers=answer_headers(env),
        ),
        now=row.received_at,
    )  # fmt: skip


def refusal(row: InboundMessage, env: Envelope, reason: str) -> bool:
    """A message we refused (its size): the sender is told why, once per message."""
    if not _answerable(env):
        return False
    return outbox_enqueue(
        email=Email(
            # Mail to the security address: a report's email, which only security staff read (portal.admin).
            key=f"{'security-report' if row.security else 'inbound'}:refused:{row.sha256}", to=env.return_path,
            template="inbound_refused",
            context={"subject": env.subject, "reason": reason}, headers=answer_headers(env),
        ),
        now=row.received_at,
    )  # fmt: skip
