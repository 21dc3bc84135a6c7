"""The public record of incidents: what the status page, its history, its Atom feed and its
Statuspage-compatible JSON show. One read for all four, so that they can never disagree, and so
that nothing customer-scoped can reach any of them: every query here starts from
`_public_outages()`.

An incident's timeline is newest first. Its statuses and impacts are ours (IncidentStatus,
Impact); contracts.outages.statuspage translates them for the JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.paginator import Page, Paginator
from django.db.models import Prefetch, Q, QuerySet

from ..models import Outage, OutageUpdate, Service

RECENT = timedelta(days=90)  # past incidents on the status page itself; the history page has all
HISTORY_PER_PAGE = 20


class IncidentStatus:
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"
    LABELS = {
        INVESTIGATING: "Investigating",
        IDENTIFIED: "Identified",
        MONITORING: "Monitoring",
        RESOLVED: "Resolved",
    }


class Impact:
    """An incident's impact on one service; the incident's own is its worst."""

    NONE = "none"
    DEGRADED = "degraded"
    PARTIAL = "partial"
    MAJOR = "major"
    ORDER = [NONE, DEGRADED, PARTIAL, MAJOR]
    LABELS = {NONE: "No impact", DEGRADED: "Degraded performance", PARTIAL: "Partial outage", MAJOR: "Major outage"}

    @classmethod
    def worst(cls, impacts) -> str:
        return max(impacts, key=cls.ORDER.index, default=cls.NONE)


@dataclass(frozen=True)
class Update:
    id: int
    status: str
    body: str
    at: datetime

    @property
    def status_label(self) -> str:
        return IncidentStatus.LABELS.get(self.status, self.status.title())


@dataclass(frozen=True)
class Affected:
    service: Service
    impact: str

    @property
    def impact_label(self) -> str:
        return Impact.LABELS[self.impact]


@dataclass
class Incident:
    id: int
    title: str
    status: str
    started_at: datetime
    created_at: datetime
    resolved_at: datetime | None
    description: str = ""
    updates: list[Update] = field(default_factory=list)  # newest first
    affected: list[Affected] = field(default_factory=list)

    @property
    def impact(self) -> str:
        return Impact.worst(a.impact for a in self.affected)

    @property
    def impact_label(self) -> str:
        return Impact.LABELS[self.impact]

    @property
    def status_label(self) -> str:
        return IncidentStatus.LABELS.get(self.status, self.status.title())

    @property
    def resolved(self) -> bool:
        return self.status == IncidentStatus.RESOLVED

    @property
    def updated_at(self) -> datetime:
        moments = [self.created_at, *(u.at for u in self.updates)]
        if self.resolved_at:
            moments.append(self.resolved_at)
        return max(moments)

    def first_at(self, status: str) -> datetime | None:
        """When the incident first reached `status` (its updates say so), None if it never did."""
        times = [u.at for u in self.updates if u.status == status]
        return min(times) if times else None

    @property
    def services(self) -> list[Service]:
        return [a.service for a in self.affected]


# --- The reads --------------------------------------------------------------------------------------
def public_outages(*, now: datetime) -> QuerySet[Outage]:
    """Outages the public may see: started by now. (Customer-scoped ones are never public.)"""
    return Outage.objects.filter(starts_at__lte=now)


def outage_impact(outage: Outage, service: Service) -> str:
    return Impact.MAJOR


def _build(outages: list[Outage], now: datetime) -> list[Incident]:
    """Incidents of these outages, with their updates and services in two more queries."""
    updates: dict[int, list[Update]] = {o.pk: [] for o in outages}
    if outages:
        for row in OutageUpdate.objects.filter(outage_id__in=list(updates)).order_by("-at", "-pk"):
            updates[row.outage_id].append(Update(id=row.pk, status="", body=row.body, at=row.at))
    out = []
    for outage in outages:
        resolved = outage.ends_at is not None and outage.ends_at <= now
        status = IncidentStatus.RESOLVED if resolved else IncidentStatus.INVESTIGATING
        out.append(
            Incident(
                id=outage.pk,
                title=outage.title,
                status=status,
                started_at=outage.starts_at,
                created_at=outage.created_at,
                resolved_at=outage.ends_at if resolved else None,
                description=outage.description,
                updates=[Update(id=u.id, status=status, body=u.body, at=u.at) for u in updates[outage.pk]],
                affected=[Affected(service=s, impact=Impact.MAJOR) for s in outage.services.all()],
            )
        )
    return out


def _with_services(queryset: QuerySet[Outage]) -> QuerySet[Outage]:
    return queryset.prefetch_related(Prefetch("services", queryset=Service.objects.only("pk", "name", "slug")))


def incidents_public(*, now: datetime, since: datetime | None = None, limit: int | None = None) -> list[Incident]:
    """Public incidents, newest first: those still open, and (with `since`) those that ended after it."""
    queryset = public_outages(now=now)
    if since is not None:
        queryset = queryset.filter(Q(ends_at__isnull=True) | Q(ends_at__gt=min(since, now)))
    queryset = _with_services(queryset.order_by("-starts_at", "-pk"))
    return _build(list(queryset[:limit] if limit else queryset), now)


def incidents_unresolved(*, now: datetime) -> list[Incident]:
    queryset = public_outages(now=now).filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now))
    return _build(list(_with_services(queryset.order_by("-starts_at", "-pk"))), now)


def incident_public(*, pk: int, now: datetime) -> Incident | None:
    """One public incident, or None (never recorded, not yet started, or not public)."""
    found = list(_with_services(public_outages(now=now).filter(pk=pk)))
    return _build(found, now)[0] if found else None


def incidents_history(*, now: datetime, page: int | str | None) -> tuple[Page, list[Incident]]:
    """One page of every public incident, newest first (a bad or too large page number gives the
    nearest page that exists)."""
    paginator = Paginator(
        public_outages(now=now).order_by("-starts_at", "-pk").values_list("pk", flat=True), HISTORY_PER_PAGE
    )
    found = paginator.get_page(page)
    outages = list(_with_services(Outage.objects.filter(pk__in=list(found.object_list)).order_by("-starts_at", "-pk")))
    return found, _build(outages, now)
