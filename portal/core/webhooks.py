"""Outbound webhooks, the writing side: customers' endpoints and the events recorded for them.

- `webhooks_emit` is the one way an app reports an event (tickets, credits; incidents later): it
  writes a delivery row per subscribed, enabled endpoint of the organisation (an event without one
  goes to the vendor's own endpoints: its on-call tool, `ticket.at_risk`), in the caller's
  transaction (nothing is sent for a change that rolls back), and after commit asks a worker to
  send (portal.core.tasks). The sending side is portal.core.webhook_delivery.
- A delivery's body is fixed when the event happens: `{"id", "event", "created_at", "data"}`, the
  same bytes on every attempt; `id` is the delivery id a receiver dedupes by.
- Endpoints: register (https, public addresses only: portal.core.safe_http), change the events,
  rotate the secret (the previous one keeps signing for WEBHOOK_SECRET_GRACE), disable and
  re-enable, delete, send a test event. Secrets are shown once, when made.
- Signing: portal.core.webhook_signing.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from portal.core import batch
from portal.core.audit import audit
from portal.core.safe_http import Refused, check_destination
from portal.core.webhook_signing import new_secret
from portal.core.webhook_tasks import webhooks_sweep_dispatch
from portal.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

log = logging.getLogger(__name__)
# What the vendor's own endpoints (no organisation) receive: its on-call tool's events.
VENDOR_EVENTS = [WebhookEvent.TICKET_AT_RISK]
# What a customer may subscribe to (the test event is sent on request, never subscribed).
SUBSCRIBABLE = [
    (value, label) for value, label in WebhookEvent.choices if value != WebhookEvent.PING and value not in VENDOR_EVENTS
]


class WebhookError(Exception):
    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class HookEvent:
    """One thing that happened, for the endpoints of one organisation (None: the vendor's own).
    `key` names the cause (e.g. "ticket:12:filed"): emitting the same key twice makes one delivery
    per endpoint."""

    organisation_id: int | None
    event: str
    key: str
    data: dict

    @property
    def subject(self) -> str:
        """The object the event is about, the key's first two parts ("ticket:12", "claim:3",
        "incident:5"; a test event's own "ping:<id>"): one object's events reach an endpoint in
        order, another object's do not wait for them (portal.core.webhook_delivery)."""
        return ":".join(self.key.split(":")[:2])


# --- Recording events -----------------------------------------------------------------------------
def webhooks_emit(*, events: list[HookEvent], now: datetime | None = None) -> int:
    """Record deliveries of `events` for every enabled endpoint of their organisations that chose
    them. Call it inside the transaction of the change. Returns how many rows were written; one
    query when no organisation has an endpoint."""
    if not events:
        return 0
    now = now or timezone.now()
    endpoints = _endpoints({e.organisation_id for e in events})
    rows = [
        _delivery(endpoint, event, now)
        for event in events
        for endpoint in endpoints
        if endpoint.organisation_id == event.organisation_id and event.event in endpoint.events
    ]
    if not rows:
        return 0
    # ignore_conflicts: an event emitted twice (a retried task, a sweep run twice) is one delivery.
    WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True)
    if not batch.after_commit(_dispatch_all, [True]):
        transaction.on_commit(_dispatch)
    return len(rows)


def _endpoints(orgs: set) -> list[WebhookEndpoint]:
    """The enabled endpoints of these organisations (None: the vendor's own), by id; inside a
    portal.core.batch read once per organisation for the batch."""
    known = batch.shared("webhooks.endpoints", dict)
    wanted = orgs - set(known or ())
    if wanted:
        owners = Q(organisation_id__in=wanted - {None})
        if None in wanted:
            owners |= Q(organisation__isnull=True)
        found = WebhookEndpoint.objects.filter(owners, enabled=True).only("id", "organisation_id", "events")
        if known is None:
            return list(found.order_by("id"))
        for org in wanted:
            known[org] = []
        for endpoint in found.order_by("id"):
            known[endpoint.organisation_id].append(endpoint)
    return sorted((e for org in orgs for e in known[org]), key=lambda e: e.pk)


