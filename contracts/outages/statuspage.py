"""The status page as Atlassian Statuspage's public API v2 serves it (what status aggregators and
chat integrations already read): its field names, and its values of component status, indicator,
incident status and impact. Ours are translated here and nowhere else.

Everything is derived from the public record (contracts.outages.public, the scheduled windows), so
nothing customer-scoped appears. No field holds the moment of the request: the same state gives the
same bytes (and the same ETag) until something changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

from django.conf import settings
from django.db.models import Prefetch, Q
from django.urls import reverse

from ..choices import Impact
from ..models import IncidentStatus, MaintenanceWindow, Outage, Service
from .public import NO_IMPACT, RECENT, Incident, incidents_public, public_outages
from .status import State, service_state

PAGE_ID = "sla-portal"
PAGE_NAME = "SLA Portal"
LATEST = 50  # incidents.json and scheduled-maintenances.json: the latest 50, as Statuspage's


class Component:
    OPERATIONAL = "operational"
    DEGRADED = "degraded_performance"
    PARTIAL = "partial_outage"
    MAJOR = "major_outage"
    MAINTENANCE = "under_maintenance"
    SEVERITY = [MAJOR, PARTIAL, MAINTENANCE, DEGRADED, OPERATIONAL]  # most severe first


BY_IMPACT = {NO_IMPACT: Component.OPERATIONAL, Impact.DEGRADED: Component.DEGRADED,
             Impact.PARTIAL: Component.PARTIAL, Impact.MAJOR: Component.MAJOR}  # fmt: skip
BY_STATE = {State.OUTAGE: Component.MAJOR, State.PARTIAL: Component.PARTIAL, State.MAINTENANCE: Component.MAINTENANCE,
            State.DEGRADED: Component.DEGRADED, State.OPERATIONAL: Component.OPERATIONAL}  # fmt: skip
BY_WINDOW = {MaintenanceWindow.Impact.DOWNTIME: Component.MAINTENANCE,
             MaintenanceWindow.Impact.DEGRADED: Component.DEGRADED,
             MaintenanceWindow.Impact.NONE: Component.OPERATIONAL}  # fmt: skip
# An incident's impact (its worst on a service): none, minor, major, critical.
INCIDENT_IMPACT = {NO_IMPACT: "none", Impact.DEGRADED: "minor", Impact.PARTIAL: "major", Impact.MAJOR: "critical"}
# The page's indicator and its words, from its worst component (Statuspage's own phrases).
INDICATOR = {
    Component.OPERATIONAL: ("none", "All Systems Operational"),
    Component.DEGRADED: ("minor", "Minor Service Outage"),
    Component.MAINTENANCE: ("minor", "Service Under Maintenance"),
    Component.PARTIAL: ("major", "Partial System Outage"),
    Component.MAJOR: ("critical", "Major System Outage"),
}


def stamp(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with milliseconds, e.g. "2026-11-02T12:00:00.000Z"."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _worst(statuses) -> str:
    return min(statuses, key=Component.SEVERITY.index, default=Component.OPERATIONAL)


def window_status(window: MaintenanceWindow, now: datetime) -> str:
    if now < window.starts_at:
        return "scheduled"
    return "in_progress" if now < window.ends_at else "completed"


@dataclass
class Snapshot:
    """What every endpoint is drawn from, read once per request in a fixed number of queries."""

    now: datetime
    services: list[Service]
    incidents: list[Incident]  # open ones and those resolved in the last 90 days, newest first
    windows: list[MaintenanceWindow]  # the latest 50 scheduled, plus every one in progress or ahead
    ongoing: list[Outage]  # public outages going on now, with their services

    @cached_property
    def latest(self) -> list[Incident]:
        """incidents.json: the latest 50 public incidents, however old."""
        return incidents_public(now=self.now, limit=LATEST)

    def component_status(self, service: Service) -> str:
        # The HTML page's state (one rule, status.service_state): the outages going on now (an
        # incident or not yet) and the windows in progress.
        outages = [o for o in self.ongoing if service in o.services.all()]
        windows = [w for w in self.windows if service.pk in {s.pk for s in w.services.all()}]
        return BY_STATE[service_state(self.now, service.pk, outages, windows)]

    def component_changed_at(self, service: Service) -> datetime:
        """The last moment its status changed (an incident's update, a window starting or ending),
        or the start of the 90 days the page speaks for."""
        moments = [i.updated_at for i in self.incidents if any(a.service.pk == service.pk for a in i.affected)]
        for w in self.windows:
            if service.pk in {s.pk for s in w.services.all()}:
                moments += [m for m in (w.starts_at, w.ends_at) if m <= self.now]
        return max(moments, default=self.since)

    @property
    def next_move(self) -> datetime | None:
        """The next moment a window starts or ends: the documents change then by the clock alone
        (statuses, components, the windows' updates), so no cache may keep them past it."""
        return min((m for w in self.windows for m in (w.starts_at, w.ends_at) if m > self.now), default=None)

    @property
    def since(self) -> datetime:
        day = (self.now - RECENT).astimezone(UTC).date()
        return datetime(day.year, day.month, day.day, tzinfo=UTC)


def snapshot(*, now: datetime) -> Snapshot:
    services = list(Service.objects.only("pk", "name", "slug", "description").order_by("name"))
    with_services = Prefetch("services", queryset=Service.objects.only("pk", "name", "slug").order_by("name"))
    live = MaintenanceWindow.objects.filter(status=MaintenanceWindow.Status.SCHEDULED)
    latest = list(live.order_by("-starts_at", "-pk").values_list("pk", flat=True)[:LATEST])
    ahead = list(live.filter(ends_at__gt=now).values_list("pk", flat=True))
    windows = list(
        MaintenanceWindow.objects.filter(pk__in={*latest, *ahead})
        .prefetch_related(with_services)
        .order_by("-starts_at", "-pk")
    )
    incidents = incidents_public(now=now, since=now - RECENT, limit=None)
    ongoing = list(
        public_outages(now=now).filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now)).prefetch_related(with_services)
    )
    return Snapshot(now=now, services=services, incidents=incidents, windows=windows, ongoing=ongoing)


