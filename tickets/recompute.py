"""The clock columns of tickets, derived again: ticket_recompute for one ticket that a service
(tickets.services) changes, tickets_recompute for many after an edit of a calendar or of SLA terms
(tickets.tasks.recompute_deadlines), both from tickets.deadlines.ticket_deadlines over the rows
tickets.history reads; save_columns writes many tickets' columns at once (the sweeps too)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import NamedTuple

from celery.exceptions import SoftTimeLimitExceeded
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from contracts.models import PriorityTerm

from . import deadlines
from .history import ClockRows, at_risk_share, clock_rows, resolved_moment, ticket_history
from .models import DeadlineRecompute, EscalationRequest, Ticket, TicketEvent
from .terms_cache import TermsCache

log = logging.getLogger(__name__)
ACK_COLUMNS = ["ack_due", "ack_warn_at"]  # an escalation request's clock columns


class Recomputed(NamedTuple):
    fields: list[str]  # the ticket's columns, set on it (not saved)
    requests: list[EscalationRequest]  # pending requests whose ack_due or ack_warn_at moved (set, not saved)


def ticket_recompute(
    ticket: Ticket, *, now: datetime, terms: TermsCache | None = None, pauses=None, requests=None, recorded=None
) -> Recomputed:
    """Set the ticket's clock columns (and its pending escalation requests' ack_due) from
    tickets.deadlines.ticket_deadlines. `pauses`, `requests` (pending ones) and `recorded` (its
    crossings, as deadlines.Recorded) are read when not given, those missing in one query (clock_rows)."""
    terms = terms or TermsCache()
    if any(given is None for given in (pauses, requests, recorded)):
        rows = clock_rows([ticket.pk])[ticket.pk] if ticket.pk else ClockRows([], [], [])
        pauses = rows.pauses if pauses is None else pauses
        requests = rows.requests if requests is None else requests
        recorded = rows.recorded if recorded is None else recorded
    columns = deadlines.ticket_deadlines(
        terms.targets(ticket.sla_version_id, ticket.priority),
        ticket_history(ticket, pauses),
        now=now,
        at_risk_share=at_risk_share(ticket.priority),
        escalation_level=ticket.escalation_level,
        top_alert_sent=ticket.top_alert_sent,
        resolved_at=resolved_moment(ticket),
        excluded=ticket.is_excluded,
        pending_requests=[(r.pk, r.requested_at) for r in requests],
        recorded=recorded,
        priority=ticket.priority,
    )
    for name in deadlines.Columns.FIELDS:
        setattr(ticket, name, getattr(columns, name))
    ticket.escalation_dues = deadlines.dues_to_json(columns.escalation_dues)
    moved = []
    for r in requests:
        if (r.ack_due, r.ack_warn_at) != (columns.ack_dues[r.pk], columns.ack_warns[r.pk]):
            r.ack_due, r.ack_warn_at = columns.ack_dues[r.pk], columns.ack_warns[r.pk]
            moved.append(r)
    return Recomputed(list(deadlines.Columns.FIELDS), moved)


def save_columns(tickets: list[Ticket], fields) -> None:
    """Write many tickets' columns in one statement. On PostgreSQL: UPDATE ... FROM unnest() of one
    array per column. Django's bulk_update builds a CASE with one WHEN per ticket and column, which
    cost more in Python than the rest of a sweep's batch (bench/RESULTS.md, session 3)."""
    if not tickets:
        return
    if connection.vendor != "postgresql":
        Ticket.objects.bulk_update(tickets, fields)
        return
    qn, meta = connection.ops.quote_name, Ticket._meta
    columns = [meta.pk] + [meta.get_field(f) for f in fields]
    names = [qn(c.column) for c in columns]
    arrays = [[c.get_db_prep_value(getattr(t, c.attname), connection) for t in tickets] for c in columns]
    unnest = ", ".join(
        f"%s::{c.rel_db_type(connection) if c.primary_key else c.db_type(connection)}[]" for c in columns
    )
    sets = ", ".join(f"{n} = v.{n}" for n in names[1:])
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {qn(meta.db_table)} SET {sets} FROM unnest({unnest}) AS v({', '.join(names)}) "
            f"WHERE {qn(meta.db_table)}.{names[0]} = v.{names[0]}",
            arrays,
        )


RECOMPUTE_BATCH = 500


RECOMPUTED = "our SLA clocks were computed again"  # the reason of a recompute no edit asked for


def tickets_recompute(ids, *, now: datetime | None = None, after_batch=None, reason: str = "") -> int:
    """Recompute the clock columns of these tickets where they are still active, in batches of
    RECOMPUTE_BATCH, each in its own transaction with its tickets locked (a service changing one
    at the same time is waited for, then recomputed after it), `after_batch()` called after each.
    Recorded crossings stand. Running it twice changes nothing. A ticket whose deadline given to the
    customer moved gets a DEADLINE_MOVED event saying from when to when, and why (`reason`, the
    edit's). Returns how many it recomputed."""
    ids, done = sorted(set(ids)), 0
    for i in range(0, len(ids), RECOMPUTE_BATCH):
        done += _recompute_batch(ids[i : i + RECOMPUTE_BATCH], now=now or timezone.now(), reason=reason or RECOMPUTED)
        if after_batch is not None:
            after_batch()
    return done


