"""Outages: writes (the audited cause, alerts from monitoring, per-service webhook tokens) and the
read behind the public status page.

The status page counts every outage, whatever its cause, and every downtime maintenance window
as down: it shows what happened, not what a contract excludes. Its days are UTC days, and its
arithmetic is portal.domain.uptime's, never written again here."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Prefetch, Q
from django.utils import timezone

from portal.core.audit import audit, audit_entry
from portal.domain import formats
from portal.domain.dates import day_bounds
from portal.domain.uptime import Interval, Uptime, daily_uptime, period_uptime
from portal.models import AuditEntry

from .choices import Cause
from .evidence import OUTAGE, Evidence, EvidenceChange, evidence_changed
from .models import MaintenanceWindow, Outage, OutageCauseChange, OutageUpdate, Service


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


def _label(outage: Outage) -> str:
    return f"Outage {outage.pk} “{outage.title}”"


def _service_ids(services) -> frozenset[int]:
    return frozenset(s if isinstance(s, int) else s.pk for s in services)


def _check(starts_at: datetime, ends_at: datetime | None, sids: frozenset[int]) -> None:
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
                OUTAGE, stored.pk, f"{_label(stored)}: cause changed from “{Cause(old).label}” to “{Cause(cause).label}”",
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
        [EvidenceChange(OUTAGE, outage.pk, f"{_label(outage)} recorded by staff", None,
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
        [EvidenceChange(OUTAGE, current.pk, f"{_label(current)} changed by staff ({', '.join(what)})", before, after)],
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
    change = EvidenceChange(OUTAGE, current.pk, f"{_label(current)} deleted by staff", before, None)
    current.delete()
    evidence_changed([change], now=now)


# --- Webhook tokens -------------------------------------------------------------------------------
def webhook_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def service_rotate_webhook_token(*, service: Service) -> str:
    """A new bearer token for the service's monitoring webhook. Only its SHA-256 is stored; the
    token itself is returned once, to be shown once. The previous token stops working at once."""
    token = secrets.token_urlsafe(32)
    service.webhook_token_hash = webhook_token_hash(token)
    service.save(update_fields=["webhook_token_hash"])
    return token


def service_for_webhook_token(*, token: str) -> Service | None:
    """The service whose webhook token this is, else None. Every stored hash is compared, in
    constant time each, so the answer's timing does not depend on which service (if any) matched."""
    if not token:
        return None
    digest = webhook_token_hash(token)
    found = None
    for service in Service.objects.exclude(webhook_token_hash="").only("pk", "slug", "name", "webhook_token_hash"):
        if hmac.compare_digest(service.webhook_token_hash, digest):
            found = service
    return found


# --- Alerts from monitoring -----------------------------------------------------------------------
# A new outage from an alert must have started at most ALERT_MAX_AGE ago (older ones are recorded
# by staff, in the admin) and may start or end at most ALERT_CLOCK_SKEW after our clock says now.
# An outage from 2000 to 9999 was taken as it came and turned a month's credit into 75,000 KES.
ALERT_MAX_AGE = timedelta(days=7)
ALERT_CLOCK_SKEW = timedelta(minutes=5)
ALERT_BATCH = 400  # keys per read: (fingerprint, start) pairs, two parameters each


@dataclass(frozen=True)
class AlertEvent:
    """One alert of an Alertmanager notification, well formed (contracts.webhooks checked its shape)."""

    index: int  # its place in the notification, to say which alert was refused
    service: str  # the `service` label: a service's slug
    firing: bool
    fingerprint: str
    starts_at: datetime
    ends_at: datetime | None  # resolved alerts; None for Alertmanager's zero time (still firing)
    title: str


@dataclass(frozen=True)
class AlertRefusal:
    index: int
    fingerprint: str
    service: str
    reason: str


@dataclass
class AlertResult:
    opened: list[int] = field(default_factory=list)  # firing alerts that opened an outage
    closed: list[int] = field(default_factory=list)  # resolved alerts that closed an open one
    recorded: list[int] = field(default_factory=list)  # resolved alerts never seen firing: created closed
    unchanged: int = 0  # repeat deliveries
    refused: list[AlertRefusal] = field(default_factory=list)  # in the notification's order


ALERT_WORDS = {"opened": "opened by an alert", "closed": "closed by an alert", "recorded": "recorded by an alert"}


