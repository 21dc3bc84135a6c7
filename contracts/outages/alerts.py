"""Outages from monitoring: the per-service webhook tokens, and the alerts of an Alertmanager
notification opened, closed or recorded as outages (contracts.webhooks parses the notification)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from portal.core.audit import audit_entry
from portal.models import AuditEntry

from ..choices import Cause
from ..evidence import OUTAGE, Evidence, EvidenceChange, evidence_changed
from ..incidents.services import incidents_draft_for_alerts, incidents_hold_drafts
from ..models import Outage, Service
from .services import outage_label


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
        changes.append(
            EvidenceChange(OUTAGE, outage.pk, f"{outage_label(outage)} {ALERT_WORDS[action]}", before, after)
        )
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
    # Each outage an alert opens gets a drafted incident, published after a delay unless staff do; an
    # outage closed before its draft went out leaves the draft to staff (a flapping alert).
    incidents_draft_for_alerts(outages=[o for action, o in outcome if action == "opened"], now=now)
    if result.closed:
        incidents_hold_drafts(outage_ids=result.closed)
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
