"""Incidents drafted, published and updated, and an outage's impact and scope: every change
audited; a change of impact or scope that touches a closed month judges it again
(contracts.evidence). Emails and webhooks go out through contracts.incidents.publishing."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from portal.core.audit import audit, audit_entry
from portal.models import AuditEntry

from ..choices import Impact
from ..evidence import OUTAGE, Evidence, EvidenceChange, evidence_changed
from ..models import Contract, Incident, IncidentStatus, IncidentUpdate, Outage
from .publishing import update_publish

# A first update drafted when Alertmanager opens an outage is published this long after unless
# staff publish (or correct) it first (docs/decisions.md, "Incidents"): long enough for someone on
# call to read it, short enough that customers hear of a real outage from us first.
DRAFT_DELAY = timedelta(minutes=15)
DRAFT_MAX = 10  # outages opened by one delivery beyond which no incident is drafted
MAX_BODY = 10000
ENDED_FIELD = "outage_ended_at"  # the update form's "The outage ended at" (contracts.admin.incidents)


class IncidentError(Exception):
    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def _clean(title: str | None, status: str, body: str) -> None:
    if title is not None and not title.strip():
        raise IncidentError("An incident needs a public title.", "title")
    if status not in IncidentStatus.values:
        raise IncidentError(f"Unknown status “{status}”.", "status")
    if not body.strip():
        raise IncidentError("An update needs a text.", "body")
    if len(body) > MAX_BODY:
        raise IncidentError(f"An update is at most {MAX_BODY} characters.", "body")


def _lock(incident: Incident) -> Incident:
    return Incident.objects.select_for_update().select_related("outage").get(pk=incident.pk)


def _apply_status(incident: Incident, status: str, now: datetime) -> None:
    incident.status, incident.updated_at = status, now
    incident.resolved_at = now if status == IncidentStatus.RESOLVED else None


def outage_end_problem(outage: Outage, ended_at: datetime, now: datetime) -> str | None:
    """Why `ended_at` cannot be the end of `outage` that a resolving update gives, else None (the
    update form asks this too, to show it on its field)."""
    if ended_at <= outage.starts_at:
        return f"The outage started at {outage.starts_at:%Y-%m-%d %H:%M} UTC: it must end after that."
    if ended_at > now:
        return "The outage cannot have ended in the future."
    return None


def _end_outage(incident: Incident, status: str, ended_at: datetime | None, actor, now: datetime) -> None:
    """A resolving update ends its outage if it is still open, at `ended_at` (default: the update's
    moment), so the status page, the components and uptime agree with "Resolved". Recorded as staff's
    change of an outage's times is (contracts.outages.services.outage_update, which this package may
    not import: outages imports it): audited "outage.changed", and every closed month it touches
    judged again (contracts.evidence), as outage_set_impact below. Done when the update is written, a
    draft's too: the end is a fact about the service, not a message (the draft then waits for staff,
    as one whose outage an alert closed: incidents_hold_drafts)."""
    if status != IncidentStatus.RESOLVED:
        return
    outage = Outage.objects.select_for_update().get(pk=incident.outage_id)
    if outage.ends_at is not None:
        return  # ended already (by an alert, or by staff on the outage): its end stays as recorded
    end = ended_at or now
    problem = outage_end_problem(outage, end, now)
    if problem:
        raise IncidentError(problem, ENDED_FIELD)
    sids = frozenset(outage.services.values_list("pk", flat=True))
    scope = frozenset(outage.contracts.values_list("pk", flat=True))
    before = outage_evidence(outage, sids, scope)
    Outage.objects.filter(pk=outage.pk).update(ends_at=end)
    outage.ends_at = incident.outage.ends_at = end
    audit(actor=actor, action="outage.changed", target=outage, now=now,
          before={"starts_at": outage.starts_at, "ends_at": None, "services": sorted(sids)},
          after={"starts_at": outage.starts_at, "ends_at": end, "services": sorted(sids)})  # fmt: skip
    evidence_changed(
        [EvidenceChange(OUTAGE, outage.pk, f"Outage {outage.pk} “{outage.title}” ended when staff resolved its incident",
                        before, outage_evidence(outage, sids, scope))],
        now=now,
    )  # fmt: skip
    if incident.published_at is None:
        incidents_hold_drafts(outage_ids=[outage.pk])
        incident.publish_due_at = None


# --- Opening and publishing -----------------------------------------------------------------------
@transaction.atomic
def incident_open(
    *, outage: Outage, title: str, status: str, body: str, actor, publish: bool = True,
    outage_ended_at: datetime | None = None, now: datetime | None = None,
) -> Incident:  # fmt: skip
    """Staff make an outage an incident with its first update; published at once (its emails go
    out) unless `publish` is False (a draft, seen by staff only). Opened resolved, it ends its
    outage if still open (at `outage_ended_at`, default now: _end_outage)."""
    now = now or timezone.now()
    _clean(title, status, body)
    Outage.objects.select_for_update().only("pk").get(pk=outage.pk)  # two staff at once: one incident
    if Incident.objects.filter(outage_id=outage.pk).exists():
        raise IncidentError("This outage is an incident already: post an update to it instead.")
    incident = Incident(outage=outage, title=title.strip(), created_at=now, created_by=actor,
                        impact=_worst(outage))  # fmt: skip
    _apply_status(incident, status, now)
    incident.save()
    IncidentUpdate.objects.create(incident=incident, number=1, status=status, body=body.strip(), created_at=now,
                                  author=actor)  # fmt: skip
    audit(actor=actor, action="incident.opened", target=incident, now=now,
          after={"outage": outage.pk, "title": incident.title, "status": status, "published": publish})  # fmt: skip
    _end_outage(incident, status, outage_ended_at, actor, now)
    if publish:
        _publish(incident, actor, now)
    return incident


def _publish(incident: Incident, actor, now: datetime) -> int:
    Incident.objects.filter(pk=incident.pk).update(published_at=now, publish_due_at=None)
    incident.published_at, incident.publish_due_at = now, None
    audit(actor=actor, action="incident.published", target=incident, now=now, before={"published_at": None},
          after={"published_at": now})  # fmt: skip
    return sum(update_publish(update=u, now=now) for u in incident.updates.filter(published_at__isnull=True))


@transaction.atomic
def incident_publish(*, incident: Incident, actor, now: datetime | None = None) -> int:
    """Publish a draft incident and its drafted updates (their emails go out). Refused when it is
    published already (by someone else, or by the delay). Returns the emails written."""
    now = now or timezone.now()
    current = _lock(incident)
    if current.published_at is not None:
        raise IncidentError(f"The incident was published already, at {current.published_at:%Y-%m-%d %H:%M} UTC.")
    count = _publish(current, actor, now)
    incident.published_at, incident.publish_due_at = current.published_at, None
    return count


@transaction.atomic
def incident_post_update(
    *, incident: Incident, status: str, body: str, actor, after: int | None = None,
    outage_ended_at: datetime | None = None, now: datetime | None = None,
) -> IncidentUpdate:  # fmt: skip
    """A new update on the timeline (a correction too: a sent update never changes), published at
    once when the incident is (its emails go out), else kept as a draft with it. `after`: the number
    of the latest update the writer saw; if someone posted meanwhile, refused, so two staff writing
    at once do not send two updates each unaware of the other. A resolving update ends its outage if
    still open, at `outage_ended_at` (default: now; refused before its start or in the future)."""
    now = now or timezone.now()
    _clean(None, status, body)
    current = _lock(incident)
    last = current.updates.aggregate(n=Max("number"))["n"] or 0
    if after is not None and after != last:
        raise IncidentError(f"Update #{last} was posted meanwhile: read it, then post yours if it is still needed.",
                            "body")  # fmt: skip
    before = {"status": current.status}
    _apply_status(current, status, now)
    current.save(update_fields=["status", "updated_at", "resolved_at"])
    update = IncidentUpdate.objects.create(incident=current, number=last + 1, status=status, body=body.strip(),
                                           created_at=now, author=actor)  # fmt: skip
    audit(actor=actor, action="incident.updated", target=current, now=now, before=before,
          after={"status": status, "update": update.number})  # fmt: skip
    _end_outage(current, status, outage_ended_at, actor, now)
    if current.published_at is not None:
        update_publish(update=update, now=now)
    incident.status, incident.updated_at, incident.resolved_at = current.status, now, current.resolved_at
    return update


@transaction.atomic
def incident_set_title(*, incident: Incident, title: str, actor, now: datetime | None = None) -> None:
    now = now or timezone.now()
    _clean(title, IncidentStatus.INVESTIGATING, "-")
    current = _lock(incident)
    if current.title == title.strip():
        return
    audit(actor=actor, action="incident.retitled", target=current, now=now, before={"title": current.title},
          after={"title": title.strip()})  # fmt: skip
    Incident.objects.filter(pk=current.pk).update(title=title.strip(), updated_at=now)
    incident.title = title.strip()


# --- Drafts from monitoring -----------------------------------------------------------------------
def incidents_draft_for_alerts(*, outages: list[Outage], now: datetime) -> list[Incident]:
    """A draft incident for each outage Alertmanager opened, its first update written for staff to
    correct or publish, published by `incidents_publish_due` after DRAFT_DELAY otherwise. Batched
    (the caller's transaction: the webhook's). A delivery opening more than DRAFT_MAX outages drafts
    none: staff publish what it is."""
    if not outages or len(outages) > DRAFT_MAX:
        # A flood of alerts is not a flood of incidents to customers: staff judge what it is.
        return []
    incidents = [
        Incident(outage_id=o.pk, title=o.title, status=IncidentStatus.INVESTIGATING, impact=Impact.MAJOR,
                 created_at=now, updated_at=now, publish_due_at=now + DRAFT_DELAY)
        for o in outages
    ]  # fmt: skip
    Incident.objects.bulk_create(incidents)
    IncidentUpdate.objects.bulk_create(
        IncidentUpdate(incident=i, number=1, status=IncidentStatus.INVESTIGATING, created_at=now,
                       body=f"We are investigating a problem reported by our monitoring at {o.starts_at:%H:%M} UTC: "
                            f"{o.title}. We will post an update as soon as we know more.")
        for i, o in zip(incidents, outages, strict=True)
    )  # fmt: skip
    AuditEntry.objects.bulk_create(
        audit_entry(actor=None, action="incident.drafted_by_alert", target=i, now=now,
                    after={"outage": i.outage_id, "publish_due_at": i.publish_due_at})
        for i in incidents
    )  # fmt: skip
    return incidents


def incidents_hold_drafts(*, outage_ids: list[int]) -> int:
    """Outages closed before their drafted incident went out: the draft waits for staff (it is not
    published by the delay: customers are not told of a problem already over, unless staff say so)."""
    return Incident.objects.filter(outage_id__in=outage_ids, published_at__isnull=True).update(publish_due_at=None)


def incidents_publish_due(*, now: datetime | None = None) -> int:
    """The beat's sweep: publish every draft whose delay has passed (each in its own transaction,
    under its lock: one published by staff meanwhile is skipped). Returns how many."""
    now = now or timezone.now()
    done = 0
    for pk in Incident.objects.filter(publish_due_at__lte=now, published_at__isnull=True).values_list("pk", flat=True):
        try:
            incident_publish(incident=Incident(pk=pk), actor=None, now=now)
        except IncidentError:
            continue
        done += 1
    return done


# --- Impact and scope -----------------------------------------------------------------------------
def _worst(outage: Outage) -> str:
    return outage.overall_impact(outage.services.values_list("pk", flat=True))


def outage_evidence(outage: Outage, sids: frozenset[int], contracts: frozenset[int]) -> Evidence:
    return Evidence(sids, outage.starts_at, outage.ends_at, outage.cause, tuple(sorted((outage.impacts or {}).items())),
                    contracts, outage.customer_scoped)  # fmt: skip


@transaction.atomic
def outage_set_impact(
    *, outage: Outage, impacts: dict[int, str], contracts, customer_scoped: bool, actor, now: datetime | None = None
) -> Outage:
    """Staff set an outage's impact per service (degraded, partial, major) and the contracts it is
    scoped to: major is down for every contract on the service, partial only for the scoped
    contracts, degraded for none; a customer-scoped outage counts and shows for its contracts only.
    Audited; every closed month the change touches is judged again (contracts.evidence)."""
    now = now or timezone.now()
    current = Outage.objects.select_for_update().get(pk=outage.pk)
    sids = frozenset(current.services.values_list("pk", flat=True))
    unknown = set(impacts) - sids
    if unknown:
        raise IncidentError("An impact can be set only on the outage's own services.", "impacts")
    if any(v not in Impact.values for v in impacts.values()):
        raise IncidentError("An impact is degraded, partial or major.", "impacts")
    chosen = frozenset(c.pk if isinstance(c, Contract) else int(c) for c in contracts)
    covering = set(Contract.objects.filter(pk__in=chosen, services__in=sids).values_list("pk", flat=True))
    if chosen - covering:
        raise IncidentError("Every chosen contract must cover one of the outage's services.", "contracts")
    if customer_scoped and not chosen:
        raise IncidentError("A customer-scoped outage needs the contracts it affects.", "contracts")
    old_contracts = frozenset(current.contracts.values_list("pk", flat=True))
    before = outage_evidence(current, sids, old_contracts)
    current.impacts = {str(k): v for k, v in sorted(impacts.items()) if v != Impact.MAJOR}
    current.customer_scoped = customer_scoped
    current.save(update_fields=["impacts", "customer_scoped"])
    if chosen != old_contracts:
        current.contracts.set(chosen)
    after = outage_evidence(current, sids, chosen)
    if before == after:
        return current
    audit(actor=actor, action="outage.impact_changed", target=current, now=now,
          before={"impacts": dict(before.impacts), "contracts": sorted(old_contracts), "customer_scoped": before.customer_scoped},
          after={"impacts": current.impacts, "contracts": sorted(chosen), "customer_scoped": customer_scoped})  # fmt: skip
    Incident.objects.filter(outage_id=current.pk).update(impact=current.overall_impact(sids))
    evidence_changed(
        [EvidenceChange(OUTAGE, current.pk, f"Outage {current.pk} “{current.title}”: impact or scope changed by staff",
                        before, after)],
        now=now,
    )  # fmt: skip
    return current
