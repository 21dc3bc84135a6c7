"""The one email outbox: every notification of the product goes through here.

- `outbox_enqueue` writes a row in the caller's transaction (a unique key makes a second enqueue
  a no-op), with its Message-ID fixed now and its context frozen now (portal.snapshot: what the
  email will say is decided with the change that causes it); after commit a worker is asked to send.
- `outbox_claim` takes due rows with a lease (skip_locked on PostgreSQL; a conditional update with
  a claim token everywhere, so two senders never hold one row), `outbox_deliver` renders each row
  from its frozen context (once: the rendering is stored with the row's lease) and sends it.
- A row whose sender died is taken again when its lease runs out; a sent row never is. The lease
  is renewed row by row as a batch is sent, so a slow batch never outlives it.
- Failures back off in the database (next_attempt_at), swept every minute: no long countdowns.
  A row that cannot be rendered fails like one that cannot be sent, and says why.
"""

from __future__ import annotations

import logging
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection, transaction
from django.db.models import F, Q
from django.template import Context
from django.template.loader import get_template, render_to_string
from django.utils import timezone

from .models import OutboxAttempt, OutboxMessage, new_message_id
from .snapshot import freeze, thaw

log = logging.getLogger(__name__)
Status = OutboxMessage.Status


@dataclass(frozen=True)
class Email:
    key: str
    to: str
    template: str
    context: dict = field(default_factory=dict)


def _render_plain(name: str, ctx: dict) -> str:
    # Subjects and text bodies are not HTML: "R&D" must stay "R&D", not "R&amp;D".
    return get_template(name).template.render(Context(ctx, autoescape=False))


def render(template: str, context: dict) -> tuple[str, str, str]:
    """Subject, text and HTML of templates/email/<template>/{subject.txt,body.txt,body.html}."""
    ctx = {"base_url": settings.PORTAL_BASE_URL, **context}
    subject = " ".join(_render_plain(f"email/{template}/subject.txt", ctx).split())
    text = _render_plain(f"email/{template}/body.txt", ctx).strip() + "\n"
    html = render_to_string(f"email/{template}/body.html", ctx)
    return subject, text, html


def _row(email: Email, now: datetime, memo: dict) -> OutboxMessage:
    return OutboxMessage(
        key=email.key, to=email.to, template=email.template, context=freeze(email.context, memo), next_attempt_at=now
    )  # fmt: skip


def outbox_render(msg: OutboxMessage) -> tuple[str, str, str]:
    """Subject, text and HTML of a row: as rendered when it was first sent, else from its context."""
    if msg.body_text:
        return msg.subject, msg.body_text, msg.body_html
    subject, text, html = render(msg.template, thaw(msg.context))
    return subject[:300], text, html


def outbox_enqueue(*, email: Email, now: datetime | None = None) -> bool:
    """Write one notification; False if its key was already written (nothing changes then)."""
    return outbox_enqueue_many(emails=[email], now=now) == 1


def outbox_enqueue_many(*, emails: list[Email], now: datetime | None = None) -> int:
    """Write many notifications in one insert; keys already present are skipped. Returns how many
    keys were new. Call it inside the transaction of the change that causes the emails."""
    if not emails:
        return 0
    now = now or timezone.now()
    keys = {e.key for e in emails}
    existing = set(OutboxMessage.objects.filter(key__in=keys).values_list("key", flat=True))
    fresh = {e.key: e for e in emails if e.key not in existing}  # a key twice in one call counts once
    if not fresh:
        return 0
    memo: dict = {}  # an object several emails mention is frozen once
    if connection.vendor == "postgresql" and len(fresh) >= COPY_FROM:
        _copy_rows([(e.key, new_message_id(), e.template, e.to, freeze(e.context, memo)) for e in fresh.values()], now)
    else:
        # ignore_conflicts: a concurrent writer of the same key wins quietly; the unique key decides.
        OutboxMessage.objects.bulk_create([_row(e, now, memo) for e in fresh.values()], ignore_conflicts=True)
    new_keys = list(fresh)
    transaction.on_commit(lambda: _dispatch(new_keys))
    return len(fresh)


