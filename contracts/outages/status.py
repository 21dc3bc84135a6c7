"""The read behind the public status page.

It counts every public outage, whatever its cause, on the services where its impact is down for
everyone (major: contracts.choices.DOWN_FOR_EVERYONE, the rule the uptime figures follow; a partial
outage is down only for the contracts staff scope it to, which the public page does not know, and a
degraded one for no one), and every downtime maintenance window as down: it shows what happened, not
what a contract excludes. A partial or degraded outage still counts in a day's hover text. Its days are UTC days, and its arithmetic is
portal.domain.uptime's, never written again here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db.models import Prefetch, Q

from portal.domain import formats
from portal.domain.dates import day_bounds
from portal.domain.uptime import Interval, Uptime, daily_uptime, period_uptime

from ..choices import DOWN_FOR_EVERYONE, Impact
from ..models import MaintenanceWindow, Outage, Service

# --- The public status page -----------------------------------------------------------------------
STATUS_DAYS = 90
UPCOMING = timedelta(days=14)


class State:
    """A service's state now, most severe first."""

    OUTAGE = "outage"
    PARTIAL = "partial"
    MAINTENANCE = "maintenance"
    DEGRADED = "degraded"
    OPERATIONAL = "operational"
    LABELS = {
        OUTAGE: "Outage",
        PARTIAL: "Partial outage",
        MAINTENANCE: "Under maintenance",
        DEGRADED: "Degraded performance",
        OPERATIONAL: "Operational",
    }
    SEVERITY = [OUTAGE, PARTIAL, MAINTENANCE, DEGRADED, OPERATIONAL]


def bar_level(uptime: Uptime) -> str:
    """The colour band of a day: 100% (green), >= 99% (yellow), >= 95% (orange), below (red)."""
    if uptime.down_minutes == 0:
        return "full"
    percent = uptime.percent
    if percent >= 99:
        return "minor"
    if percent >= 95:
        return "partial"
    return "major"


def percent_text(uptime: Uptime) -> str:
    """Rounded for display only: 1410/1440 -> "97.92"; a period with downtime never reads 100
    (3 minutes in 90 days is 99.9977: "99.99", not "100.00")."""
    if uptime.down_minutes == 0:
        return "100"
    text = formats.rounded(uptime.percent, 2)
    return "99.99" if text == "100.00" else text


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class DayBar:
    day: date
    uptime: Uptime
    outages: int
    maintenance: int

    @property
    def level(self) -> str:
        return bar_level(self.uptime)

    @property
    def percent(self) -> str:
        return percent_text(self.uptime)

    @property
    def label(self) -> str:
        """The bar's hover text, e.g. "2026-11-01: 99.93% up, 1 outage"."""
        parts = [f"{self.day.isoformat()}: {self.percent}% up"]
        if self.outages or not self.maintenance:
            parts.append(_plural(self.outages, "outage") if self.outages else "no outages")
        if self.maintenance:
            parts.append(_plural(self.maintenance, "maintenance window"))
        return ", ".join(parts)


@dataclass
class ServiceStatus:
    service: Service
    state: str
    bars: list[DayBar]
    overall: Uptime

    @property
    def state_label(self) -> str:
        return State.LABELS[self.state]

    @property
    def overall_percent(self) -> str:
        return percent_text(self.overall)

    @property
    def bad_days(self) -> list[DayBar]:
        return [bar for bar in self.bars if bar.uptime.down_minutes]


@dataclass
class StatusPage:
    now: datetime
    first_day: date
    services: list[ServiceStatus]
    maintenance: list[MaintenanceWindow]  # in progress or starting within 14 days; with .service_list

    @property
    def state(self) -> str:
        states = {s.state for s in self.services}
        return next((s for s in State.SEVERITY if s in states), State.OPERATIONAL)


def service_state(
    now: datetime, service_id: int, outages: Sequence[Outage], windows: Sequence[MaintenanceWindow]
) -> str:
    """A service's State now from its public outages and windows (the HTML page's and the Statuspage
    JSON's, one rule): an outage going on says what its impact on this service is (major: outage,
    partial: partial outage, degraded: degraded performance); then a window in progress."""
    impacts = {
        o.impact_of(service_id) for o in outages if o.starts_at <= now and (o.ends_at is None or o.ends_at > now)
    }
    if Impact.MAJOR in impacts:
        return State.OUTAGE
    if Impact.PARTIAL in impacts:
        return State.PARTIAL
    current = [w for w in windows if w.starts_at <= now < w.ends_at]
    if any(w.impact == MaintenanceWindow.Impact.DOWNTIME for w in current):
        return State.MAINTENANCE
    if Impact.DEGRADED in impacts or any(w.impact == MaintenanceWindow.Impact.DEGRADED for w in current):
        return State.DEGRADED
    return State.OPERATIONAL


