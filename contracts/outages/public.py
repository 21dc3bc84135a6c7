"""The public record of incidents: what the status page, its history, its Atom feed and its
Statuspage-compatible JSON show. One read for all four, so that they can never disagree, and so
that nothing customer-scoped can reach any of them: every query here starts from
`public_outages()` or `_published()`.

A public incident is one staff published (or whose draft's delay passed), on an outage that is not
customer-scoped; only its published updates are shown, newest first. Its statuses are
IncidentStatus, its impacts contracts.choices.Impact; contracts.outages.statuspage translates them
for the JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.paginator import Page, Paginator
from django.db.models import Prefetch, Q, QuerySet

from ..choices import Impact
from ..models import Incident as IncidentRow
from ..models import IncidentStatus, IncidentUpdate, Outage, Service

RECENT = timedelta(days=90)  # past incidents on the status page itself; the history page has all
HISTORY_PER_PAGE = 20
NO_IMPACT = "none"  # an incident on no listed service (Statuspage's "none")


def impact_label(impact: str) -> str:
    return Impact(impact).label if impact in Impact.values else "No impact"


@dataclass(frozen=True)
class Update:
    id: int
    status: str
    body: str
    at: datetime  # when it was published (what the public saw, and when)

    @property
    def status_label(self) -> str:
        return IncidentStatus(self.status).label


@dataclass(frozen=True)
class Affected:
    service: Service
    impact: str

    @property
    def impact_label(self) -> str:
        return impact_label(self.impact)


@dataclass
class Incident:
    id: int
    title: str
    status: str
    impact: str  # the worst of its services' (stored on the incident by contracts.incidents)
    started_at: datetime
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    updates: list[Update] = field(default_factory=list)  # newest first
    affected: list[Affected] = field(default_factory=list)

    @property
    def impact_label(self) -> str:
        return impact_label(self.impact)

    @property
    def status_label(self) -> str:
        return IncidentStatus(self.status).label

    @property
    def resolved(self) -> bool:
        return self.status == IncidentStatus.RESOLVED

    def first_at(self, status: str) -> datetime | None:
        """When the incident first reached `status` (its updates say so), None if it never did."""
        times = [u.at for u in self.updates if u.status == status]
        return min(times) if times else None

    @property
    def services(self) -> list[Service]:
        return [a.service for a in self.affected]


# --- The reads --------------------------------------------------------------------------------------
def public_outages(*, now: datetime) -> QuerySet[Outage]:
    """Outages the public may see: started by now, and not customer-scoped (those concern chosen
    contracts only and are shown to their customers only)."""
    return Outage.objects.filter(starts_at__lte=now, customer_scoped=False)


def _published(now: datetime) -> QuerySet[IncidentRow]:
    return IncidentRow.objects.filter(
        published_at__isnull=False, published_at__lte=now, outage__in=public_outages(now=now)
    )


def _newest_first(queryset: QuerySet[IncidentRow]) -> QuerySet[IncidentRow]:
    return queryset.order_by("-outage__starts_at", "-pk")


def _build(rows: list[IncidentRow], now: datetime) -> list[Incident]:
    """Incidents of these rows, with their published updates (one query) and services (prefetched)."""
    updates: dict[int, list[Update]] = {r.pk: [] for r in rows}
    if rows:
        published = IncidentUpdate.objects.filter(
            incident_id__in=list(updates), published_at__isnull=False, published_at__lte=now
        ).order_by("-number")
        for u in published:
            updates[u.incident_id].append(Update(id=u.pk, status=u.status, body=u.body, at=u.published_at))
    return [
        Incident(
            id=row.pk,
            title=row.title,
            status=row.status,
            impact=row.impact if row.outage.services.all() else NO_IMPACT,
            started_at=row.outage.starts_at,
            created_at=row.published_at,
            updated_at=max([row.published_at, *(u.at for u in updates[row.pk])]),
            resolved_at=row.resolved_at if row.status == IncidentStatus.RESOLVED else None,
            updates=updates[row.pk],
            affected=[Affected(service=s, impact=row.outage.impact_of(s.pk)) for s in row.outage.services.all()],
        )
        for row in rows
    ]


def _loaded(queryset: QuerySet[IncidentRow]) -> QuerySet[IncidentRow]:
    services = Service.objects.only("pk", "name", "slug").order_by("name")
    return queryset.select_related("outage").prefetch_related(Prefetch("outage__services", queryset=services))


def incidents_public(*, now: datetime, since: datetime | None = None, limit: int | None = None) -> list[Incident]:
    """Public incidents, newest first: all (the latest `limit`), or with `since` those not resolved
    and those resolved after it."""
    queryset = _published(now)
    if since is not None:
        queryset = queryset.filter(~Q(status=IncidentStatus.RESOLVED) | Q(resolved_at__gt=min(since, now)))
    queryset = _loaded(_newest_first(queryset))
    return _build(list(queryset[:limit] if limit else queryset), now)


def incident_public(*, pk: int, now: datetime) -> Incident | None:
    """One public incident, or None (never recorded, a draft, or customer-scoped)."""
    found = list(_loaded(_published(now).filter(pk=pk)))
    return _build(found, now)[0] if found else None


def incidents_history(*, now: datetime, page: int | str | None) -> tuple[Page, list[Incident]]:
    """One page of every public incident, newest first (a bad or too large page number gives the
    nearest page that exists)."""
    paginator = Paginator(_newest_first(_published(now)).values_list("pk", flat=True), HISTORY_PER_PAGE)
    found = paginator.get_page(page)
    rows = list(_loaded(_newest_first(IncidentRow.objects.filter(pk__in=list(found.object_list)))))
    return found, _build(rows, now)
