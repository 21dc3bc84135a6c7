"""Outbound webhooks, the sending side (the worker's): claim due deliveries, sign, POST, record.

- Claimed with a lease like the email outbox's rows (portal.core.leases): never sent by two
  senders at once; a row whose sender died is taken again when its lease runs out.
- In order per subject: a delivery waits while an earlier delivery of its endpoint about the same
  object (its `subject`: "ticket:12", "claim:3", "incident:5") is still pending or being sent; a
  parked or delivered one no longer holds it. Deliveries about other objects do not wait for it:
  one ticket's failing event never holds another ticket's (a P1's at-risk warning to the on-call
  tool went out after that P1 had breached, behind an earlier P1's retry).
- One at a time per endpoint: a claim takes at most one delivery per endpoint (its earliest ready
  one) and none of an endpoint with one in flight, so a sweep's round sends each endpoint one, as
  before; a test event (`ping`, its own subject) goes beside them, at once. A claim reads each due
  delivery once (an index lookup for its subject, a grouped MIN per endpoint): its cost grows with
  the deliveries waiting, not with their square.
- At least once: only a 2xx marks a delivery delivered; anything else (an error, a timeout, a lost
  response, a 3xx: redirects are not followed) is retried with backoff (1, 2, 4, ... minutes, at
  most an hour).
- A delivery that fails its WEBHOOK_MAX_ATTEMPTS-th attempt is the endpoint's failure if the endpoint
  has accepted nothing since the delivery was recorded, or has accepted nothing and answered with no
  answer or a server error since the delivery's previous attempt (its last wait, up to an hour): the endpoint is disabled and its
  organisation's customer admins (the vendor's own endpoint: its support leads) are emailed through
  the outbox; the delivery, like every other one waiting, stays waiting and goes out, in order,
  once the endpoint is re-enabled. A delivery that fails alone (the endpoint accepts others) is
  parked, and the later ones about its object go on. A count of failures would be tripped in one
  sweep by an endpoint with many objects waiting (each tried beside the others), or never, when
  only the oldest one's attempts counted and each delivery parked after its own.
"""

from __future__ import annotations

import http.client
import logging
import ssl
from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import BooleanField, Exists, F, Func, Min, OuterRef, Q
from django.utils import timezone

from portal.core import leases
from portal.core.audit import audit
from portal.core.leases import backoff, lease_claim, lease_drain, lease_release, lease_renew
from portal.core.notify_rules import About, Kind, recipients
from portal.core.outbox import Email, outbox_enqueue_many
from portal.core.roles import CustomerRole, StaffRole
from portal.core.safe_http import Refused, post
from portal.core.unsubscribe import email_to
from portal.core.webhook_signing import body_bytes, signature_header, signing_secrets
from portal.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

log = logging.getLogger(__name__)
Status = WebhookDelivery.Status
EXCERPT = 1000  # characters of a response kept on the delivery
USER_AGENT = "SLA-Portal-Webhooks/1"


class Waiting(Func):
    """`status IN ('pending', 'sending')` written out in the SQL, as the partial indexes
    webhook_subject_queue and webhook_endpoint_queue are: SQLite uses a partial index only for a
    condition that matches its own, and does not read the values bound into an IN list (with
    `status__in` it scanned every earlier delivery of the endpoint for each ready one)."""

    template = f"%(expressions)s IN ('{Status.PENDING}', '{Status.SENDING}')"
    output_field = BooleanField()


def _ready(now: datetime) -> Q:
    """Pending and due, and no earlier delivery of its endpoint about the same subject is waiting
    (one lookup in the index webhook_subject_queue)."""
    earlier_same_subject = WebhookDelivery.objects.filter(
        Waiting("status"), endpoint_id=OuterRef("endpoint_id"), subject=OuterRef("subject"), id__lt=OuterRef("id")
    )
    return Q(status=Status.PENDING, next_attempt_at__lte=now, endpoint__enabled=True) & ~Exists(earlier_same_subject)