def _closing_end(event: AlertEvent, now: datetime) -> datetime:
    """The end a resolved alert gives the open outage it matches. Alertmanager may send one whose
    endsAt is not after its startsAt (or the zero time): an outage must end after it starts, and
    any minute an alert touched is a down minute. Nothing has ended after now."""
    floor = event.starts_at + timedelta(minutes=1)
    if event.ends_at is None or event.ends_at <= event.starts_at:
        return floor
    return max(min(event.ends_at, now), floor)


def _implausible(event: AlertEvent, now: datetime) -> str | None:
    """Why an alert that matches no outage cannot open or record one, else None."""
    if event.starts_at > now + ALERT_CLOCK_SKEW:
        return f"startsAt {event.starts_at:%Y-%m-%dT%H:%M:%SZ} is in the future."
    if event.starts_at < now - ALERT_MAX_AGE:
        return (
            f"startsAt {event.starts_at:%Y-%m-%dT%H:%M:%SZ} is more than {ALERT_MAX_AGE.days} days ago: "
            "an outage that old is recorded by staff."
        )
    if event.firing:
        return None
    if event.ends_at is None:
        return "A resolved alert needs its endsAt."
    if event.ends_at <= event.starts_at:
        return f"endsAt {event.ends_at:%Y-%m-%dT%H:%M:%SZ} is not after startsAt."
    if event.ends_at > now + ALERT_CLOCK_SKEW:
        return f"endsAt {event.ends_at:%Y-%m-%dT%H:%M:%SZ} is in the future."
    return None


def _outages_of_alerts(keys: set[tuple[str, datetime]]) -> dict[tuple[str, datetime], Outage]:
    """The outages with these (fingerprint, start) keys, locked, each with `.service_ids`: in
    batches, two queries a batch whatever the number of alerts in it."""
    found: dict[tuple[str, datetime], Outage] = {}
    ordered = sorted(keys)
    for i in range(0, len(ordered), ALERT_BATCH):
        batch = ordered[i : i + ALERT_BATCH]
        rows = (
            Outage.objects.select_for_update()
            .exclude(fingerprint="")  # the condition of the unique index on (fingerprint, starts_at)
            .filter(fingerprint__in={k[0] for k in batch}, starts_at__in={k[1] for k in batch})
            .only("pk", "title", "cause", "starts_at", "ends_at", "fingerprint")
        )
        wanted = set(batch)
        for outage in rows:
            if (outage.fingerprint, outage.starts_at) in wanted:  # the IN lists also match other pairs
                outage.service_ids = set()
                found[(outage.fingerprint, outage.starts_at)] = outage
    by_pk = {o.pk: o for o in found.values()}
    pks = sorted(by_pk)
    through = Outage.services.through
    for i in range(0, len(pks), 2 * ALERT_BATCH):
        for outage_id, service_id in through.objects.filter(outage_id__in=pks[i : i + 2 * ALERT_BATCH]).values_list(
            "outage_id", "service_id"
        ):
            by_pk[outage_id].service_ids.add(service_id)
    return found


def _set_ends(outages: list[Outage]) -> None:
    """Each outage's ends_at written by one statement run for them all (executemany). Django's
    bulk_update writes a CASE over every row of a batch, and building it in Python was most of a
    large delivery's time inside the transaction."""
    ops = connection.ops
    table, pk = ops.quote_name(Outage._meta.db_table), ops.quote_name(Outage._meta.pk.column)
    ends = ops.quote_name(Outage._meta.get_field("ends_at").column)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET {ends} = %s WHERE {pk} = %s",  # noqa: S608 - names from the model
            [(ops.adapt_datetimefield_value(o.ends_at), o.pk) for o in outages],
        )


