"""The one email outbox, the sending side (the worker's): claim due rows, render, send, record.

- `outbox_claim` takes due rows with a lease (skip_locked on PostgreSQL; a conditional update with
  a claim token everywhere, so two senders never hold one row), `outbox_deliver` renders each row
  from its frozen context (once: the batch's renderings are stored with its renewed lease, in one
  statement, before its first row is sent) and sends it, marking each row sent as soon as the SMTP
  server has accepted it.
- A row whose sender died is taken again when its lease runs out; a sent row never is. The lease
  of the rows left is renewed as a batch is sent, so a slow batch never outlives it.
- Failures back off in the database (next_attempt_at), swept every minute: no long countdowns.
  A row that cannot be rendered fails like one that cannot be sent, and says why.
- Every email is automatic mail (RFC 3834 `Auto-Submitted: auto-generated`, unless its row says
  `auto-replied`: a receipt answering a person's own message), dated in UTC (`+0000`) when it is
  sent, with the envelope sender naming its row (VERP, portal.core.bounces), its attachments
  rendered from its context (portal.core.email_parts) and a DKIM signature when a key is
  configured (portal.core.dkim_signing).
"""

from __future__ import annotations

import logging
import socket
from collections import deque
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import cache
from pathlib import Path

from django.conf import settings
from django.core.mail import get_connection
from django.db import connection, transaction
from django.db.models import Q
from django.template import Context, engines
from django.template.loader import get_template, render_to_string
from django.urls import reverse
from django.utils import timezone

from portal.core import leases
from portal.core.bounces import verp_address
from portal.core.dkim_signing import SignedEmail
from portal.core.email_parts import render_attachments
from portal.core.leases import backoff, lease_claim, lease_drain, lease_renew_many
from portal.core.snapshot import thaw
from portal.models import OutboxAttempt, OutboxMessage, User

log = logging.getLogger(__name__)
Status = OutboxMessage.Status


def _render_plain(name: str, ctx: dict) -> str:
    # Subjects and text bodies are not HTML: "R&D" must stay "R&D", not "R&amp;D".
    return get_template(name).template.render(Context(ctx, autoescape=False))


@cache
def email_templates() -> list[str]:
    """The names of the email templates the code has (templates/email/<name>/subject.txt), sorted."""
    names = set()
    for directory in engines["django"].engine.dirs:
        folder = Path(directory) / "email"
        if folder.is_dir():
            names |= {p.name for p in folder.iterdir() if (p / "subject.txt").is_file()}
    return sorted(names)


def render(template: str, context: dict) -> tuple[str, str, str]:
    """Subject, text and HTML of templates/email/<template>/{subject.txt,body.txt,body.html}."""
    ctx = {"base_url": settings.PORTAL_BASE_URL, **context}
    subject = " ".join(_render_plain(f"email/{template}/subject.txt", ctx).split())
    text = _render_plain(f"email/{template}/body.txt", ctx).strip() + "\n"
    if ctx.get("manage_url"):  # to a status page subscriber (contracts.subscribers): no account
        text += f"\n-- \nUnsubscribe or choose your services: {ctx['manage_url']}\n"
    elif ctx.get("unsubscribe_url"):  # an optional email (portal.core.notify_rules): how to stop it
        text += (
            f"\n-- \nStop emails of this kind ({ctx['unsubscribe_label']}): {ctx['unsubscribe_url']}\n"
            f"All your email choices: {ctx['base_url']}{reverse('notification-preferences')}\n"
        )
    html = render_to_string(f"email/{template}/body.html", ctx)
    return subject, text, html


def outbox_render(msg: OutboxMessage) -> tuple[str, str, str]:
    """Subject, text and HTML of a row: as rendered when it was first sent, else from its context."""
    if msg.body_text:
        return msg.subject, msg.body_text, msg.body_html
    subject, text, html = render(msg.template, thaw(msg.context))
    return subject[:300], text, html


def _due(now: datetime) -> Q:
    return Q(status=Status.PENDING, next_attempt_at__lte=now) | Q(status=Status.SENDING, lease_until__lt=now)


def outbox_claim(*, now: datetime, limit: int, keys: list[str] | None = None) -> list[OutboxMessage]:
    """Lease up to `limit` due rows to this caller. Safe against any number of concurrent callers."""
    return lease_claim(
        OutboxMessage, due=_due(now), now=now, limit=limit, lease=settings.OUTBOX_LEASE,
        filters=Q(key__in=keys) if keys is not None else None,
    )  # fmt: skip


WITHDRAWN = "Not sent: the recipient was deactivated."