# From this many rows on PostgreSQL, an insert goes through COPY (a sweep's batch: a thousand or more).
COPY_FROM = 200
_COPIED = ("key", "message_id", "template", "to", "context", "next_attempt_at")


def _copy_rows(rows: list[tuple[str, str, str, str, str]], now: datetime) -> None:
    """Insert many rows as bulk_create(ignore_conflicts=True) would, faster: COPY into a temporary
    table, then one INSERT ... SELECT ... ON CONFLICT DO NOTHING. Building a statement with a
    parameter per column and row cost more than the sweep's own work (bench/RESULTS.md). `rows`
    are (key, message_id, template, to, context); the other columns take the model's defaults, as
    an unsaved row has them. The COPY is shown to the connection's execute wrappers and query log
    like any query, so counts stay honest."""
    table, opts = OutboxMessage._meta.db_table, OutboxMessage._meta
    copied = [opts.get_field(name) for name in _COPIED]
    rest = [f for f in opts.concrete_fields if f not in copied and not f.primary_key]
    prototype = OutboxMessage(created_at=now)  # auto_now_add: the moment of writing, as bulk_create sets it
    defaults = [f.get_db_prep_save(getattr(prototype, f.attname), connection) for f in rest]
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS outbox_incoming ({', '.join(q(f.column) + ' text' for f in copied)})"
            " ON COMMIT DELETE ROWS"
        )
        copy_sql = f"COPY outbox_incoming ({', '.join(q(f.column) for f in copied)}) FROM STDIN"

        def copy(sql, params, many, context):
            with cursor.cursor.copy(sql) as out:
                at = now.isoformat()
                for row in rows:
                    out.write_row((*row, at))

        _with_wrappers(copy, copy_sql, cursor)
        casts = {f.column: f.db_type(connection).split("(")[0] for f in copied}
        cursor.execute(
            f"INSERT INTO {q(table)} ({', '.join(q(f.column) for f in copied + rest)}) "
            f"SELECT {', '.join(f'{q(f.column)}::{casts[f.column]}' for f in copied)}, "
            f"{', '.join(['%s'] * len(rest))} FROM outbox_incoming ON CONFLICT DO NOTHING",
            defaults,
        )
        cursor.execute("DELETE FROM outbox_incoming")  # a second call in this transaction starts empty


def _with_wrappers(run, sql: str, cursor) -> None:
    """Run `run` as Django runs a query: through the execute wrappers, and into the query log."""
    executor = run
    for wrapper in reversed(connection.execute_wrappers):
        executor = partial(wrapper, executor)
    started = time.monotonic()
    executor(sql, None, False, {"connection": connection, "cursor": cursor})
    if connection.queries_logged:
        connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})


def _dispatch(keys: list[str]) -> None:
    from .tasks import outbox_send, outbox_sweep

    try:
        if len(keys) == 1:
            outbox_send.delay(keys[0])
        else:
            outbox_sweep.delay()
    except Exception:  # the broker is down: the periodic sweep will find the rows
        log.warning("outbox: could not hand %d message(s) to a worker; the sweep will", len(keys), exc_info=True)


def _due(now: datetime) -> Q:
    return Q(status=Status.PENDING, next_attempt_at__lte=now) | Q(status=Status.SENDING, lease_until__lt=now)


def outbox_claim(*, now: datetime, limit: int, keys: list[str] | None = None) -> list[OutboxMessage]:
    """Lease up to `limit` due rows to this caller. Safe against any number of concurrent callers."""
    token = uuid.uuid4()
    with transaction.atomic():
        candidates = OutboxMessage.objects.select_for_update(skip_locked=True).filter(_due(now))
        if keys is not None:
            candidates = candidates.filter(key__in=keys)
        ids = list(candidates.order_by("next_attempt_at").values_list("id", flat=True)[:limit])
        if not ids:
            return []
        # Conditional: only rows still due are taken (SQLite has no row locks; this is the guard).
        OutboxMessage.objects.filter(_due(now), id__in=ids).update(
            status=Status.SENDING, lease_until=now + settings.OUTBOX_LEASE,
            attempts=F("attempts") + 1, claim_token=token,
        )  # fmt: skip
    return list(OutboxMessage.objects.filter(claim_token=token, status=Status.SENDING).order_by("id"))