class PayloadEncoder(DjangoJSONEncoder):
    """Every time in UTC ("...Z"), as docs/webhooks.md promises, whatever zone a form read it in."""

    def default(self, o):
        if isinstance(o, datetime) and o.tzinfo is not None:
            o = o.astimezone(UTC)
        return super().default(o)


def _delivery(endpoint: WebhookEndpoint, event: HookEvent, now: datetime) -> WebhookDelivery:
    delivery_id = uuid.uuid4()
    payload = {"id": str(delivery_id), "event": event.event, "created_at": now.isoformat(), "data": event.data}
    return WebhookDelivery(
        endpoint=endpoint, event=event.event, key=event.key[:200], subject=event.subject[:200], delivery_id=delivery_id,
        payload=json.loads(json.dumps(payload, cls=PayloadEncoder)), next_attempt_at=now, created_at=now,
    )  # fmt: skip


def _dispatch_all(_items) -> None:
    _dispatch()


def _dispatch() -> None:
    try:
        webhooks_sweep_dispatch()
    except Exception:  # the broker is down: the periodic sweep will find the rows
        log.warning("webhooks: could not hand deliveries to a worker; the sweep will", exc_info=True)


# --- Endpoints (customer admins) ------------------------------------------------------------------
def _clean_events(events) -> list[str]:
    allowed = {value for value, _ in SUBSCRIBABLE}
    chosen = [e for e in dict.fromkeys(events) if e in allowed]
    if not chosen or len(chosen) != len(set(events)):
        raise WebhookError("Choose at least one event from the list.", field="events")
    return chosen


def clean_url(url: str) -> str:
    url = url.strip()
    try:
        check_destination(url)
    except Refused as exc:
        raise WebhookError(str(exc), field="url") from None
    return url


@transaction.atomic
def webhook_endpoint_create(
    *, actor, url: str, events: list[str], description: str = "", now: datetime | None = None
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint of the actor's organisation; returns it and its secret (shown once)."""
    now = now or timezone.now()
    endpoint = WebhookEndpoint.objects.create(
        organisation_id=actor.organisation_id, url=clean_url(url), events=_clean_events(events),
        description=description.strip()[:100], secret=new_secret(), created_by=actor, created_at=now,
    )  # fmt: skip
    audit(actor=actor, action="webhook.created", target=endpoint, after=_audited(endpoint), now=now)
    return endpoint, endpoint.secret


@transaction.atomic
def vendor_endpoint_create(
    *, actor, url: str, description: str = "", now: datetime | None = None
) -> tuple[WebhookEndpoint, str]:
    """Register one of the vendor's own endpoints (staff, in the admin): it receives VENDOR_EVENTS,
    signed like every other. Returns it and its secret (shown once)."""
    now = now or timezone.now()
    endpoint = WebhookEndpoint.objects.create(
        organisation=None, url=clean_url(url), events=list(VENDOR_EVENTS), description=description.strip()[:100],
        secret=new_secret(), created_by=actor, created_at=now,
    )  # fmt: skip
    audit(actor=actor, action="webhook.created", target=endpoint, after=_audited(endpoint), now=now)
    return endpoint, endpoint.secret


def _audited(endpoint: WebhookEndpoint) -> dict:
    return {"url": endpoint.url, "events": endpoint.events, "enabled": endpoint.enabled}


def _locked(endpoint: WebhookEndpoint) -> WebhookEndpoint:
    return WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)


@transaction.atomic
def webhook_endpoint_update(
    *, endpoint: WebhookEndpoint, actor, url: str, events: list[str], description: str = "",
    now: datetime | None = None,
) -> WebhookEndpoint:  # fmt: skip
    now = now or timezone.now()
    endpoint = _locked(endpoint)
    before = _audited(endpoint)
    endpoint.url, endpoint.events = clean_url(url), _clean_events(events)
    endpoint.description = description.strip()[:100]
    endpoint.save(update_fields=["url", "events", "description"])
    if endpoint.url != before["url"]:  # a corrected address: what waits goes there now, with a clean slate
        _retry_now(endpoint, now)
    audit(actor=actor, action="webhook.changed", target=endpoint, before=before, after=_audited(endpoint), now=now)
    return endpoint