def _in_flight(now: datetime) -> Q:
    """Of an endpoint with a delivery being sent (its lease still running): the few rows being sent
    read once (the index webhook_sending_lease), not looked up again for every row."""
    sending = WebhookDelivery.objects.filter(status=Status.SENDING, lease_until__gte=now).values("endpoint_id")
    return Q(endpoint_id__in=sending)


def _due(now: datetime) -> Q:
    """A row that may be claimed now: ready, and a test event or of an endpoint with none in flight;
    or being sent by a sender whose lease ran out. Checked row by row (the claim's guard, again in
    its update); which ready row of an endpoint goes first is `_candidates`'."""
    return (_ready(now) & (Q(event=WebhookEvent.PING) | ~_in_flight(now))) | Q(
        status=Status.SENDING, lease_until__lt=now
    )


def _candidates(now: datetime) -> Q:
    """The rows a claim looks at, each found from an index: the earliest ready delivery (test events
    aside) of each endpoint with none in flight, every ready row read once and grouped by endpoint
    (not checked against every earlier ready row of its endpoint, which cost the square of an
    endpoint's backlog); the ready test events; the rows whose sender's lease ran out."""
    ready = WebhookDelivery.objects.filter(_ready(now)).order_by()
    # Waiting(): read in the order of the index webhook_endpoint_queue (endpoint, id; the waiting
    # rows only), not of the endpoint's index over every delivery ever sent.
    heads = (
        ready.filter(Waiting("status"), ~_in_flight(now))
        .exclude(event=WebhookEvent.PING)
        .values("endpoint_id")
        .annotate(head=Min("id"))
    )
    pings = ready.filter(event=WebhookEvent.PING).values("id")
    lost = WebhookDelivery.objects.filter(status=Status.SENDING, lease_until__lt=now).order_by().values("id")
    return Q(id__in=heads.values("head")) | Q(id__in=pings) | Q(id__in=lost)


def webhook_claim(*, now: datetime, limit: int) -> list[WebhookDelivery]:
    """Lease up to `limit` due deliveries (at most one per endpoint, and its test events)."""
    claimed = lease_claim(
        WebhookDelivery, due=_due(now), filters=_candidates(now), now=now, limit=limit,
        lease=settings.WEBHOOK_LEASE, order_by=("id",),
    )  # fmt: skip
    endpoints = WebhookEndpoint.objects.in_bulk({d.endpoint_id for d in claimed})
    for d in claimed:
        d.endpoint = endpoints[d.endpoint_id]
    return claimed


def failure_words(exc: Exception) -> str:
    """Why a delivery failed, as the customer's admin reads it on the endpoint's page and in the
    disabling email (not "ConnectionRefusedError: [Errno 111] Connection refused")."""
    if isinstance(exc, TimeoutError):
        if str(exc).endswith("."):  # safe_http's own sentence: the whole exchange took too long
            return str(exc)
        return (f"No answer in time (at most {settings.WEBHOOK_CONNECT_TIMEOUT:g} s to connect, "
                f"{settings.WEBHOOK_READ_TIMEOUT:g} s of silence).")  # fmt: skip
    if isinstance(exc, ConnectionRefusedError):
        return "The connection was refused: nothing answers on that port."
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"Its TLS certificate was not accepted ({exc.verify_message or 'not valid'})."
    if isinstance(exc, ssl.SSLError):
        return "The TLS handshake failed."
    if isinstance(exc, ConnectionError | http.client.RemoteDisconnected):
        return "The connection was closed before an answer came."
    if isinstance(exc, http.client.HTTPException):
        return "The answer was not valid HTTP."
    reason = getattr(exc, "strerror", None)
    return f"The connection failed ({reason})." if reason else "The connection failed."


