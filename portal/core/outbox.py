"""The one email outbox, the writing side: every notification of the product is written here.

- `outbox_enqueue` writes a row in the caller's transaction (a unique key makes a second enqueue
  a no-op), with its Message-ID fixed now and its context frozen now (portal.core.snapshot: what the
  email will say is decided with the change that causes it); after commit a worker is asked to send
  it (portal.core.tasks). The sending side is portal.core.delivery.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.constants import OnConflict
from django.utils import timezone

from portal.core import batch
from portal.core.delivery import SWEEP_BATCHES, WITHDRAWN
from portal.core.snapshot import freeze
from portal.core.tasks import outbox_send, outbox_sweep_dispatch
from portal.models import OutboxMessage, User, new_message_id

log = logging.getLogger(__name__)
Status = OutboxMessage.Status


@dataclass(frozen=True)
class Email:
    key: str
    to: str
    template: str
    context: dict = field(default_factory=dict)
    # Headers of its own (notify_rules: List-Unsubscribe of an optional email; a report's Reply-To,
    # In-Reply-To, References; AUTO_REPLIED for a receipt answering a person's own message);
    # Message-ID, Date and From are the outbox's.
    headers: dict = field(default_factory=dict)
    # Fixed by a caller whose later emails refer to this one (threading); a new one otherwise.
    message_id: str = ""
    # Names of attachments rendered at each send from the context (portal.core.email_parts).
    attachments: tuple[str, ...] = ()


# RFC 3834: an email answering a person's own message (the receipt of a ticket they emailed) says
# so; every other email is `auto-generated` (portal.core.delivery).
AUTO_REPLIED = {"Auto-Submitted": "auto-replied"}


def _row(email: Email, now: datetime, memo: dict) -> OutboxMessage:
    return OutboxMessage(
        key=email.key, to=email.to, template=email.template, context=freeze(email.context, memo), next_attempt_at=now,
        message_id=email.message_id or new_message_id(), headers=email.headers, attachments=list(email.attachments),
    )  # fmt: skip


def outbox_enqueue(*, email: Email, now: datetime | None = None) -> bool:
    """Write one notification; False if its key was already written (nothing changes then)."""
    return outbox_enqueue_many(emails=[email], now=now) == 1


def outbox_enqueue_many(*, emails: list[Email], now: datetime | None = None, known_new: bool = False) -> int:
    """Write many notifications in one insert; keys already present are skipped. Returns how many
    keys were new. Call it inside the transaction of the change that causes the emails.
    `known_new`: the caller knows no key was written before (they name a row it has just inserted):
    inside a portal.core.batch the rows are inserted with the batch's others (the unique key still
    decides), and all count as new."""
    if not emails:
        return 0
    now = now or timezone.now()
    fresh = {e.key: e for e in emails}  # a key twice in one call counts once
    memo: dict = {}  # an object several emails mention is frozen once
    if known_new and batch.insert_later(_insert_later, [_row(e, now, memo) for e in fresh.values()]):
        batch.after_commit(_dispatch, list(fresh))
        return len(fresh)
    if connection.vendor == "postgresql" and len(fresh) >= COPY_FROM:
        fresh = _not_written(fresh)
        if fresh:
            _copy_rows(
                [
                    (
                        e.key,
                        e.message_id or new_message_id(),
                        e.template,
                        e.to,
                        freeze(e.context, memo),
                        json.dumps(e.headers),
                        json.dumps(list(e.attachments)),
                        now,
                    )
                    for e in fresh.values()
                ],
                now,
            )
        new_keys = list(fresh)
    elif connection.features.can_return_rows_from_bulk_insert:
        new_keys = _insert_new([_row(e, now, memo) for e in fresh.values()])
    else:
        fresh = _not_written(fresh)
        # ignore_conflicts: a concurrent writer of the same key wins quietly; the unique key decides.
        OutboxMessage.objects.bulk_create([_row(e, now, memo) for e in fresh.values()], ignore_conflicts=True)
        new_keys = list(fresh)
    if new_keys and not batch.after_commit(_dispatch, new_keys):
        transaction.on_commit(lambda: _dispatch(new_keys))
    return len(new_keys)


def outbox_withdraw_for_user(*, user_id: int) -> int:
    """A deactivated person is never emailed: the emails written for them (keyed ...:user:<pk>, or
    to their address, whatever the key) and not sent yet, a retry's included and one whose sender
    died mid-send (its lease run out), are given up. Returns how many. The sender checks again
    before sending (portal.core.delivery): a row put back in the queue by hand is not sent either."""
    address = User.objects.filter(pk=user_id).values_list("email", flat=True).first()
    waiting = Q(status=Status.PENDING) | Q(status=Status.SENDING, lease_until__lt=timezone.now())
    theirs = Q(key__endswith=f":user:{user_id}")
    if address:
        theirs |= Q(to=address)
    return OutboxMessage.objects.filter(waiting, theirs).update(
        status=Status.FAILED, last_error=WITHDRAWN, lease_until=None, claim_token=None
    )


def _not_written(emails: dict[str, Email]) -> dict[str, Email]:
    """The emails whose keys are not written yet. On PostgreSQL the keys go as one array parameter
    (`= ANY`), not one parameter each: an incident's tens of thousands of keys would otherwise be
    spliced into the statement one by one by Django and psycopg."""
    if connection.vendor == "postgresql":
        q, column = connection.ops.quote_name, OutboxMessage._meta.get_field("key").column
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {q(column)} FROM {q(OutboxMessage._meta.db_table)} WHERE {q(column)} = ANY(%s)",
                           [list(emails)])  # fmt: skip
            existing = {key for (key,) in cursor.fetchall()}
    else:
        existing = set(OutboxMessage.objects.filter(key__in=list(emails)).values_list("key", flat=True))
    return {k: e for k, e in emails.items() if k not in existing}


def _insert_new(rows: list[OutboxMessage]) -> list[str]:
    """Insert the rows as bulk_create(ignore_conflicts=True) does (a key already written, or being
    written by a concurrent transaction, is skipped: the unique key decides), in one statement
    that returns the keys it wrote: INSERT ... ON CONFLICT DO NOTHING RETURNING key."""
    opts = OutboxMessage._meta
    fields = [f for f in opts.concrete_fields if not f.generated and not f.primary_key]
    written = OutboxMessage._base_manager._insert(
        rows, fields=fields, returning_fields=[opts.get_field("key")], on_conflict=OnConflict.IGNORE
    )
    return [row[0] for row in written if row]


MAX_PARAMETERS = 65535  # in one statement (PostgreSQL's protocol)


def _insert_later(rows: list[OutboxMessage]) -> None:
    """A batch's rows (outbox_enqueue_many(known_new=True)), in as few inserts as the database's
    limit on parameters allows, or from COPY_FROM rows on PostgreSQL through COPY (the inbound
    poller's group of 200 messages writes 400: a multi-row VALUES is about ten times the CPU a row,
    bench/RESULTS.md, session 11); a key written meanwhile is skipped."""
    if not connection.features.can_return_rows_from_bulk_insert:
        OutboxMessage.objects.bulk_create(rows, ignore_conflicts=True)
        return
    if connection.vendor == "postgresql" and len(rows) >= COPY_FROM:
        _copy_rows(
            [
                (r.key, r.message_id, r.template, r.to, r.context, json.dumps(r.headers), json.dumps(r.attachments),
                 r.next_attempt_at)
                for r in rows
            ],
            timezone.now(),
        )  # fmt: skip
        return
    fields = OutboxMessage._meta.concrete_fields
    size = min(connection.ops.bulk_batch_size(fields, rows), MAX_PARAMETERS // len(fields))
    for start in range(0, len(rows), size):
        _insert_new(rows[start : start + size])


# From this many rows on PostgreSQL, an insert goes through COPY (a sweep's batch: a thousand or more; a batch's).
COPY_FROM = 200
_COPIED = ("key", "message_id", "template", "to", "context", "headers", "attachments", "next_attempt_at")


def _copy_rows(rows: list[tuple], now: datetime) -> None:
    """Insert many rows as bulk_create(ignore_conflicts=True) would, faster: COPY into a temporary
    table, then one INSERT ... SELECT ... ON CONFLICT DO NOTHING. A statement with a parameter per
    column and row has Django and psycopg handle every value of a sweep's batch one by one; COPY
    streams them (bench/RESULTS.md, session 3). `rows`
    are (key, message_id, template, to, context, headers and attachments as JSON, next_attempt_at); the other columns take the model's
    defaults, as an unsaved row has them, and created_at is `now`. The COPY is shown to the connection's execute wrappers and query log
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
                for row in rows:
                    out.write_row((*row[:-1], row[-1].isoformat()))

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
    """One key: its own task. More: one sweep per sweep's worth of rows, so that every worker
    process takes part at once (an incident's 30,900 rows: 7 sweeps; a single one left the second
    process idle until beat's next minute, bench/incident_fanout.py). Each sweep stops after its
    time budget and queues the next (portal.core.tasks.outbox_sweep): other tasks get a turn."""
    try:
        if len(keys) == 1:
            outbox_send.delay(keys[0])
        else:
            for _ in range(-(-len(keys) // (settings.OUTBOX_BATCH * SWEEP_BATCHES))):
                outbox_sweep_dispatch()
    except Exception:  # the broker is down: the periodic sweep will find the rows
        log.warning("outbox: could not hand %d message(s) to a worker; the sweep will", len(keys), exc_info=True)