# --- The documents --------------------------------------------------------------------------------
def status_url() -> str:
    return settings.PORTAL_BASE_URL + reverse("status")


def _page(snap: Snapshot) -> dict:
    moments = [snap.component_changed_at(s) for s in snap.services]
    moments += [i.updated_at for i in snap.incidents] + [w.published_at for w in snap.windows]
    return {
        "id": PAGE_ID,
        "name": PAGE_NAME,
        "url": status_url(),
        "time_zone": "Etc/UTC",
        "updated_at": stamp(max(moments, default=snap.since)),
    }


def _component(snap: Snapshot, service: Service, position: int) -> dict:
    return {
        "id": service.slug,
        "name": service.name,
        "status": snap.component_status(service),
        "created_at": stamp(snap.since),
        "updated_at": stamp(snap.component_changed_at(service)),
        "position": position,
        "description": service.description or None,
        "group_id": None,
        "group": False,
        "only_show_if_degraded": False,
        "showcase": True,
        "start_date": None,
        "page_id": PAGE_ID,
    }


def _components(snap: Snapshot, services) -> list[dict]:
    positions = {s.pk: n for n, s in enumerate(snap.services, start=1)}
    by_pk = {s.pk: s for s in snap.services}
    return [_component(snap, by_pk.get(s.pk, s), positions.get(s.pk, 0)) for s in services]


def _incident(snap: Snapshot, incident: Incident) -> dict:
    codes = [
        {"code": a.service.slug, "name": a.service.name, "old_status": Component.OPERATIONAL,
         "new_status": BY_IMPACT[a.impact]}
        for a in incident.affected
    ]  # fmt: skip
    first = incident.updates[-1].id if incident.updates else None
    updates = []
    for u in incident.updates:
        if u.id == first:
            affected = codes
        elif u.status == IncidentStatus.RESOLVED:
            affected = [{**c, "old_status": c["new_status"], "new_status": Component.OPERATIONAL} for c in codes]
        else:
            affected = []
        updates.append(
            {"id": str(u.id), "status": u.status, "body": u.body, "incident_id": str(incident.id),
             "created_at": stamp(u.at), "updated_at": stamp(u.at), "display_at": stamp(u.at),
             "affected_components": affected}
        )  # fmt: skip
    return {
        "id": str(incident.id),
        "name": incident.title,
        "status": incident.status,
        "impact": INCIDENT_IMPACT[incident.impact],
        "created_at": stamp(incident.created_at),
        "updated_at": stamp(incident.updated_at),
        "monitoring_at": stamp(incident.first_at(IncidentStatus.MONITORING)),
        "resolved_at": stamp(incident.resolved_at),
        "started_at": stamp(incident.started_at),
        "shortlink": settings.PORTAL_BASE_URL + reverse("status-incident", args=[incident.id]),
        "page_id": PAGE_ID,
        "incident_updates": updates,
        "components": _components(snap, incident.services),
    }


# The updates a window's moves post by themselves, as Statuspage posts them (its own default words).
MOVES = {
    "in_progress": "Scheduled maintenance is currently in progress. We will provide updates as necessary.",
    "completed": "The scheduled maintenance has been completed.",
}
ORDER = ("scheduled", "in_progress", "completed")


