"""A ticket's emails as one thread that can be answered by email.

- **Reply address**: every ticket email carries `Reply-To: support+t<number>.<token>@<domain>`, the
  SLA version's support address (its level-1 email contact) plus-addressed in the one scheme of
  portal.core.reply_address; the token binds the ticket and the recipient, so an address cannot be
  made up nor moved to another ticket. tickets.inbound reads it back (`ticket_of_address`).
- **Threading**: the ticket's root Message-ID is its filer's receipt's (`root_id`); every later
  email answers it (In-Reply-To) and References the customer's own message first when the ticket
  came by email (`Ticket.email_origin`), so every mail client shows one thread from her message on.
"""

from __future__ import annotations

from datetime import UTC

from django.conf import settings

from portal.core import reply_address
from portal.core.ids import as_id

from .terms_cache import TermsCache

SALT = "tickets.mail_thread.reply_address"
TAG = "t"
THREAD_HEADERS = ("In-Reply-To", "References")


# A version's support address, kept for the process: a ticket's version is published, and published
# terms never change (contracts.models refuses it), so a sweep's thousand emails ask the database once.
_mailboxes: dict[int, str] = {}


def forget() -> None:
    """Drop the kept addresses (tests, whose rolled-back versions may reuse an id)."""
    _mailboxes.clear()


def support_mailbox(ticket) -> str:
    """The address customers write to about the ticket: its SLA version's level-1 email contact."""
    found = _mailboxes.get(ticket.sla_version_id)
    if found is None:
        version = TermsCache().version(ticket.sla_version_id)
        levels = version.escalation_levels.all()
        emails = [lv.contact for lv in levels if lv.level == 1 and lv.channel == "email" and "@" in lv.contact]
        found = emails[0] if emails else settings.SUPPORT_QUEUE_EMAIL
        if version.published_at:
            _mailboxes[ticket.sla_version_id] = found
    return found


def _value(ticket_id: int, recipient: str) -> str:
    return f"{ticket_id}:{recipient.strip().lower()}"


def reply_address_for(ticket, recipient: str) -> str:
    return reply_address.make(
        mailbox=support_mailbox(ticket), tag=TAG, number=ticket.pk, salt=SALT, value=_value(ticket.pk, recipient)
    )


def ticket_of_address(address: str, sender: str) -> int | None:
    """The ticket a reply address names, when its token is ours for this sender (the recipient we
    gave it to); None otherwise."""
    parsed = reply_address.parse(address)
    if parsed is None or parsed.tag != TAG:
        return None
    ok = reply_address.verify(parsed, salt=SALT, value=_value(parsed.number, sender))
    return parsed.number if ok else None


def ticket_of_email(key: str) -> int | None:
    """The ticket an outbox email of ours was about, by its key ("ticket:<pk>:..."); None otherwise."""
    kind, _, rest = key.partition(":")
    return as_id(rest.partition(":")[0]) if kind == "ticket" else None


def root_id(ticket) -> str:
    """The Message-ID of the ticket's first email (the filer's receipt): what every later one answers."""
    # In UTC whatever zone the moment was given in (staff type a caller's in the contract's): every
    # email of the ticket names the same first one.
    return f"<ticket-{ticket.pk}.{ticket.filed_at.astimezone(UTC):%Y%m%d%H%M%S}@{settings.MESSAGE_ID_DOMAIN}>"


def headers(ticket, recipient: str) -> dict:
    """Reply-To and threading headers of a ticket email to `recipient`."""
    root = root_id(ticket)
    refs = [ticket.email_origin, root] if ticket.email_origin else [root]
    return {"Reply-To": reply_address_for(ticket, recipient), "In-Reply-To": root, "References": " ".join(refs)}


def root_headers(ticket, recipient: str) -> dict:
    """The filer's receipt, the thread's root: answering the customer's own message if there is one."""
    out = {"Reply-To": reply_address_for(ticket, recipient)}
    if ticket.email_origin:
        out |= {"In-Reply-To": ticket.email_origin, "References": ticket.email_origin}
    return out