@transaction.atomic
def _recompute_batch(ids, *, now: datetime, reason: str) -> int:
    tickets = list(
        Ticket.objects.filter(pk__in=ids, status__in=Ticket.ACTIVE).select_for_update(of=("self",)).order_by("pk")
    )
    if not tickets:
        return 0
    rows = clock_rows([t.pk for t in tickets])
    terms = TermsCache()
    terms.load({t.sla_version_id for t in tickets})
    moved, events = [], []
    for t in tickets:
        given = _deadlines_given(t)
        moved += ticket_recompute(
            t, now=now, terms=terms, pauses=rows[t.pk].pauses, requests=rows[t.pk].requests,
            recorded=rows[t.pk].recorded,
        ).requests  # fmt: skip
        if changes := _deadlines_moved(given, _deadlines_given(t)):
            events.append(
                TicketEvent(
                    ticket=t, kind=TicketEvent.Kind.DEADLINE_MOVED, at=now, data={"reason": reason, "moved": changes}
                )
            )
    save_columns(tickets, deadlines.Columns.FIELDS)
    EscalationRequest.objects.bulk_update(moved, ACK_COLUMNS)
    TicketEvent.objects.bulk_create(events)  # one statement for the batch, none where nothing moved
    return len(tickets)


def _deadlines_given(ticket: Ticket) -> dict[str, datetime | None]:
    """The deadlines the customer is given and still waits on: the first response until it came,
    the resolution's target and limit."""
    given = {name: getattr(ticket, name) for name in TicketEvent.DEADLINE_WORDS}
    if ticket.first_response_at is not None:
        given["first_response_due"] = None
    return given


def _deadlines_moved(before: dict, after: dict) -> list[dict]:
    """[{"deadline", "from", "to"}] of the deadlines that moved from one moment to another (a deadline
    a pause holds, with no moment, is not one the customer was told a moment of)."""
    return [
        {"deadline": name, "from": before[name].isoformat(), "to": after[name].isoformat()}
        for name in before
        if before[name] is not None and after[name] is not None and before[name] != after[name]
    ]


def tickets_active_ids() -> list[int]:
    return list(Ticket.objects.filter(status__in=Ticket.ACTIVE).values_list("pk", flat=True))


def tickets_touched(*, calendar_ids=(), version_ids=()) -> list[int]:
    """The active tickets whose deadlines an edit of these calendars or SLA versions can move: those
    on a (version, priority) whose clocks run on one of the calendars, those whose version's
    escalation requests are acknowledged on one of them, and those on one of the versions."""
    touched = Q(sla_version_id__in=list(version_ids))
    if calendar_ids:
        terms = PriorityTerm.objects.filter(
            Q(calendar_id__in=calendar_ids) | Q(resolution_calendar_id__in=calendar_ids)
        ).values_list("version_id", "priority")
        for version_id, priority in terms:
            touched |= Q(sla_version_id=version_id, priority=priority)
        touched |= Q(
            sla_version__escalation_ack_calendar_id__in=calendar_ids,
            escalation_requests__acknowledged_at__isnull=True,
        )
    return list(Ticket.objects.filter(touched, status__in=Ticket.ACTIVE).values_list("pk", flat=True).distinct())


# --- An edit's recompute, kept until it is done ----------------------------------------------------
RECOMPUTE_GRACE = timedelta(minutes=2)  # the task's time to run before the sweep takes its request
RECOMPUTE_LEASE = timedelta(minutes=10)  # a request the sweep took is taken again after this


def recompute_requested(*, calendar_ids=(), version_ids=(), reason: str = "", now: datetime) -> DeadlineRecompute:
    """In the edit's transaction: what it moved (and why), until recompute_run has recomputed it."""
    return DeadlineRecompute.objects.create(
        calendar_ids=sorted(calendar_ids), version_ids=sorted(version_ids), reason=reason, due_at=now + RECOMPUTE_GRACE
    )


def recompute_run(request_id: int, *, now: datetime | None = None) -> int:
    """Recompute the open tickets a request names, then forget it. Run twice (the task and the
    sweep, or a task delivered again), the columns come out the same. Returns how many."""
    request = DeadlineRecompute.objects.filter(pk=request_id).first()
    if request is None:
        return 0  # done already
    # Taken: the sweep leaves it for RECOMPUTE_LEASE (a slow task is not run a second time beside it),
    # renewed after every batch: a recompute longer than the lease is still this run's alone.
    DeadlineRecompute.objects.filter(pk=request_id).update(due_at=(now or timezone.now()) + RECOMPUTE_LEASE)

    def renew() -> None:
        DeadlineRecompute.objects.filter(pk=request_id).update(due_at=timezone.now() + RECOMPUTE_LEASE)

    touched = tickets_touched(calendar_ids=request.calendar_ids, version_ids=request.version_ids)
    done = tickets_recompute(touched, after_batch=renew, reason=request.reason)
    DeadlineRecompute.objects.filter(pk=request_id).delete()
    return done


def recompute_overdue(*, now: datetime, limit: int = 10) -> int:
    """The minute's sweep: the requests whose task has not run by their due moment, each taken (its
    due moment moved on by RECOMPUTE_LEASE, so a second sweep leaves it) and run."""
    done = 0
    due = DeadlineRecompute.objects.filter(due_at__lte=now).order_by("due_at", "pk").values_list("pk", flat=True)
    for pk in list(due[:limit]):
        if DeadlineRecompute.objects.filter(pk=pk, due_at__lte=now).update(due_at=now + RECOMPUTE_LEASE):
            try:
                done += recompute_run(pk, now=now)
            except SoftTimeLimitExceeded:
                raise  # the task's time is up: it stops here (the request is taken again after its lease)
            except Exception:  # noqa: BLE001 - the clocks' sweep goes on; the request is taken again after its lease
                log.exception("deadline recompute %s failed", pk)
    return done