def _maintenance_updates(snap: Snapshot, window: MaintenanceWindow, services: list[Service]) -> list[dict]:
    """Newest first: the current revision's update (its description, posted when it was published,
    with the window's status at that moment), then one update per move the window has made by now
    (in progress at its start, completed at its end; fixed words, ids m<pk>-<rev>-<status>). Each
    appears once its moment has passed, so the document, and its ETag, change at those moments."""
    codes = [
        {"code": s.slug, "name": s.name, "old_status": Component.OPERATIONAL, "new_status": BY_WINDOW[window.impact]}
        for s in services
    ]
    ended = [{**c, "old_status": c["new_status"], "new_status": Component.OPERATIONAL} for c in codes]
    # The revision's own update carries the revision; the start and the end, one each whatever the
    # corrections, keep their ids (an integration posts a new id as news: a correction while running
    # re-posted "in progress").
    posted = [(window.published_at, window_status(window, window.published_at), window.description, codes,
               f"m{window.pk}-{window.revision}")]  # fmt: skip
    moves = (("in_progress", window.starts_at, []), ("completed", window.ends_at, ended))
    posted += [(at, status, MOVES[status], affected, f"m{window.pk}-{status}") for status, at, affected in moves
               if at <= snap.now]  # fmt: skip
    posted.sort(key=lambda p: (p[0], ORDER.index(p[1])), reverse=True)
    return [
        {"id": update_id, "status": status, "body": body,
         "incident_id": f"m{window.pk}", "created_at": stamp(at), "updated_at": stamp(at), "display_at": stamp(at),
         "affected_components": affected}
        for at, status, body, affected, update_id in posted
    ]  # fmt: skip


def _maintenance(snap: Snapshot, window: MaintenanceWindow) -> dict:
    status = window_status(window, snap.now)
    services = list(window.services.all())
    changed = [window.published_at, *(m for m in (window.starts_at, window.ends_at) if m <= snap.now)]
    return {
        "id": f"m{window.pk}",
        "name": window.title,
        "status": status,
        "impact": "maintenance",
        "created_at": stamp(window.published_at),
        "updated_at": stamp(max(changed)),
        "monitoring_at": None,
        "resolved_at": stamp(window.ends_at) if status == "completed" else None,
        "started_at": stamp(window.starts_at) if status != "scheduled" else None,
        "shortlink": f"{status_url()}#maintenance-{window.pk}",
        "page_id": PAGE_ID,
        "scheduled_for": stamp(window.starts_at),
        "scheduled_until": stamp(window.ends_at),
        "incident_updates": _maintenance_updates(snap, window, services),
        "components": _components(snap, services),
    }


def status_document(snap: Snapshot) -> dict:
    indicator, description = INDICATOR[_worst(snap.component_status(s) for s in snap.services)]
    return {"indicator": indicator, "description": description}


def document(snap: Snapshot, name: str) -> dict:
    """The JSON document `name` ("summary", "status", "components", "incidents", ...)."""
    page = _page(snap)
    unresolved = [_incident(snap, i) for i in snap.incidents if not i.resolved]
    windows = {
        "all": snap.windows[:LATEST],
        "upcoming": [w for w in snap.windows if window_status(w, snap.now) == "scheduled"],
        "active": [w for w in snap.windows if window_status(w, snap.now) == "in_progress"],
    }
    if name == "summary":
        ahead = sorted(windows["upcoming"] + windows["active"], key=lambda w: w.starts_at)
        return {
            "page": page,
            "components": _components(snap, snap.services),
            "incidents": unresolved,
            "scheduled_maintenances": [_maintenance(snap, w) for w in ahead],
            "status": status_document(snap),
        }
    if name == "status":
        return {"page": page, "status": status_document(snap)}
    if name == "components":
        return {"page": page, "components": _components(snap, snap.services)}
    if name == "incidents":
        return {"page": page, "incidents": [_incident(snap, i) for i in snap.latest]}
    if name == "incidents/unresolved":
        return {"page": page, "incidents": unresolved}
    kind = name.removeprefix("scheduled-maintenances").lstrip("/") or "all"
    listed = sorted(windows[kind], key=lambda w: w.starts_at, reverse=kind == "all")
    return {"page": page, "scheduled_maintenances": [_maintenance(snap, w) for w in listed]}


DOCUMENTS = (
    "summary", "status", "components", "incidents", "incidents/unresolved", "scheduled-maintenances",
    "scheduled-maintenances/upcoming", "scheduled-maintenances/active",
)  # fmt: skip
