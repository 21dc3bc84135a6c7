"""The sweep (beat, every minute) that sends the maintenance notices and reminders that are due."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q, prefetch_related_objects
from django.utils import timezone

from portal.core.outbox import outbox_enqueue_many

from ..models import Contract, MaintenanceNotice, MaintenanceWindow
from ..selectors import Versions
from ..subscribers.emails import following, subscribers_for
from .emails import members_preferences, notice_emails, recipients_prefetch, subscriber_notice_emails, told_earlier
from .judging import DEFAULT_NOTICE, NOTICE_KINDS, Kind, Status, notice_row, runs_at_window, service_ids

BATCH = 200
REMINDER_GRACE = timedelta(minutes=15)  # a late sweep still reminds a window that has just started


def due(field: str, now: datetime):
    """Windows whose `field` due-time has come, earliest first: served by a partial index. A
    reminder waits for its window's notice (the notice pass runs first in every sweep)."""
    windows = MaintenanceWindow.objects.filter(**{f"{field}__lte": now})
    if field == "reminder_due_at":
        windows = windows.filter(notice_due_at__isnull=True)
    return windows.order_by(field)


def maintenance_notices_send_due(*, now: datetime | None = None, batch: int = BATCH) -> int:
    """Send the notices and reminders that are due. Each window is taken with skip_locked, so two
    sweeps at once never take the same one; each batch is a fixed number of queries; the unique
    notice row and the outbox key make every notice once per revision and contact. Returns how many
    notice rows (one per window, contract and kind) were written."""
    now = now or timezone.now()
    return _sweep("notice_due_at", now, batch, _send_notices) + _sweep("reminder_due_at", now, batch, _send_reminders)


def _sweep(field: str, now: datetime, batch: int, send) -> int:
    total = 0
    while True:
        # Until a take comes back empty, not merely short: on PostgreSQL a row that another sweep
        # has just cleared is dropped from a locked take, which then holds fewer than `batch` rows
        # though more are due.
        with transaction.atomic():
            windows = list(due(field, now).select_for_update(skip_locked=True, of=("self",))[:batch])
            if not windows:
                return total
            total += send(windows, now)
            MaintenanceWindow.objects.filter(pk__in=[w.pk for w in windows]).update(**{field: None})


def _batch_context(windows: list[MaintenanceWindow]):
    """Services of the windows, their notices so far, and the contracts concerned (services and
    contacts prefetched), indexed by service: a fixed number of queries for the batch."""
    prefetch_related_objects(windows, "services")
    notices = list(
        MaintenanceNotice.objects.filter(window__in=windows, kind__in=NOTICE_KINDS).values_list(
            "window_id", "contract_id", "revision"
        )
    )
    sids = {s.pk for w in windows for s in w.services.all()}
    told = {c for _, c, _ in notices}
    contracts = list(
        Contract.objects.filter(Q(services__in=sids) | Q(pk__in=told))
        .distinct()
        .order_by("pk")
        .prefetch_related(*recipients_prefetch())
    )
    by_service: dict[int, list[Contract]] = defaultdict(list)
    for c in contracts:
        for s in service_ids(c):
            by_service[s].append(c)
    return notices, {c.pk: c for c in contracts}, by_service, Versions({c.sla_id for c in contracts})


def _affected(window, by_service, versions) -> dict[int, Contract]:
    """The contracts on the window's services that run at the window (ended or future ones are not
    told, nor reminded)."""
    return {
        c.pk: c
        for s in service_ids(window)
        for c in by_service.get(s, ())
        if runs_at_window(c, window.starts_at, window.ends_at, versions)
    }


def _subscribers(windows: list[MaintenanceWindow]) -> list:
    """The status page's subscribers who follow a service of the batch, in two queries."""
    return subscribers_for(s.pk for w in windows for s in w.services.all())


def _send_notices(windows: list[MaintenanceWindow], now: datetime) -> int:
    notices, contracts, by_service, versions = _batch_context(windows)
    records, emails, prefs, subscribers = [], [], members_preferences(contracts.values()), _subscribers(windows)
    told_any = told_earlier(windows, notices)
    for w in windows:
        affected = _affected(w, by_service, versions)
        told_before = {c for wid, c, rev in notices if wid == w.pk and rev < w.revision}
        members: list = []
        for pk in sorted(affected.keys() | told_before):
            c = contracts[pk]
            version = versions.at(c.sla_id, w.starts_at)
            # Told of an earlier revision: an update (also to a contract the window no longer
            # touches, so that it knows); otherwise the first it hears of the window.
            kind = Kind.UPDATE if pk in told_before else Kind.ANNOUNCE
            short = pk in affected and now > w.starts_at - (version.maintenance_notice if version else DEFAULT_NOTICE)
            told = notice_emails(
                w,
                c,
                kind,
                version or versions.shown(c.sla_id, w.starts_at),
                short_notice=short,
                affected=pk in affected,
                prefs=prefs,
            )
            # A notice that reached nobody is recorded as such, once (not tried again every minute):
            # it earns no exclusion, and staff see it in the window's rules table.
            records.append(notice_row(w, c, kind, now, short_notice=short, reached_nobody=not told))
            members += told
        # Subscribers hear of a revision as an update once anyone (a contract or a subscriber) was
        # told of an earlier one.
        kind = Kind.UPDATE if w.pk in told_any else Kind.ANNOUNCE
        followers = following(subscribers, service_ids(w))
        emails += members + subscriber_notice_emails(w, kind, members=members, subscribers=followers)
    # ignore_conflicts: the unique (window, contract, revision, kind) makes a notice once.
    MaintenanceNotice.objects.bulk_create(records, ignore_conflicts=True)
    outbox_enqueue_many(emails=emails, now=now)
    return len(records)


def _send_reminders(windows: list[MaintenanceWindow], now: datetime) -> int:
    notices, contracts, by_service, versions = _batch_context(windows)
    records, emails, prefs, subscribers = [], [], members_preferences(contracts.values()), _subscribers(windows)
    for w in windows:
        if w.status != Status.SCHEDULED or now > w.starts_at + REMINDER_GRACE:
            continue  # too late to remind: the due-time is simply cleared
        affected = _affected(w, by_service, versions)
        # Reminded: the contracts told of this revision that it still touches.
        members: list = []
        for pk in sorted({c for wid, c, rev in notices if wid == w.pk and rev == w.revision} & affected.keys()):
            c = contracts[pk]
            records.append(notice_row(w, c, Kind.REMINDER, now))
            members += notice_emails(w, c, Kind.REMINDER, versions.shown(c.sla_id, w.starts_at), prefs=prefs)
        followers = following(subscribers, service_ids(w))
        emails += members + subscriber_notice_emails(w, Kind.REMINDER, members=members, subscribers=followers)
    MaintenanceNotice.objects.bulk_create(records, ignore_conflicts=True)
    outbox_enqueue_many(emails=emails, now=now)
    return len(records)