def _record_alerts(alerts: list[tuple[AlertEvent, Service]], via: Service, now: datetime) -> AlertResult:
    result = AlertResult()
    outages = _outages_of_alerts({(a.fingerprint, a.starts_at) for a, _ in alerts})
    new: list[tuple[Outage, Service]] = []
    closing: list[Outage] = []  # open outages of earlier deliveries that an alert closes
    outcome: list[tuple[str, Outage]] = []  # what each alert did: opened, recorded or closed
    for event, service in alerts:
        key = (event.fingerprint, event.starts_at)
        outage = outages.get(key)
        if outage is None:
            if reason := _implausible(event, now):
                result.refused.append(AlertRefusal(event.index, event.fingerprint, event.service, reason))
                continue
            outage = Outage(
                title=event.title, starts_at=event.starts_at, ends_at=None if event.firing else event.ends_at,
                cause=Cause.UNPLANNED, source=Outage.Source.ALERTMANAGER, fingerprint=event.fingerprint,
            )  # fmt: skip
            outage.service_ids, outage.is_new = {service.pk}, True
            outages[key] = outage
            new.append((outage, service))
            outcome.append(("opened" if event.firing else "recorded", outage))
            continue
        if service.pk not in outage.service_ids:
            # An outage is an alert's only within the alert's service: the same fingerprint and start
            # on another service's outage is not this alert's (and a token cannot touch it).
            reason = f"An outage of another service has this fingerprint and startsAt (outage {outage.pk})."
            result.refused.append(AlertRefusal(event.index, event.fingerprint, event.service, reason))
            continue
        if event.firing or outage.ends_at is not None:
            result.unchanged += 1  # a repeat delivery, or closed already (by an earlier alert or staff)
            continue
        outage.ends_at = _closing_end(event, now)  # an alert matching an open outage is always taken
        if not getattr(outage, "is_new", False):
            closing.append(outage)
        outcome.append(("closed", outage))

    if closing:
        _set_ends(closing)
    if new:
        Outage.objects.bulk_create([o for o, _ in new], batch_size=ALERT_BATCH)
        Outage.services.through.objects.bulk_create(
            [Outage.services.through(outage_id=o.pk, service_id=s.pk) for o, s in new], batch_size=ALERT_BATCH
        )
    entries, changes = [], []
    for action, outage in outcome:
        getattr(result, action).append(outage.pk)
        sids = frozenset(outage.service_ids)
        after = Evidence(sids, outage.starts_at, outage.ends_at, outage.cause)
        before = Evidence(sids, outage.starts_at, None, outage.cause) if action == "closed" else None
        changes.append(EvidenceChange(OUTAGE, outage.pk, f"{_label(outage)} {ALERT_WORDS[action]}", before, after))
        entries.append(
            audit_entry(
                actor=None, action=f"outage.{action}_by_alert", target=outage, now=now,
                before={"ends_at": None} if action == "closed" else {},
                after={"starts_at": outage.starts_at, "ends_at": outage.ends_at, "fingerprint": outage.fingerprint,
                       "webhook_token_of": via.slug},
            )
        )  # fmt: skip
    AuditEntry.objects.bulk_create(entries, batch_size=ALERT_BATCH)
    evidence_changed(changes, now=now)  # a closed month an alert touches is judged again
    return result


def outage_record_alerts(*, service: Service, alerts: Sequence[AlertEvent], now: datetime | None = None) -> AlertResult:
    """Open, close or record outages from one Alertmanager notification, whose webhook token is
    `service`'s. Each alert is taken or refused on its own, with the reason: one naming no service
    or another service than the token's, or a new one whose times are not plausible (_implausible),
    is refused and never loses the others. An alert is known by its fingerprint and start within its
    service: a repeat delivery changes nothing; an alert matching an open outage is always taken.

    The reads and writes are batched (a fixed number of queries per ALERT_BATCH alerts), in one
    transaction: read and written alert by alert, a large delivery held the database for seconds.
    Every outage opened, recorded or closed is audited (`outage.*_by_alert`)."""
    now = now or timezone.now()
    refused: list[AlertRefusal] = []
    slugs = {a.service for a in alerts}
    known = {s.slug: s for s in Service.objects.filter(slug__in=slugs).only("pk", "slug", "name")} if slugs else {}
    taken: list[tuple[AlertEvent, Service]] = []
    for event in alerts:
        target = known.get(event.service)
        if target is None:
            reason = f"No service has the slug “{event.service}” (the alert's `service` label)."
        elif target.pk != service.pk:
            reason = f"This token is “{service.slug}”'s; the alert is “{target.slug}”'s."
        else:
            taken.append((event, target))
            continue
        refused.append(AlertRefusal(event.index, event.fingerprint, event.service, reason))
    result = AlertResult()
    if taken:
        for attempt in range(3):
            try:
                with transaction.atomic():
                    result = _record_alerts(taken, service, now)
                break
            except IntegrityError:
                # A concurrent delivery inserted one of these alerts first (PostgreSQL's unique index
                # made this insert wait for it): read again, and it is a repeat.
                if attempt == 2:
                    raise
    result.refused = sorted([*refused, *result.refused], key=lambda r: r.index)
    return result


