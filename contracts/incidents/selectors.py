"""What customers and staff read of incidents. A customer reads only published incidents of an
outage they may see (contracts.selectors.outages_for_user: one touching a service of their
organisation's contracts, and a customer-scoped one only when it is scoped to one of them)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Prefetch, QuerySet

from ..models import Contract, Incident, IncidentStatus, IncidentUpdate, Service
from ..outage_reach import outage_reach, scopes_of
from ..selectors import contracts_for_user, outages_for_user


def incidents_for_user(*, user) -> QuerySet[Incident]:
    """The published incidents the user's organisation may see (another organisation's
    customer-scoped one is not among them: its page is a 404)."""
    return Incident.objects.filter(published_at__isnull=False, outage__in=outages_for_user(user=user))


def incidents_of_month(
    *, contract: Contract, start: datetime, end: datetime, services: Iterable[int] | None = None
) -> list[Incident]:
    """The published incidents whose outage overlaps [start, end) and affects the contract (on one of
    its services, or of `services`: those its closed month was judged on; a customer-scoped outage
    or a partial impact only where scoped to it: outage_reach): a claim's evidence. Their outages'
    services are prefetched."""
    sids = set(contract.services.values_list("pk", flat=True)) if services is None else set(services)
    qs = Incident.objects.filter(published_at__isnull=False, outage__services__in=sids, outage__starts_at__lt=end)
    qs = qs.exclude(outage__ends_at__lte=start).distinct().select_related("outage")
    incidents = list(qs.prefetch_related("outage__services").order_by("outage__starts_at", "pk"))
    scopes = scopes_of([i.outage for i in incidents])
    return [
        i for i in incidents
        if contract.pk in outage_reach(
            i.outage, [s.pk for s in i.outage.services.all()], {contract.pk: sids}, scopes.get(i.outage_id, ())
        )
    ]  # fmt: skip


@dataclass(frozen=True)
class IncidentView:
    """An incident as one organisation reads it: its services and contracts among theirs."""

    incident: Incident
    updates: list[IncidentUpdate]  # published, newest first
    services: list[Service]  # of the incident, those the organisation's contracts cover
    contracts: list[Contract]  # the organisation's contracts it affects

    @property
    def impact(self):
        """The worst impact on the organisation's services it affects (Outage.impact_on), not on all of its own."""
        return self.incident.outage.impact_on(s.pk for s in self.services)

    @property
    def latest(self) -> IncidentUpdate | None:
        return self.updates[0] if self.updates else None


def _views(user, incidents: list[Incident]) -> list[IncidentView]:
    if not incidents:
        return []
    contracts = list(contracts_for_user(user=user).prefetch_related("services").order_by("reference", "pk"))
    out = []
    for incident in incidents:
        outage = incident.outage
        sids = [s.pk for s in outage.services.all()]
        scoped = {c.pk for c in outage.contracts.all()}
        reach = outage_reach(outage, sids, {c.pk: {s.pk for s in c.services.all()} for c in contracts}, scoped)
        mine = [c for c in contracts if c.pk in reach]
        covered = set().union(*reach.values())
        services = [s for s in outage.services.all() if s.pk in covered]
        updates = sorted(incident.published_updates, key=lambda u: u.number, reverse=True)
        out.append(IncidentView(incident, updates, services, mine))
    return out


def _loaded(qs: QuerySet[Incident]) -> QuerySet[Incident]:
    published = IncidentUpdate.objects.filter(published_at__isnull=False).select_related(None)
    return qs.select_related("outage").prefetch_related(
        "outage__services", "outage__contracts", Prefetch("updates", queryset=published, to_attr="published_updates")
    )


def incident_for_user(*, user, pk: int) -> IncidentView | None:
    found = list(_loaded(incidents_for_user(user=user).filter(pk=pk)))
    return _views(user, found)[0] if found else None


def open_incidents_for_user(*, user) -> list[IncidentView]:
    """The dashboard's banner: the organisation's published incidents not resolved, latest first."""
    qs = incidents_for_user(user=user).exclude(status=IncidentStatus.RESOLVED).order_by("-created_at", "-pk")
    return _views(user, list(_loaded(qs)))


def recent_incidents_for_user(*, user, limit: int = 50) -> list[IncidentView]:
    return _views(user, list(_loaded(incidents_for_user(user=user).order_by("-created_at", "-pk")[:limit])))
