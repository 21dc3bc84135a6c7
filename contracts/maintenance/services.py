"""The writes of maintenance windows: publish, update (a change of time, impact or services is a new
revision, announced anew), cancel and delete. Every email goes through the outbox in the transaction
of the change; the notices and reminders themselves go out from the sweep (sweep.py). A change that
moves what a window counts as judges again the closed months it touches (contracts.evidence)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from portal.core.audit import audit, row_state
from portal.core.outbox import outbox_enqueue_many
from portal.domain.dates import EVIDENCE_YEARS_MESSAGE, in_evidence_years

from ..evidence import MAINTENANCE, Evidence, EvidenceChange, evidence_changed
from ..models import Contract, MaintenanceNotice, MaintenanceWindow
from ..selectors import Versions, running_at
from .emails import (
    members_preferences,
    notice_emails,
    recipients_prefetch,
    subscriber_notice_emails,
    subscribers_told,
    told_earlier,
)
from .judging import (
    DEFAULT_NOTICE,
    NOTICE_KINDS,
    NOTICE_LEAD,
    Impact,
    Kind,
    Status,
    ids_of,
    is_new_revision,
    notice_row,
    service_ids,
)

REMINDER_BEFORE = timedelta(hours=1)


class MaintenanceError(Exception):
    pass


def _check(starts_at: datetime, ends_at: datetime, sids: frozenset[int]) -> None:
    if not (in_evidence_years(starts_at) and in_evidence_years(ends_at)):
        raise MaintenanceError(EVIDENCE_YEARS_MESSAGE)
    if ends_at <= starts_at:
        raise MaintenanceError("The window must end after it starts.")
    if not sids:
        raise MaintenanceError("A window needs at least one service.")


def _evidence(
    status: str, impact: str, sids: frozenset[int], starts_at: datetime, ends_at: datetime
) -> Evidence | None:
    """What a window counts as for uptime: scheduled downtime only."""
    if status != Status.SCHEDULED or impact != Impact.DOWNTIME:
        return None
    return Evidence(sids, starts_at, ends_at)


def _moved(window: MaintenanceWindow, what: str, before: Evidence | None, after: Evidence | None, now) -> None:
    reason = f"Maintenance window {window.pk} “{window.title}” {what}"
    evidence_changed([EvidenceChange(MAINTENANCE, window.pk, reason, before, after)], now=now)


def _audited(window: MaintenanceWindow) -> dict:
    """What the audit log records of a window (`actor` None: the system, e.g. a command)."""
    return row_state(window)


def _notice_lead(sids: frozenset[int], starts_at: datetime, ends_at: datetime) -> timedelta:
    """The longest notice the terms of any contract the window affects (on its services, running
    at the window) ask for."""
    affected = running_at(Contract.objects.filter(services__in=sids), starts_at, ends_at)
    sla_ids = set(affected.values_list("sla_id", flat=True))
    versions = Versions(sla_ids)
    return max((v.maintenance_notice for s in sla_ids if (v := versions.at(s, starts_at))), default=DEFAULT_NOTICE)


def _schedule(window: MaintenanceWindow, sids: frozenset[int], now: datetime, *, told: bool) -> None:
    """A new revision: its notice is due when it enters the notice horizon, or at once if it already
    has or if customers were told of an earlier revision (they must hear of the change now); its
    reminder an hour before the start. A window recorded after it ended is not announced."""
    window.published_at = now
    if window.ends_at <= now:
        window.notice_due_at = window.reminder_due_at = None
        return
    horizon = window.starts_at - _notice_lead(sids, window.starts_at, window.ends_at) - NOTICE_LEAD
    window.notice_due_at = now if told else max(now, horizon)
    reminder = window.starts_at - REMINDER_BEFORE
    window.reminder_due_at = reminder if reminder > window.notice_due_at else None


@transaction.atomic
def window_publish(
    *, title: str, description: str, services, starts_at: datetime, ends_at: datetime,
    impact: str = Impact.DOWNTIME, actor=None, now: datetime | None = None,
) -> MaintenanceWindow:  # fmt: skip
    """Schedule a window. Its notices go out from the sweep (send_maintenance_notices)."""
    now = now or timezone.now()
    sids = ids_of(services)
    _check(starts_at, ends_at, sids)
    window = MaintenanceWindow(
        title=title, description=description, starts_at=starts_at, ends_at=ends_at, impact=impact,
        revision=1, sequence=1, changed_at=now, created_by=actor,
    )  # fmt: skip
    _schedule(window, sids, now, told=False)
    window.save()
    window.services.set(sids)
    audit(actor=actor, action="maintenance.published", target=window, now=now,
          after=_audited(MaintenanceWindow.objects.get(pk=window.pk)))  # fmt: skip
    _moved(window, "published", None, _evidence(window.status, impact, sids, starts_at, ends_at), now)
    return window


@transaction.atomic
def window_update(
    *, window: MaintenanceWindow, title: str, description: str, services, starts_at: datetime,
    ends_at: datetime, impact: str, actor=None, now: datetime | None = None,
) -> MaintenanceWindow:  # fmt: skip
    """Change a window. A change of start, end, impact or services is a new revision, announced
    anew; a change of the title or description alone sends nothing."""
    now = now or timezone.now()
    sids = ids_of(services)
    _check(starts_at, ends_at, sids)
    current = MaintenanceWindow.objects.select_for_update().get(pk=window.pk)
    if current.status == Status.CANCELLED:
        raise MaintenanceError("A cancelled window cannot be changed; schedule a new one.")
    old_sids = frozenset(current.services.values_list("pk", flat=True))
    before = _evidence(current.status, current.impact, old_sids, current.starts_at, current.ends_at)
    stated = _audited(current)
    new_revision = is_new_revision(current, old_sids, starts_at, ends_at, impact, sids)
    current.title, current.description = title, description
    current.starts_at, current.ends_at, current.impact = starts_at, ends_at, impact
    fields = ["title", "description", "starts_at", "ends_at", "impact"]
    if new_revision:
        current.revision += 1
        _schedule(current, sids, now, told=current.pk in told_earlier([current]))
        fields += ["revision", "published_at", "notice_due_at", "reminder_due_at"]
    current.save(update_fields=fields)
    if sids != old_sids:
        current.services.set(sids)
    after = _audited(MaintenanceWindow.objects.get(pk=current.pk))  # as stored, as `stated`
    if changed := [k for k in after if stated[k] != after[k]]:
        audit(actor=actor, action="maintenance.changed", target=current, now=now,
              before={k: stated[k] for k in changed}, after={k: after[k] for k in changed})  # fmt: skip
        # Its calendar event changed: a higher SEQUENCE and a new DTSTAMP (RFC 5545 3.8.7.4).
        current.sequence, current.changed_at = current.sequence + 1, now
        current.save(update_fields=["sequence", "changed_at"])
    _moved(current, "changed", before, _evidence(current.status, impact, sids, starts_at, ends_at), now)
    return current


@transaction.atomic
def window_cancel(*, window: MaintenanceWindow, actor=None, now: datetime | None = None) -> int:
    """Cancel a window that has not started yet and tell at once every contract's contacts who were
    told of it (except a contract already told that the window no longer touches its services).
    Returns the emails queued; cancelling again does nothing; a window that has started is refused
    (MaintenanceError): its times are corrected instead."""
    now = now or timezone.now()
    current = MaintenanceWindow.objects.select_for_update().prefetch_related("services").get(pk=window.pk)
    if current.status == Status.CANCELLED:
        return 0
    if current.starts_at <= now:
        # A cancellation says the window "will not take place" and takes its downtime out of uptime:
        # news of a window still to come, never a way to erase one that has started.
        raise MaintenanceError(
            "This window has already started: it can no longer be cancelled. Correct its times instead "
            "(an end moved to the moment the work stopped)."
        )
    wsids = service_ids(current)
    _moved(current, "cancelled", _evidence(current.status, current.impact, wsids, current.starts_at, current.ends_at),
           None, now)  # fmt: skip
    current.status, current.cancelled_at = Status.CANCELLED, now
    current.notice_due_at = current.reminder_due_at = None
    current.sequence, current.changed_at = current.sequence + 1, now  # a change of STATUS: a new sequence
    current.save(update_fields=["status", "cancelled_at", "notice_due_at", "reminder_due_at", "sequence", "changed_at"])
    audit(actor=actor, action="maintenance.cancelled", target=current, now=now,
          before={"status": Status.SCHEDULED}, after={"status": Status.CANCELLED, "cancelled_at": now})  # fmt: skip
    window.status, window.cancelled_at = current.status, current.cancelled_at
    window.notice_due_at = window.reminder_due_at = None
    told = set(current.notices.filter(kind__in=NOTICE_KINDS).values_list("contract_id", "revision"))
    contracts = Contract.objects.filter(pk__in={c for c, _ in told}).prefetch_related(*recipients_prefetch())
    versions, prefs = Versions({c.sla_id for c in contracts}), members_preferences(contracts)
    records, emails = [], []
    for c in contracts:
        if (c.pk, current.revision) in told and not wsids & service_ids(c):
            continue  # its last notice said the window no longer touches its services
        records.append(notice_row(current, c, Kind.CANCEL, now))
        emails += notice_emails(current, c, Kind.CANCEL, versions.shown(c.sla_id, current.starts_at), prefs=prefs)
    told_subscribers = subscribers_told(current)
    emails += subscriber_notice_emails(current, Kind.CANCEL, members=emails, subscribers=told_subscribers)
    MaintenanceNotice.objects.bulk_create(records, ignore_conflicts=True)
    return outbox_enqueue_many(emails=emails, now=now)


@transaction.atomic
def window_delete(*, window: MaintenanceWindow, actor=None, now: datetime | None = None) -> None:
    """Delete a window nobody was told of (one that was is cancelled instead, which tells them). A
    closed month it counted in is judged again without it."""
    now = now or timezone.now()
    current = MaintenanceWindow.objects.select_for_update().prefetch_related("services").get(pk=window.pk)
    if current.notices.exists():
        raise MaintenanceError("Customers were told of this window: cancel it (which tells them) instead.")
    before = _evidence(current.status, current.impact, service_ids(current), current.starts_at, current.ends_at)
    audit(actor=actor, action="maintenance.deleted", target=current, before=_audited(current), now=now)
    pk = current.pk
    current.delete()
    current.pk = pk  # named in the reason
    _moved(current, "deleted", before, None, now)