def _retry_now(endpoint: WebhookEndpoint, now: datetime) -> None:
    """A fresh start for a (locked) endpoint whose admin says it answers now (re-enabled, or its
    address corrected): its failures in a row are forgotten and its waiting deliveries are due at
    once, not after the backoff the old state earned them (parked ones stay parked); a sweep is
    asked for when the change commits."""
    endpoint.consecutive_failures = 0
    endpoint.save(update_fields=["consecutive_failures"])
    WebhookDelivery.objects.filter(endpoint=endpoint, status=WebhookDelivery.Status.PENDING).update(next_attempt_at=now)
    transaction.on_commit(_dispatch)


@transaction.atomic
def webhook_secret_rotate(*, endpoint: WebhookEndpoint, actor, now: datetime | None = None) -> str:
    """A new secret signs from now on; the old one signs too for WEBHOOK_SECRET_GRACE."""
    now = now or timezone.now()
    endpoint = _locked(endpoint)
    endpoint.previous_secret, endpoint.secret = endpoint.secret, new_secret()
    endpoint.previous_secret_until = now + settings.WEBHOOK_SECRET_GRACE
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_until"])
    audit(
        actor=actor, action="webhook.secret_rotated", target=endpoint,
        after={"previous_valid_until": endpoint.previous_secret_until}, now=now,
    )  # fmt: skip
    return endpoint.secret


@transaction.atomic
def webhook_endpoint_enable(*, endpoint: WebhookEndpoint, actor, now: datetime | None = None) -> WebhookEndpoint:
    """Re-enable: its waiting deliveries go out again (parked ones stay parked)."""
    now = now or timezone.now()
    endpoint = _locked(endpoint)
    if endpoint.enabled:
        return endpoint
    before = {"enabled": False, "reason": endpoint.disabled_reason}
    endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at = True, "", None
    endpoint.save(update_fields=["enabled", "disabled_reason", "disabled_at"])
    _retry_now(endpoint, now)
    audit(actor=actor, action="webhook.enabled", target=endpoint, before=before, after={"enabled": True}, now=now)
    return endpoint


@transaction.atomic
def webhook_endpoint_disable(
    *, endpoint: WebhookEndpoint, actor, reason: str, now: datetime | None = None
) -> WebhookEndpoint:
    now = now or timezone.now()
    endpoint = _locked(endpoint)
    if not endpoint.enabled:
        return endpoint
    endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at = False, reason[:300], now
    endpoint.save(update_fields=["enabled", "disabled_reason", "disabled_at"])
    audit(actor=actor, action="webhook.disabled", target=endpoint, before={"enabled": True},
          after={"enabled": False, "reason": reason}, now=now)  # fmt: skip
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, actor, now: datetime | None = None) -> None:
    audit(actor=actor, action="webhook.deleted", target=endpoint, before=_audited(endpoint), now=now)
    endpoint.delete()


@transaction.atomic
def webhook_send_test(*, endpoint: WebhookEndpoint, actor, now: datetime | None = None) -> WebhookDelivery:
    """A `ping` delivery to this endpoint alone, about nothing but itself: it waits for no other
    delivery (not for those waiting to retry), and the sweep it asks for sends it at once."""
    now = now or timezone.now()
    if not endpoint.enabled:
        raise WebhookError("Enable the endpoint first: a disabled endpoint receives nothing.")
    event = HookEvent(
        organisation_id=endpoint.organisation_id, event=WebhookEvent.PING, key=f"ping:{uuid.uuid4().hex}",
        data={"message": "A test event from the SLA portal.", "requested_by": actor.email},
    )  # fmt: skip
    delivery = _delivery(endpoint, event, now)
    delivery.save()
    transaction.on_commit(_dispatch)
    return delivery