# --- The public status page -----------------------------------------------------------------------
STATUS_DAYS = 90
UPCOMING = timedelta(days=14)


class State:
    """A service's state now, most severe first."""

    OUTAGE = "outage"
    MAINTENANCE = "maintenance"
    DEGRADED = "degraded"
    OPERATIONAL = "operational"
    LABELS = {
        OUTAGE: "Outage",
        MAINTENANCE: "Under maintenance",
        DEGRADED: "Degraded performance",
        OPERATIONAL: "Operational",
    }
    SEVERITY = [OUTAGE, MAINTENANCE, DEGRADED, OPERATIONAL]


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
    """Rounded for display only: 1410/1440 -> "97.92"."""
    if uptime.down_minutes == 0:
        return "100"
    return formats.rounded(uptime.percent, 2)


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
    incidents: list[Outage]  # each with .service_list and .timeline (newest first)
    maintenance: list[MaintenanceWindow]  # in progress or starting within 14 days; with .service_list

    @property
    def state(self) -> str:
        states = {s.state for s in self.services}
        return next((s for s in State.SEVERITY if s in states), State.OPERATIONAL)


def _service_state(now: datetime, outages: Sequence[Outage], windows: Sequence[MaintenanceWindow]) -> str:
    if any(o.starts_at <= now and (o.ends_at is None or o.ends_at > now) for o in outages):
        return State.OUTAGE
    current = [w for w in windows if w.starts_at <= now < w.ends_at]
    if any(w.impact == MaintenanceWindow.Impact.DOWNTIME for w in current):
        return State.MAINTENANCE
    if any(w.impact == MaintenanceWindow.Impact.DEGRADED for w in current):
        return State.DEGRADED
    return State.OPERATIONAL


def _days_touched(start: datetime, end: datetime, first: date, last: date) -> range:
    """Ordinals of the UTC days in [first, last] that [start, end) touches."""
    lo = max(start.astimezone(UTC).date(), first)
    hi = min((end - timedelta(microseconds=1)).astimezone(UTC).date(), last)
    return range(lo.toordinal(), hi.toordinal() + 1)


def _bars(days: list[date], outages: Sequence[Interval], windows: Sequence[Interval]) -> list[DayBar]:
    counts = {kind: dict.fromkeys((d.toordinal() for d in days), 0) for kind in ("outages", "maintenance")}
    for kind, intervals in (("outages", outages), ("maintenance", windows)):
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
    """Every service's state now, its last 90 UTC days, the active incidents and the maintenance
    ahead: in a fixed number of queries whatever the history's size (services; outages and their
    services; windows and their services; the active incidents' updates), bucketed in Python.
    Nothing here knows a customer: no organisation or contract is read."""
    today = now.astimezone(UTC).date()
    days = [today - timedelta(days=n) for n in range(STATUS_DAYS - 1, -1, -1)]
    since = day_bounds(days[0], "UTC")[0]

    services = list(Service.objects.only("pk", "name", "slug"))
    outages = list(
        Outage.objects.filter(Q(ends_at__isnull=True) | Q(ends_at__gt=since), starts_at__lte=now)
        .only("pk", "title", "description", "starts_at", "ends_at")
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
        down = [(o.starts_at, min(o.ends_at or now, now)) for o in own_outages]
        maintenance = [
            (w.starts_at, min(w.ends_at, now))
            for w in own_windows
            if w.impact == MaintenanceWindow.Impact.DOWNTIME and w.starts_at < now
        ]
        statuses.append(
            ServiceStatus(
                service=service,
                state=_service_state(now, own_outages, own_windows),
                bars=_bars(days, [i for i in down if i[0] < i[1]], [i for i in maintenance if i[0] < i[1]]),
                overall=period_uptime(*period, down=[*down, *maintenance]),
            )
        )

    incidents = [o for o in outages if o.ends_at is None or o.ends_at > now]
    updates: dict[int, list[OutageUpdate]] = {o.pk: [] for o in incidents}
    if incidents:
        for update in OutageUpdate.objects.filter(outage_id__in=list(updates)).order_by("-at", "-pk"):
            updates[update.outage_id].append(update)
    for outage in incidents:
        outage.timeline = updates[outage.pk]
    incidents.sort(key=lambda o: o.starts_at, reverse=True)

    return StatusPage(
        now=now,
        first_day=days[0],
        services=statuses,
        incidents=incidents,
        maintenance=[w for w in windows if w.ends_at > now],
    )