def _withdrawn(messages: list[OutboxMessage]) -> list[OutboxMessage]:
    """Give up the rows to a deactivated person (portal.core.outbox.outbox_withdraw_for_user gives
    them up when they are deactivated; this catches one put back in the queue by hand since, or
    written by a path that did not know): one query a batch. Returns the others."""
    gone = set(User.objects.filter(email__in={m.to for m in messages}, is_active=False).values_list("email", flat=True))
    if not gone:
        return messages
    theirs = [m for m in messages if m.to in gone]
    OutboxMessage.objects.filter(id__in=[m.id for m in theirs], claim_token__in={m.claim_token for m in theirs}).update(
        status=Status.FAILED, last_error=WITHDRAWN, lease_until=None, claim_token=None
    )
    return [m for m in messages if m.to not in gone]


def outbox_deliver(*, messages: list[OutboxMessage], now_fn=timezone.now) -> int:
    """Send claimed rows; record every attempt. Returns how many were sent."""
    messages = _withdrawn(messages) if messages else messages
    if not messages:
        return 0
    sent = 0
    worker = socket.gethostname()
    queue = _prepare(messages, now_fn, worker)
    smtp = get_connection()
    _open(smtp)
    try:
        while queue:
            started = now_fn()
            if queue[0][0].lease_until - started < RENEWED_LEASE * settings.OUTBOX_LEASE:
                queue = _still_ours(queue, started)
                continue
            msg, attachments = queue.popleft()
            mail = SignedEmail(
                subject=msg.subject, body=msg.body_text, from_email=verp_address(msg.pk),
                to=[msg.to], headers=_headers(msg, started), connection=smtp,
            )  # fmt: skip
            if msg.body_html:
                mail.attach_alternative(msg.body_html, "text/html")
            for filename, content, mimetype in attachments:
                mail.attach(filename, content, mimetype)
            try:
                mail.send()
            except Exception as exc:  # noqa: BLE001 - any failure of the transport is retried
                _failed(msg, started, now_fn(), exc, worker)
                _reopen(smtp)  # the server may have dropped it: the next row gets a fresh one
                continue
            _sent(msg, started, now_fn(), worker)
            sent += 1
    finally:
        try:
            smtp.close()
        except Exception:  # noqa: BLE001
            log.debug("outbox: closing the mail connection failed", exc_info=True)
    return sent


# A row is sent only with at least this much of a lease ahead of it (a fraction of OUTBOX_LEASE).
RENEWED_LEASE = 0.9
RENDERED = ("subject", "body_text", "body_html")
Ready = deque[tuple[OutboxMessage, list[tuple[str, bytes, str]]]]


def _prepare(messages: list[OutboxMessage], now_fn, worker: str) -> Ready:
    """Render the rows not rendered yet (from their frozen context) and their attachments, then
    renew the batch's lease storing every row's rendering (a retry sends the same text): one
    statement for the batch. A row that cannot be rendered fails like one that cannot be sent.
    Returns the rows still this sender's, with their attachments."""
    rendered = []
    for msg in messages:
        started = now_fn()
        try:
            if not msg.body_text:
                msg.subject, msg.body_text, msg.body_html = outbox_render(msg)
            rendered.append((msg, _attachments(msg)))
        except Exception as exc:  # noqa: BLE001 - a template or context that fails is this row's failure
            _failed(msg, started, now_fn(), exc, worker)
    return _still_ours(deque(rendered), now_fn(), fields=RENDERED)


def _still_ours(queue: Ready, now: datetime, fields: tuple[str, ...] = ()) -> Ready:
    """Renew the lease of the rows left to send, if no other sender has claimed them since. A
    batch is claimed with one lease, but its rows are sent one after another: behind a slow SMTP
    server the last rows' lease runs out before their turn, a sweep claims them again, and both
    senders would send them (the crash drill tests/drills/test_worker_kills.py found it). So no
    row is sent with less than RENEWED_LEASE of a lease ahead of it: a batch sent at the usual
    pace is renewed once, before its first row."""
    ours = lease_renew_many([msg for msg, _ in queue], now=now, lease=settings.OUTBOX_LEASE, fields=fields)
    ids = {msg.id for msg in ours}
    return deque(item for item in queue if item[0].id in ids)


def _sent(msg: OutboxMessage, started: datetime, finished: datetime, worker: str) -> None:
    """Mark the row sent (if it is still this sender's) and record the attempt, in one transaction,
    right after the server accepted it: a sender killed now sends this row again, and no other.
    On PostgreSQL one statement (a data-modifying WITH) instead of a transaction of two."""
    if connection.vendor != "postgresql":
        with transaction.atomic():
            OutboxMessage.objects.filter(id=msg.id, claim_token=msg.claim_token).update(
                status=Status.SENT, sent_at=finished, lease_until=None, last_error=""
            )
            OutboxAttempt.objects.create(message=msg, started_at=started, finished_at=finished, ok=True, worker=worker)
        return
    with connection.cursor() as cursor:
        cursor.execute(_sent_sql(), [Status.SENT, finished, msg.id, msg.claim_token, msg.id, started, finished, worker])


