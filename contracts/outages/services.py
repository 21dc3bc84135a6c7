"""Outages recorded, changed and deleted by staff, and their cause: every change audited, and a
closed month it touches judged again (contracts.evidence)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from portal.core.audit import audit
from portal.domain.dates import EVIDENCE_YEARS_MESSAGE, in_evidence_years

from ..choices import Cause
from ..evidence import OUTAGE, Evidence, EvidenceChange, evidence_changed
from ..models import Incident, Outage, OutageCauseChange


class OutageError(Exception):
    pass


SCHEDULED_REFUSED = (
    "“Scheduled downtime” is not a cause an outage can be given: record planned work as a maintenance window "
    "(Maintenance windows → Add), which is excluded only where it keeps the contract's notice, off-peak and "
    "annual-cap rules."
)


def outage_cause_check(*, cause: str, old: str | None = None) -> None:
    """OutageError for a cause an outage cannot be given (`old`: the cause it has, None for a new
    one). Scheduled downtime is judged by the maintenance rules, which an outage's cause would skip:
    it is refused for a new outage and as a change; an outage that already has it keeps it."""
    if cause not in Cause.values:
        raise OutageError(f"Unknown cause “{cause}”.")
    if cause == Cause.SCHEDULED_MAINTENANCE and old != cause:
        raise OutageError(SCHEDULED_REFUSED)


def outage_label(outage: Outage) -> str:
    return f"Outage {outage.pk} “{outage.title}”"


def _service_ids(services) -> frozenset[int]:
    return frozenset(s if isinstance(s, int) else s.pk for s in services)


def _check(starts_at: datetime, ends_at: datetime | None, sids: frozenset[int]) -> None:
    if not (in_evidence_years(starts_at) and in_evidence_years(ends_at)):
        raise OutageError(EVIDENCE_YEARS_MESSAGE)
    if ends_at is not None and ends_at <= starts_at:
        raise OutageError("The outage must end after it starts.")
    if not sids:
        raise OutageError("An outage needs at least one service.")


def _record_cause(outage: Outage, actor, old: str, cause: str, now: datetime) -> OutageCauseChange:
    Outage.objects.filter(pk=outage.pk).update(cause=cause)
    outage.cause = cause
    audit(actor=actor, action="outage.cause_changed", target=outage, before={"cause": old}, after={"cause": cause},
          now=now)  # fmt: skip
    return OutageCauseChange.objects.create(outage=outage, at=now, actor=actor, old=old, new=cause)


# --- The cause, audited ---------------------------------------------------------------------------
@transaction.atomic
def outage_set_cause(*, outage: Outage, actor, cause: str, now: datetime | None = None) -> OutageCauseChange | None:
    """Change an outage's cause and record who changed it, when, from what, to what. The cause
    decides whether a contract excludes the outage from uptime, so it changes only here, and a
    closed month it touches is judged again (contracts.evidence). Setting the cause it already has
    changes nothing and records nothing."""
    if cause not in Cause.values:
        raise OutageError(f"Unknown cause “{cause}”.")
    now = now or timezone.now()
    stored = Outage.objects.select_for_update().only("pk", "title", "cause", "starts_at", "ends_at").get(pk=outage.pk)
    old = stored.cause
    outage_cause_check(cause=cause, old=old)
    outage.cause = cause
    if old == cause:
        return None
    change = _record_cause(outage, actor, old, cause, now)
    sids = _service_ids(stored.services.values_list("pk", flat=True))
    evidence_changed(
        [
            EvidenceChange(
                OUTAGE, stored.pk, f"{outage_label(stored)}: cause changed from “{Cause(old).label}” to “{Cause(cause).label}”",
                before=Evidence(sids, stored.starts_at, stored.ends_at, old),
                after=Evidence(sids, stored.starts_at, stored.ends_at, cause),
            )
        ],
        now=now,
    )  # fmt: skip
    return change


# --- Staff record, change and delete outages ------------------------------------------------------
@transaction.atomic
def outage_record(
    *, title: str, services, starts_at: datetime, ends_at: datetime | None = None, cause: str = Cause.UNPLANNED,
    description: str = "", actor, now: datetime | None = None,
) -> Outage:  # fmt: skip
    """Staff record an outage. A cause other than unplanned is recorded as a change from unplanned
    (audited like any other); a closed month it touches is judged again (contracts.evidence)."""
    now = now or timezone.now()
    outage_cause_check(cause=cause)
    sids = _service_ids(services)
    _check(starts_at, ends_at, sids)
    outage = Outage.objects.create(
        title=title, starts_at=starts_at, ends_at=ends_at, cause=Cause.UNPLANNED, description=description,
        source=Outage.Source.STAFF,
    )  # fmt: skip
    outage.services.set(sids)
    audit(actor=actor, action="outage.recorded", target=outage, now=now,
          after={"starts_at": starts_at, "ends_at": ends_at, "services": sorted(sids), "cause": cause})  # fmt: skip
    if cause != Cause.UNPLANNED:
        _record_cause(outage, actor, Cause.UNPLANNED, cause, now)
    evidence_changed(
        [EvidenceChange(OUTAGE, outage.pk, f"{outage_label(outage)} recorded by staff", None,
                        Evidence(sids, starts_at, ends_at, cause))],
        now=now,
    )  # fmt: skip
    return outage


@transaction.atomic
def outage_update(
    *, outage: Outage, title: str, services, starts_at: datetime, ends_at: datetime | None, description: str,
    actor, cause: str | None = None, now: datetime | None = None,
) -> Outage:  # fmt: skip
    """Staff change an outage; `cause` None leaves the cause as stored (a form that did not change
    it never overwrites a newer one). A change of its times, services or cause is audited and
    judges again every closed month it touched before or touches now (contracts.evidence)."""
    now = now or timezone.now()
    current = Outage.objects.select_for_update().get(pk=outage.pk)
    old_sids = _service_ids(current.services.values_list("pk", flat=True))
    if cause is not None:
        outage_cause_check(cause=cause, old=current.cause)
    sids = _service_ids(services)
    _check(starts_at, ends_at, sids)
    before = Evidence(old_sids, current.starts_at, current.ends_at, current.cause)
    current.title, current.description, current.starts_at, current.ends_at = title, description, starts_at, ends_at
    current.save(update_fields=["title", "description", "starts_at", "ends_at"])
    if sids != old_sids:
        current.services.set(sids)
        # Its incident carries its worst impact (contracts.incidents): a service added or removed changes it.
        Incident.objects.filter(outage_id=current.pk).update(impact=current.overall_impact(sids))
    what = []
    if (before.start, before.end) != (starts_at, ends_at):
        what.append("times")
    if sids != old_sids:
        what.append("services")
    if what:
        audit(actor=actor, action="outage.changed", target=current, now=now,
              before={"starts_at": before.start, "ends_at": before.end, "services": sorted(old_sids)},
              after={"starts_at": starts_at, "ends_at": ends_at, "services": sorted(sids)})  # fmt: skip
    if cause is not None and cause != before.cause:
        _record_cause(current, actor, before.cause, cause, now)
        what.append(f"cause from “{Cause(before.cause).label}” to “{Cause(cause).label}”")
    after = Evidence(sids, starts_at, ends_at, current.cause)
    evidence_changed(
        [EvidenceChange(OUTAGE, current.pk, f"{outage_label(current)} changed by staff ({', '.join(what)})", before, after)],
        now=now,
    )  # fmt: skip
    return current


@transaction.atomic
def outage_delete(*, outage: Outage, actor, now: datetime | None = None) -> None:
    """Staff delete an outage (recorded by mistake): audited, and every closed month it touched is
    judged again without it (contracts.evidence)."""
    now = now or timezone.now()
    current = Outage.objects.select_for_update().get(pk=outage.pk)
    sids = _service_ids(current.services.values_list("pk", flat=True))
    before = Evidence(sids, current.starts_at, current.ends_at, current.cause)
    audit(actor=actor, action="outage.deleted", target=current, now=now,
          before={"title": current.title, "starts_at": current.starts_at, "ends_at": current.ends_at,
                  "services": sorted(sids), "cause": current.cause})  # fmt: skip
    change = EvidenceChange(OUTAGE, current.pk, f"{outage_label(current)} deleted by staff", before, None)
    current.delete()
    evidence_changed([change], now=now)