def webhook_deliver(*, deliveries: list[WebhookDelivery], now_fn=timezone.now, stop_at: float | None = None) -> int:
    """Send claimed deliveries; returns how many were acknowledged. Past `stop_at` (on
    portal.core.leases.clock) the rest are handed back unsent, for the next sweep."""
    acknowledged = 0
    for i, delivery in enumerate(deliveries):
        if stop_at is not None and leases.clock() >= stop_at:
            lease_release(deliveries[i:])
            break
        started = now_fn()
        if not lease_renew(delivery, now=started, lease=settings.WEBHOOK_LEASE):
            continue  # its lease ran out while earlier rows were sent; another sender has it
        endpoint = delivery.endpoint
        body = body_bytes(delivery.payload)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-SLA-Event": delivery.event,
            "X-SLA-Delivery": str(delivery.delivery_id),
            "X-SLA-Attempt": str(delivery.attempts),
            "X-SLA-Signature": signature_header(signing_secrets(endpoint, started), int(started.timestamp()), body),
        }
        try:
            response = post(endpoint.url, body, headers)
        except Refused as exc:
            _failed(delivery, now_fn(), error=str(exc))
            continue
        except (OSError, http.client.HTTPException) as exc:
            _failed(delivery, now_fn(), error=failure_words(exc))
            continue
        excerpt = response.body.decode("utf-8", "replace")[:EXCERPT]
        if response.truncated:
            excerpt += f"\n[response cut at {settings.WEBHOOK_MAX_RESPONSE_BYTES // 1024} KB]"
        if 200 <= response.status < 300:
            _delivered(delivery, now_fn(), response.status, excerpt)
            acknowledged += 1
        else:
            error = f"HTTP {response.status}"
            if 300 <= response.status < 400:
                error += f": redirects are not followed (Location: {response.location[:200] or 'none'})"
            _failed(delivery, now_fn(), error=error, status_code=response.status, excerpt=excerpt)
    return acknowledged


def _delivered(delivery: WebhookDelivery, now: datetime, code: int, excerpt: str) -> None:
    with transaction.atomic():
        WebhookDelivery.objects.filter(id=delivery.id, claim_token=delivery.claim_token).update(
            status=Status.DELIVERED, delivered_at=now, lease_until=None, last_attempt_at=now,
            last_status_code=code, last_response=excerpt, last_error="",
        )  # fmt: skip
        WebhookEndpoint.objects.filter(id=delivery.endpoint_id).update(consecutive_failures=0, last_success_at=now)


def _failed(delivery: WebhookDelivery, now: datetime, *, error: str, status_code=None, excerpt: str = "") -> None:
    """Record a failed attempt. At the last (WEBHOOK_MAX_ATTEMPTS), the failure is the endpoint's if
    it has accepted nothing since the delivery was recorded, or was unreachable through its last
    wait: it is disabled and the delivery waits with the others for it to be re-enabled. Otherwise
    the delivery alone fails and is parked."""
    last = delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS
    with transaction.atomic():
        endpoint_down = last and (
            _accepted_nothing_since(delivery.endpoint_id, delivery.created_at)
            # It accepted another since, then went down (no answer, or a server error, through this
            # one's last wait): dead, not this delivery's fault. A 4xx is this delivery refused.
            or (_unreachable(status_code) and _accepted_nothing_since(delivery.endpoint_id, delivery.last_attempt_at))
        )
        parked = last and not endpoint_down
        log.warning(
            "webhooks: delivery %s to endpoint %s failed (attempt %d%s): %s",
            delivery.delivery_id, delivery.endpoint_id, delivery.attempts,
            ", parked" if parked else ", the endpoint accepts nothing: disabled" if endpoint_down else "", error,
        )  # fmt: skip
        WebhookDelivery.objects.filter(id=delivery.id, claim_token=delivery.claim_token).update(
            status=Status.PARKED if parked else Status.PENDING, next_attempt_at=now + backoff(delivery.attempts),
            lease_until=None, last_attempt_at=now, last_status_code=status_code, last_response=excerpt,
            last_error=error[:500],
        )  # fmt: skip
        # Shown on the endpoint's page and in the disabling email; decides nothing.
        WebhookEndpoint.objects.filter(id=delivery.endpoint_id).update(
            consecutive_failures=F("consecutive_failures") + 1
        )
        if endpoint_down:
            _disable(delivery.endpoint_id, now, delivery.attempts, error)