def backoff(attempts: int) -> timedelta:
    """1, 2, 4, ... minutes, at most an hour."""
    return timedelta(minutes=min(60, 2 ** max(0, attempts - 1)))


def outbox_deliver(*, messages: list[OutboxMessage], now_fn=timezone.now) -> int:
    """Send claimed rows; record every attempt. Returns how many were sent."""
    if not messages:
        return 0
    sent = 0
    worker = socket.gethostname()
    connection = get_connection()
    try:
        for msg in messages:
            started = now_fn()
            try:
                rendered = None if msg.body_text else outbox_render(msg)
            except Exception as exc:  # noqa: BLE001 - a template or context that fails is this row's failure
                _failed(msg, started, now_fn(), exc, worker)
                continue
            if not _still_ours(msg, started, rendered):
                continue  # its lease ran out while earlier rows of the batch were sent; another sender has it
            if rendered:
                msg.subject, msg.body_text, msg.body_html = rendered
            mail = EmailMultiAlternatives(
                subject=msg.subject, body=msg.body_text, from_email=settings.DEFAULT_FROM_EMAIL,
                to=[msg.to], headers={"Message-ID": msg.message_id}, connection=connection,
            )  # fmt: skip
            if msg.body_html:
                mail.attach_alternative(msg.body_html, "text/html")
            try:
                mail.send()
            except Exception as exc:  # noqa: BLE001 - any failure of the transport is retried
                _failed(msg, started, now_fn(), exc, worker)
                continue
            finished = now_fn()
            with transaction.atomic():
                OutboxMessage.objects.filter(id=msg.id, claim_token=msg.claim_token).update(
                    status=Status.SENT, sent_at=finished, lease_until=None, last_error=""
                )
                OutboxAttempt.objects.create(
                    message=msg, started_at=started, finished_at=finished, ok=True, worker=worker
                )
            sent += 1
    finally:
        try:
            connection.close()
        except Exception:  # noqa: BLE001
            log.debug("outbox: closing the mail connection failed", exc_info=True)
    return sent


def _still_ours(msg: OutboxMessage, now: datetime, rendered: tuple[str, str, str] | None = None) -> bool:
    """Renew the row's lease just before sending it, if no other sender has claimed it since, and
    store its rendering if it was rendered now (a retry sends the same text). A batch is claimed
    with one lease, but its rows are sent one after another: behind a slow SMTP server the last
    rows' lease runs out before their turn, a sweep claims them again, and both senders would send
    them (the crash drill tests/drills/test_worker_kills.py found it)."""
    fields = {"lease_until": now + settings.OUTBOX_LEASE}
    if rendered:
        fields.update(zip(("subject", "body_text", "body_html"), rendered, strict=True))
    return (
        OutboxMessage.objects.filter(id=msg.id, claim_token=msg.claim_token, status=Status.SENDING).update(**fields)
        == 1
    )


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


def outbox_send_due(*, batch: int | None = None, max_batches: int = 50) -> int:
    """Send everything due now, batch by batch (the sweep)."""
    total = 0
    for _ in range(max_batches):
        claimed = outbox_claim(now=timezone.now(), limit=batch or settings.OUTBOX_BATCH)
        if not claimed:
            break
        total += outbox_deliver(messages=claimed)
    return total


def outbox_retry_now(*, ids: list[int]) -> int:
    """Staff: put failed rows back in the queue."""
    return OutboxMessage.objects.filter(id__in=ids, status=Status.FAILED).update(
        status=Status.PENDING, next_attempt_at=timezone.now(), attempts=0
    )
