"""Leases on queue rows: what the email outbox (portal.core.delivery) and the webhook deliveries
(portal.core.webhook_delivery) share to hand each due row to exactly one sender.

A queue row has `status` (pending / sending / ...), `attempts`, `next_attempt_at`, `lease_until`
and `claim_token`. `lease_claim` takes due rows with select_for_update(skip_locked) on PostgreSQL
and, everywhere, a conditional update that re-checks `due` and stamps a claim token: two senders
never hold one row (SQLite has no row locks; the condition is the guard). `lease_renew` extends the
lease of one row just before it is sent, if it is still the caller's: a batch is claimed with one
lease but sent row by row, and a slow batch must never outlive it.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta

from django.db import connection, models, transaction
from django.db.models import F, Q
from django.utils import timezone

SENDING = "sending"


def lease_claim(
    model: type[models.Model], *, due: Q, now: datetime, limit: int, lease: timedelta, order_by=("next_attempt_at",),
    filters: Q | None = None,
) -> list:  # fmt: skip
    """Lease up to `limit` rows matching `due` (and `filters`) to this caller: status `sending`,
    one more attempt, a lease until now + `lease`. Safe against any number of concurrent callers."""
    token = uuid.uuid4()
    with transaction.atomic():
        candidates = model.objects.select_for_update(skip_locked=True, of=("self",)).filter(due)
        if filters is not None:
            candidates = candidates.filter(filters)
        ids = list(candidates.order_by(*order_by).values_list("id", flat=True)[:limit])
        if not ids:
            return []
        model.objects.filter(due, id__in=ids).update(
            status=SENDING, lease_until=now + lease, attempts=F("attempts") + 1, claim_token=token
        )
    return list(model.objects.filter(claim_token=token, status=SENDING).order_by("id"))


def lease_renew(row: models.Model, *, now: datetime, lease: timedelta, **fields) -> bool:
    """Extend the lease of a claimed row (and store `fields` with it) if no other sender has
    claimed it since; False means another sender has it now, and this one must not send it."""
    return (
        type(row)
        .objects.filter(id=row.id, claim_token=row.claim_token, status=SENDING)
        .update(lease_until=now + lease, **fields)
        == 1
    )


def lease_release(rows: list) -> int:
    """Hand claimed rows back unsent (a sweep out of time): pending again, due as they were, the
    attempt they were claimed for not counted. Only rows still the caller's."""
    released = 0
    for claim in {r.claim_token for r in rows}:
        released += (
            type(rows[0])
            .objects.filter(id__in=[r.id for r in rows if r.claim_token == claim], claim_token=claim, status=SENDING)
            .update(status="pending", lease_until=None, claim_token=None, attempts=F("attempts") - 1)
        )
    return released


def lease_renew_many(rows: list, *, now: datetime, lease: timedelta, fields: tuple[str, ...] = ()) -> list:
    """`lease_renew` for many rows in one statement per claim, storing each row's own `fields` (its
    values on the instance) with it. Returns the rows still the caller's, with their new `lease_until`."""
    if not rows:
        return []
    model, until = type(rows[0]), now + lease
    opts, q = model._meta, connection.ops.quote_name
    table, stored = q(opts.db_table), [opts.get_field(name) for name in fields]

    def column(name):
        field = opts.get_field(name)
        return field, f"{table}.{q(field.column)}"

    (_, id_col), (token, token_col), (lease_until, _), (_, status_col) = (
        column(n) for n in ("id", "claim_token", "lease_until", "status")
    )
    # UPDATE ... FROM (VALUES ...), which PostgreSQL and SQLite both read: bulk_update's CASE per
    # field and row took longer to build and run than the batch took to send (bench/RESULTS.md).
    sets = [f"{q(lease_until.column)} = %s"] + [f"{q(f.column)} = v.column{i}" for i, f in enumerate(stored, 2)]
    renewed = []
    for claim in {r.claim_token for r in rows}:
        mine = [r for r in rows if r.claim_token == claim]
        values = ", ".join(["(" + ", ".join(["%s"] * (1 + len(stored))) + ")"] * len(mine))
        params = [lease_until.get_db_prep_save(until, connection)]
        for r in mine:
            params += [r.id, *(f.get_db_prep_save(getattr(r, f.attname), connection) for f in stored)]
        params += [token.get_db_prep_save(claim, connection), SENDING]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET {', '.join(sets)} FROM (VALUES {values}) AS v "
                f"WHERE {id_col} = v.column1 AND {token_col} = %s AND {status_col} = %s",
                params,
            )
            count = cursor.rowcount
        if count != len(mine):  # another sender has some of them (their lease ran out): which?
            ours = set(
                model.objects.filter(id__in=[r.id for r in mine], claim_token=claim, status=SENDING).values_list(
                    "id", flat=True
                )
            )
            mine = [r for r in mine if r.id in ours]
        renewed += mine
    for r in renewed:
        r.lease_until = until
    ids = {r.id for r in renewed}
    return [r for r in rows if r.id in ids]


def clock() -> float:
    """The sweeps' stopwatch (a function, so that tests can move it)."""
    return time.monotonic()


def lease_drain(claim, deliver, *, rounds: int, deadline: float | None = None, on_more=None) -> int:
    """The sweep: claim (`claim(now)` -> rows) and deliver (`deliver(rows)` -> how many went) round
    by round until nothing is due, `rounds` have run or `deadline` (a reading of `clock()`) has
    passed, checked before each round: a sweep holds its worker process about its time budget,
    never for a whole backlog. Stopped with rows perhaps still due, it calls `on_more()` (the
    caller queues the next sweep) if given; otherwise the next periodic sweep goes on. Returns how
    many went."""
    total = 0
    for _ in range(rounds):
        if deadline is not None and clock() >= deadline:
            break
        claimed = claim(timezone.now())
        if not claimed:
            return total
        total += deliver(claimed)
    if on_more is not None:
        on_more()
    return total


def backoff(attempts: int, *, cap_minutes: int = 60) -> timedelta:
    """1, 2, 4, ... minutes after the 1st, 2nd, 3rd, ... failed attempt, at most `cap_minutes`."""
    return timedelta(minutes=min(cap_minutes, 2 ** max(0, attempts - 1)))