def _unreachable(status_code: int | None) -> bool:
    """No answer, a server error, a timeout or a rate limit: the endpoint's state, not a refusal of
    the delivery."""
    return status_code is None or status_code >= 500 or status_code in (408, 429)


def _accepted_nothing_since(endpoint_id: int, moment: datetime) -> bool:
    """The endpoint has acknowledged no delivery since `moment` (or never has)."""
    return WebhookEndpoint.objects.filter(
        Q(last_success_at__isnull=True) | Q(last_success_at__lt=moment), id=endpoint_id
    ).exists()


def _disable(endpoint_id: int, now: datetime, attempts: int, error: str) -> None:
    """Disable the endpoint (if it still is enabled) and tell its admins."""
    reason = (
        f"Disabled: a delivery failed all {attempts} attempts and the endpoint accepted nothing meanwhile; "
        f"the last: {error}"
    )[:300]
    disabled = WebhookEndpoint.objects.filter(id=endpoint_id, enabled=True).update(
        enabled=False, disabled_reason=reason, disabled_at=now
    )
    if not disabled:
        return
    endpoint = WebhookEndpoint.objects.select_related("organisation").get(id=endpoint_id)
    audit(actor=None, action="webhook.disabled", target=endpoint, before={"enabled": True},
          after={"enabled": False, "reason": reason}, now=now)  # fmt: skip
    if endpoint.organisation_id is None:  # the vendor's own (on-call): its support leads are told
        leads = get_user_model().objects.filter(is_staff=True, is_active=True, staff_role=StaffRole.SUPPORT_LEAD)
        context = {"endpoint": endpoint, "organisation": None}
        outbox_enqueue_many(
            emails=[
                Email(key=f"webhook:{endpoint.pk}:disabled:{now.isoformat()}:to:{u.email}", to=u.email,
                      template="webhook_disabled", context={**context, "recipient": u})
                for u in leads.order_by("id")
            ],
            now=now,
        )  # fmt: skip
        return
    admins = get_user_model().objects.filter(
        organisation_id=endpoint.organisation_id, customer_role=CustomerRole.ADMIN, is_active=True
    )
    # Mandatory (portal.core.notify_rules, an account email): nothing else tells the admins that
    # the integration they set up has stopped.
    about = About(organisation_id=endpoint.organisation_id)
    outbox_enqueue_many(
        emails=[
            email_to(
                r,
                key=f"webhook:{endpoint.pk}:disabled:{now.isoformat()}:user:{r.user.pk}",
                template="webhook_disabled",
                context={"endpoint": endpoint, "organisation": endpoint.organisation},
            )
            for r in recipients(Kind.ACCOUNT, users=admins, about=about)
        ],
        now=now,
    )


SWEEP_BUDGET = 40.0  # a sweep's seconds at most (as the outbox's): a slow endpoint never holds a worker for long


def webhooks_send_due(*, batch: int | None = None, max_rounds: int = 200, budget: float = SWEEP_BUDGET) -> int:
    """Send everything due now, round by round (the sweep): each round takes one ready delivery of
    every endpoint (and its test events), so an endpoint's deliveries go one after another, each
    subject's in order. At most `budget`
    seconds, checked before each delivery (a round behind slow endpoints can itself take long):
    what is left waits for the next sweep (beat's, every minute, or one a change dispatches)."""
    stop_at = leases.clock() + budget
    return lease_drain(
        lambda now: webhook_claim(now=now, limit=batch or settings.WEBHOOK_BATCH),
        lambda claimed: webhook_deliver(deliveries=claimed, stop_at=stop_at),
        rounds=max_rounds, deadline=stop_at,
    )  # fmt: skip