def _days_touched(start: datetime, end: datetime, first: date, last: date) -> range:
    """Ordinals of the UTC days in [first, last] that [start, end) touches."""
    lo = max(start.astimezone(UTC).date(), first)
    hi = min((end - timedelta(microseconds=1)).astimezone(UTC).date(), last)
    return range(lo.toordinal(), hi.toordinal() + 1)


def _bars(
    days: list[date], events: Sequence[Interval], outages: Sequence[Interval], windows: Sequence[Interval]
) -> list[DayBar]:
    """`events`: every outage (the hover text counts them); `outages`: the spans down for everyone."""
    counts = {kind: dict.fromkeys((d.toordinal() for d in days), 0) for kind in ("outages", "maintenance")}
    for kind, intervals in (("outages", events), ("maintenance", windows)):
        for start, end in intervals:
            for ordinal in _days_touched(start, end, days[0], days[-1]):
                counts[kind][ordinal] += 1
    uptimes = daily_uptime(days, "UTC", down=[*outages, *windows])
    return [
        DayBar(
            day=d, uptime=u, outages=counts["outages"][d.toordinal()], maintenance=counts["maintenance"][d.toordinal()]
        )
        for d, u in zip(days, uptimes, strict=True)
    ]


def status_page(*, now: datetime) -> StatusPage:
    """Every service's state now, its last 90 UTC days and the maintenance ahead: in a fixed number
    of queries whatever the history's size (services; outages and their services; windows and their
    services), bucketed in Python. (The incidents are contracts.outages.public's.)
    Nothing here knows a customer: no organisation or contract is read."""
    today = now.astimezone(UTC).date()
    days = [today - timedelta(days=n) for n in range(STATUS_DAYS - 1, -1, -1)]
    since = day_bounds(days[0], "UTC")[0]

    services = list(Service.objects.only("pk", "name", "slug"))
    outages = list(
        Outage.objects.filter(Q(ends_at__isnull=True) | Q(ends_at__gt=since), starts_at__lte=now)
        .exclude(customer_scoped=True)  # never public: it concerns chosen contracts only
        .only("pk", "title", "description", "starts_at", "ends_at", "impacts")
        .prefetch_related(Prefetch("services", queryset=Service.objects.only("pk", "name")))
        .order_by("starts_at")
    )
    windows = list(
        MaintenanceWindow.objects.filter(
            status=MaintenanceWindow.Status.SCHEDULED, ends_at__gt=since, starts_at__lt=now + UPCOMING
        )
        .only("pk", "title", "description", "starts_at", "ends_at", "impact")
        .prefetch_related(Prefetch("services", queryset=Service.objects.only("pk", "name")))
        .order_by("starts_at")
    )

    by_service: dict[int, tuple[list[Outage], list[MaintenanceWindow]]] = {s.pk: ([], []) for s in services}
    for outage in outages:
        outage.service_list = list(outage.services.all())
        for s in outage.service_list:
            by_service[s.pk][0].append(outage)
    for window in windows:
        window.service_list = list(window.services.all())
        for s in window.service_list:
            by_service[s.pk][1].append(window)

    period = (since, day_bounds(today, "UTC")[1])
    statuses = []
    for service in services:
        own_outages, own_windows = by_service[service.pk]
        # An ongoing outage is down until now; nothing after now has happened yet.
        events = [(o.starts_at, min(o.ends_at or now, now)) for o in own_outages]  # counted, down or not
        down = [
            (o.starts_at, min(o.ends_at or now, now))
            for o in own_outages
            if o.impact_of(service.pk) in DOWN_FOR_EVERYONE
        ]
        maintenance = [
            (w.starts_at, min(w.ends_at, now))
            for w in own_windows
            if w.impact == MaintenanceWindow.Impact.DOWNTIME and w.starts_at < now
        ]
        statuses.append(
            ServiceStatus(
                service=service,
                state=service_state(now, service.pk, own_outages, own_windows),
                bars=_bars(
                    days,
                    [i for i in events if i[0] < i[1]],
                    [i for i in down if i[0] < i[1]],
                    [i for i in maintenance if i[0] < i[1]],
                ),
                overall=period_uptime(*period, down=[*down, *maintenance]),
            )
        )

    return StatusPage(
        now=now,
        first_day=days[0],
        services=statuses,
        maintenance=[w for w in windows if w.ends_at > now],
    )
