"""The one ingest service: store the raw message once, with its effect, in one transaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError, DataError, IntegrityError, transaction
from django.utils import timezone

from portal.core import batch
from portal.core.bounces import Outcome as bounce_outcome
from portal.core.bounces import bounce_receive

from .. import mail_thread, security_mail
from ..models import InboundMessage, Ticket
from . import group, parse, route

log = logging.getLogger(__name__)
DUPLICATE = "duplicate"
EFFECT = ["outcome", "reason", "ticket", "ticket_message", "organisation"]  # what routing sets on the row


@dataclass(frozen=True)
class Outcome:
    """What became of a message: an InboundMessage outcome, or "duplicate" (stored before)."""

    kind: str
    inbound_id: int | None  # None in the poller's group: its row is inserted with the group's
    ticket_id: int | None = None
    reason: str = ""

    @property
    def taken(self) -> bool:
        """Every outcome is a message we keep or knowingly refused: the caller may let it go."""
        return True


def _outcome(row: InboundMessage, kind: str | None = None) -> Outcome:
    return Outcome(kind or row.outcome, row.pk, row.ticket_id, row.reason)


def _head(raw: bytes) -> bytes:
    """The header of a message refused for its size: what staff need to see who sent what."""
    end = raw.find(b"\r\n\r\n")
    end = raw.find(b"\n\n") if end < 0 else end
    return raw[: min(end if end >= 0 else 65536, 65536)]


def _existing(digest: str, env: parse.Envelope | None) -> InboundMessage | None:
    row = InboundMessage.objects.filter(sha256=digest).first()
    if row is None and env is not None and env.message_id:
        row = InboundMessage.objects.filter(sender=env.sender, message_id=env.message_id).first()
    return row


def _bounce(row: InboundMessage, msg, env: parse.Envelope) -> bool:
    """A bounce of one of our emails, or anything else sent to our bounce address (portal.core.bounces:
    a failure marks the email and its address for staff): taken as automatic, never filed or answered."""
    bounce = bounce_receive(message=msg, recipients=env.recipients, now=row.received_at)
    if bounce is None:
        return False
    about = f" of {bounce.row.key}" if bounce.row is not None else ""
    if _about_report(bounce.row):
        row.security = True  # the copy it returns tells the report: for security staff only
    row.outcome = InboundMessage.Outcome.AUTOMATIC
    row.reason = f"Bounce ({bounce.outcome}{' ' + bounce.status if bounce.status else ''}){about}"[:300]
    ticket = _ticket_of(bounce.row)
    if ticket is not None and bounce.outcome == bounce_outcome.OTHER:  # an out-of-office: on its ticket
        route.automatic_on_ticket(row, env, ticket, row.reason)
    elif ticket is not None:
        row.ticket = ticket  # a delivery failure: the ticket's staff find it among its messages
    return True


def _about_report(email) -> bool:
    """Whether an email of ours was about a vulnerability report (the bug bounty's own, or one about
    a report's ticket): what only security staff read (the outbox admin's SECURITY_EMAILS)."""
    if email is None:
        return False
    if email.key.startswith("security-report:") or email.template.startswith("security_report"):
        return True
    pk = mail_thread.ticket_of_email(email.key)
    return pk is not None and Ticket.objects.filter(pk=pk, kind=Ticket.Kind.SECURITY).exists()


def _ticket_of(email) -> Ticket | None:
    """The support ticket an email of ours was about, or None."""
    pk = mail_thread.ticket_of_email(email.key) if email is not None else None
    return Ticket.objects.filter(pk=pk, kind=Ticket.Kind.SUPPORT).first() if pk is not None else None


def ingest(raw: bytes, *, received_at: datetime, source: str, source_ref: str = "") -> Outcome:
    """Take one RFC 5322 message. Returns its Outcome; raises only when it could not be stored
    (the database is unreachable): the caller keeps the message and tries again later (the pipe
    exits 75, the poller leaves it in the mailbox). `received_at` is when our side first received
    it: a new ticket's clock starts there, whenever it is filed. Inside tickets.inbound.group (the
    poller's), the message is a savepoint of the group's transaction: committed with the group."""
    with group.one() as g:
        return _ingest(g, raw, received_at=received_at, source=source, source_ref=source_ref)


def _ingest(g: group.Group, raw: bytes, *, received_at: datetime, source: str, source_ref: str) -> Outcome:
    digest = group.digest_of(raw)
    found = g.stored(digest)
    if found is not None:
        return _outcome(found, DUPLICATE)
    too_big = len(raw) > settings.INBOUND_MAX_BYTES
    stored = _head(raw) if too_big else raw
    try:
        msg, env = g.parsed(digest, stored)
    except Exception:  # noqa: BLE001 - unreadable as a message: kept, held for staff
        log.exception("inbound: a message could not be parsed; held for staff")
        msg, env = None, parse.Envelope("", "?", [], "", "", "", "")
    twin = g.taken(digest, env)
    if twin is not None:  # the group's own twin, stored before it (its row inserted with the group's)
        return _outcome(twin, DUPLICATE)
    row = InboundMessage(
        sha256=digest, sender=env.sender, message_id=env.message_id,
        return_path=env.return_path if env.return_path != "?" else "", recipients=", ".join(env.recipients)[:5000],
        subject=env.subject, received_at=received_at, source=source, source_ref=parse.safe_text(source_ref)[:300], size=len(raw),
        raw=stored, created_at=timezone.now(), outcome=InboundMessage.Outcome.HELD,
        security=any(security_mail.is_security_address(a) for a in env.recipients),
    )  # fmt: skip
    try:
        with batch.change(), g.savepoint():
            if msg is None:
                row.reason = "It could not be read as an email."
            elif not _bounce(row, msg, env):
                route.route(row, msg, env, too_big=too_big)
            # Stored with its effect, in the effect's savepoint: a concurrent twin fails on the unique
            # keys here, and its effect is rolled back with it. In the poller's group, inserted with
            # the group's rows before its commit: a concurrent twin fails the group's transaction,
            # and the poller takes its messages one by one.
            if row.pk is not None:
                row.save(update_fields=EFFECT)  # stored by routing (an event names it): not its bytes again
            else:
                batch.save_new(row)
        g.counted(row)
        return _outcome(row)
    except group.Undone:
        raise  # no savepoint to roll back to: the group is rolled back and taken again, with them
    except IntegrityError:
        twin = _existing(digest, env)
        if twin is not None:
            return _outcome(twin, DUPLICATE)
        error = "IntegrityError"
    except DataError as exc:  # a value the database refuses: this message's fault, not the database's
        log.exception("inbound: storing %s failed; held for staff", env.message_id or digest)
        error = type(exc).__name__
    except DatabaseError:
        raise  # could not be stored: the caller keeps the message
    except Exception as exc:  # noqa: BLE001 - whatever the message did to us, it is kept for staff
        log.exception("inbound: processing %s failed; held for staff", env.message_id or digest)
        error = type(exc).__name__
    # Its effect failed: the message is kept, held for staff, without any effect.
    row.pk, row.ticket, row.ticket_message, row.organisation = None, None, None, None
    row.outcome, row.reason = InboundMessage.Outcome.HELD, f"It could not be processed ({error}); see the log."
    try:
        with batch.change(), transaction.atomic():
            batch.save_new(row)
        g.counted(row)
    except IntegrityError:
        twin = _existing(digest, env)
        if twin is None:
            raise
        return _outcome(twin, DUPLICATE)
    return _outcome(row)