@cache
def _sent_sql() -> str:
    q, rows, attempts = connection.ops.quote_name, OutboxMessage._meta, OutboxAttempt._meta

    def col(opts, name):
        return q(opts.get_field(name).column)

    return (
        f"WITH sent AS (UPDATE {q(rows.db_table)} SET {col(rows, 'status')} = %s, "
        f"{col(rows, 'sent_at')} = %s, {col(rows, 'lease_until')} = NULL, {col(rows, 'last_error')} = '' "
        f"WHERE {col(rows, 'id')} = %s AND {col(rows, 'claim_token')} = %s) "
        f"INSERT INTO {q(attempts.db_table)} ({col(attempts, 'message')}, {col(attempts, 'started_at')}, "
        f"{col(attempts, 'finished_at')}, {col(attempts, 'ok')}, {col(attempts, 'error')}, {col(attempts, 'worker')}) "
        "VALUES (%s, %s, %s, true, '', %s)"
    )


def _open(smtp) -> None:
    """One SMTP connection for the whole batch (unopened, Django's backend connects, greets and
    quits for every message: a third of a message's time at a local sink, bench/incident_fanout.py).
    A server that does not answer is each row's failure, as before: the send tries again and fails."""
    try:
        smtp.open()
    except Exception:  # noqa: BLE001 - each row's send will report it
        log.debug("outbox: opening the mail connection failed", exc_info=True)


def _reopen(smtp) -> None:
    try:
        smtp.close()
    except Exception:  # noqa: BLE001
        log.debug("outbox: closing the mail connection failed", exc_info=True)
    _open(smtp)


def _headers(msg: OutboxMessage, now: datetime) -> dict[str, str]:
    """Automatic mail (RFC 3834: an out-of-office must not answer it) unless the row says otherwise
    (`Auto-Submitted: auto-replied`), the
    row's own headers (unsubscribe, reply address, threading), From as configured (the envelope
    sender is the row's return path), the moment of sending in UTC and the row's Message-ID."""
    return {
        "Auto-Submitted": "auto-generated",
        **(msg.headers or {}),
        "From": settings.DEFAULT_FROM_EMAIL,
        "Date": format_datetime(now.astimezone(UTC)),
        "Message-ID": msg.message_id,
    }


def _attachments(msg: OutboxMessage) -> list[tuple[str, bytes, str]]:
    if not msg.attachments:
        return []
    return render_attachments(msg.attachments, thaw(msg.context), msg.created_at)


def _failed(msg: OutboxMessage, started: datetime, finished: datetime, exc: Exception, worker: str) -> None:
    error = f"{type(exc).__name__}: {exc}"[:2000]
    gave_up = msg.attempts >= settings.OUTBOX_MAX_ATTEMPTS
    log.warning(
        "outbox: sending %s failed (attempt %d%s): %s", msg.key, msg.attempts, ", giving up" if gave_up else "", error
    )
    with transaction.atomic():
        OutboxMessage.objects.filter(id=msg.id, claim_token=msg.claim_token).update(
            status=Status.FAILED if gave_up else Status.PENDING,
            next_attempt_at=finished + backoff(msg.attempts), lease_until=None, last_error=error,
        )  # fmt: skip
        OutboxAttempt.objects.create(
            message=msg, started_at=started, finished_at=finished, ok=False, error=error, worker=worker
        )


def outbox_send_key(*, key: str) -> int:
    return outbox_deliver(messages=outbox_claim(now=timezone.now(), limit=1, keys=[key]))


SWEEP_BATCHES = 50  # a sweep's batches at most: it ends, and the next sweep goes on
# A sweep's time at most (checked between batches): a backlog never holds a worker process for
# longer, so other tasks get their turn. 40 s: under beat's minute, with a batch's time to spare.
SWEEP_BUDGET = 40.0


def outbox_send_due(
    *, batch: int | None = None, max_batches: int = SWEEP_BATCHES, budget: float | None = SWEEP_BUDGET, on_more=None
) -> int:
    """Send everything due now, batch by batch (the sweep), for at most `budget` seconds; stopped
    with rows perhaps left, `on_more()` (portal.core.leases.lease_drain)."""
    return lease_drain(
        lambda now: outbox_claim(now=now, limit=batch or settings.OUTBOX_BATCH),
        lambda claimed: outbox_deliver(messages=claimed),
        rounds=max_batches, deadline=None if budget is None else leases.clock() + budget, on_more=on_more,
    )  # fmt: skip


def outbox_retry_now(*, ids: list[int]) -> int:
    """Staff: put failed rows back in the queue."""
    return OutboxMessage.objects.filter(id__in=ids, status=Status.FAILED).update(
        status=Status.PENDING, next_attempt_at=timezone.now(), attempts=0
    )
