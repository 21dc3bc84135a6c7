"""Outbound webhooks against a real HTTPS receiver (tests/webhook_receiver.py): signed deliveries in
order per endpoint and object (another object's never wait), retried with backoff after a failure or a lost response (each id delivered until
acknowledged), parked so that later ones go on, never held by two senders, an endpoint that
accepts nothing while a delivery uses all its attempts disabled (nothing given up) with an email to
its organisation's customer admins; claims that cost in proportion to the waiting rows; and the events the ticket services,
the sweeps and claim decisions record."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection, connections, transaction

from credits.services import claim_reject, claim_submit
from portal.core.delivery import outbox_render
from portal.core.notify_rules import Choice
from portal.core.unsubscribe import preference_set
from portal.core.webhook_delivery import _candidates, _due, webhook_claim, webhook_deliver, webhooks_send_due
from portal.core.webhooks import (
    HookEvent,
    webhook_endpoint_create,
    webhook_endpoint_enable,
    webhook_endpoint_update,
    webhook_secret_rotate,
    webhook_send_test,
    webhooks_emit,
)
from portal.models import AuditEntry, OutboxMessage, WebhookDelivery, WebhookEndpoint
from tickets.services import ticket_escalate_now, ticket_open, ticket_reply, ticket_set_status
from tickets.sweeps import check_sla_deadlines, escalate_due_tickets

from .factories import StaffFactory

pytestmark = pytest.mark.django_db
NBO = ZoneInfo("Africa/Nairobi")
T0 = datetime(2026, 12, 11, 16, 0, tzinfo=NBO)  # a Friday afternoon
TICKET_EVENTS = ["ticket.filed", "ticket.updated", "ticket.breached", "ticket.escalated"]


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def endpoint(receiver, alice, clock):
    ep, _ = webhook_endpoint_create(actor=alice, url=receiver.url, events=[*TICKET_EVENTS, "claim.decided"])
    return ep


def verify(secret: str, header: str, body: bytes, now: float, tolerance: int = 300) -> bool:
    """The receiver's check, as docs/webhooks.md gives it."""
    items = [part.split("=", 1) for part in header.split(",")]
    timestamp = next(v for k, v in items if k == "t")
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    fresh = abs(now - int(timestamp)) <= tolerance
    return fresh and any(hmac.compare_digest(expected, v) for k, v in items if k == "v1")


def file(contract, user, priority="P3", subject="Backups fail"):
    return ticket_open(
        user=user, contract=contract, service=contract.services.get(), priority=priority,
        subject=subject, description="Nothing backs up since last night.",
    )  # fmt: skip


def emit(endpoint, n: int, subject: str = "ticket:1") -> list[WebhookDelivery]:
    """`n` events about one object (its deliveries go in order); the endpoint's deliveries of it."""
    webhooks_emit(
        events=[
            HookEvent(organisation_id=endpoint.organisation_id, event="ticket.updated", key=f"{subject}:k{i}",
                      data={"n": i})
            for i in range(n)
        ]
    )  # fmt: skip
    return list(WebhookDelivery.objects.filter(endpoint=endpoint, subject=subject).order_by("id"))


# --- Delivered, signed, in order ------------------------------------------------------------------
def test_ticket_events_arrive_signed_and_in_order(receiver, endpoint, acme_contract, alice, sam, clock):
    ticket = file(acme_contract, alice)
    ticket_reply(ticket=ticket, author=sam, body="Looking at it now.")
    ticket_reply(ticket=ticket, author=sam, body="Internal: check the agent", internal=True)  # reports nothing
    ticket_set_status(ticket=ticket, actor=sam, status="waiting")
    assert webhooks_send_due() == 3
    bodies = [json.loads(r.body) for r in receiver.received]
    assert [(b["event"], b["data"].get("change", {}).get("kind")) for b in bodies] == [
        ("ticket.filed", None), ("ticket.updated", "reply"), ("ticket.updated", "status"),
    ]  # fmt: skip
    assert bodies[1]["data"]["change"]["message"]["body"] == "Looking at it now."
    assert bodies[1]["data"]["ticket"]["status"] == "open" and bodies[2]["data"]["ticket"]["status"] == "waiting"
    assert bodies[0]["data"]["ticket"]["url"].endswith(f"/tickets/{ticket.pk}/")
    for got in receiver.received:
        assert got.path == "/hooks/sla"
        assert got.headers["content-type"] == "application/json"
        assert got.headers["x-sla-delivery"] == json.loads(got.body)["id"]
        assert got.headers["x-sla-event"] == json.loads(got.body)["event"]
        assert verify(endpoint.secret, got.headers["x-sla-signature"], got.body, now=T0.timestamp())
        assert not verify("whsec_wrong", got.headers["x-sla-signature"], got.body, now=T0.timestamp())
        assert not verify(endpoint.secret, got.headers["x-sla-signature"], got.body + b" ", now=T0.timestamp())
    assert set(WebhookDelivery.objects.values_list("status", "last_status_code")) == {("delivered", 204)}
    endpoint.refresh_from_db()
    assert endpoint.last_success_at == T0 and endpoint.consecutive_failures == 0


def test_other_organisations_unsubscribed_and_disabled_endpoints_get_nothing(
    receiver, alice, charlie, acme_contract, globex_contract, clock
):
    only_claims, _ = webhook_endpoint_create(actor=alice, url=receiver.url, events=["claim.decided"])
    globex_hooks, _ = webhook_endpoint_create(actor=charlie, url=receiver.url, events=TICKET_EVENTS)
    file(acme_contract, alice)
    assert not WebhookDelivery.objects.exists()
    file(globex_contract, charlie)
    assert list(WebhookDelivery.objects.values_list("endpoint", "event")) == [(globex_hooks.pk, "ticket.filed")]
    WebhookEndpoint.objects.filter(pk=globex_hooks.pk).update(enabled=False)
    file(globex_contract, charlie, subject="Second")
    assert WebhookDelivery.objects.count() == 1


def test_one_delivery_per_endpoint_and_cause(endpoint):
    event = HookEvent(organisation_id=endpoint.organisation_id, event="ticket.updated", key="ticket:1:x", data={})
    webhooks_emit(events=[event])
    webhooks_emit(events=[event, event])
    assert WebhookDelivery.objects.count() == 1


def test_the_sweep_is_handed_the_deliveries_when_the_change_commits(
    receiver, endpoint, acme_contract, alice, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        file(acme_contract, alice)
    assert [json.loads(r.body)["event"] for r in receiver.received] == ["ticket.filed"]


# --- Failures: retried, in order, parked, at least once -------------------------------------------
def test_a_failure_is_retried_with_backoff_and_holds_the_later_deliveries(receiver, endpoint, clock):
    first, second = emit(endpoint, 2)
    receiver.script = [500]
    assert webhooks_send_due() == 0  # the first failed; the second waits behind it
    first.refresh_from_db()
    assert (first.status, first.attempts, first.last_status_code) == ("pending", 1, 500)
    assert first.next_attempt_at == T0 + timedelta(minutes=1) and '"try later"' in first.last_response
    assert WebhookDelivery.objects.get(pk=second.pk).attempts == 0
    clock.shift(timedelta(seconds=59))
    assert webhooks_send_due() == 0 and len(receiver.received) == 1
    clock.shift(timedelta(seconds=1))
    assert webhooks_send_due() == 2
    ids = [r.headers["x-sla-delivery"] for r in receiver.received]
    assert ids == [str(first.delivery_id), str(first.delivery_id), str(second.delivery_id)]
    assert receiver.received[0].body == receiver.received[1].body  # the same bytes on every attempt
    assert receiver.received[1].headers["x-sla-attempt"] == "2"


def test_a_failing_delivery_holds_its_own_objects_later_events_but_not_another_objects(receiver, endpoint, clock):
    first, second = emit(endpoint, 2, subject="ticket:1")
    (other,) = emit(endpoint, 1, subject="ticket:2")
    receiver.script = [500]
    assert webhooks_send_due() == 1  # ticket 1's first failed; ticket 2's went on, ticket 1's second waits
    assert [r.headers["x-sla-delivery"] for r in receiver.received] == [str(first.delivery_id), str(other.delivery_id)]
    assert WebhookDelivery.objects.get(pk=second.pk).attempts == 0
    clock.shift(timedelta(minutes=1))
    assert webhooks_send_due() == 2
    assert [r.headers["x-sla-delivery"] for r in receiver.received[2:]] == [
        str(first.delivery_id), str(second.delivery_id),
    ]  # fmt: skip


def test_many_objects_waiting_do_not_disable_an_endpoint_sooner(receiver, endpoint, clock, settings):
    """Down for two minutes with two tickets' events waiting: four failed attempts (each ticket's
    tried beside the other's), shown as such, but no delivery has used its attempts: not disabled."""
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    emit(endpoint, 1, subject="ticket:1")
    emit(endpoint, 1, subject="ticket:2")
    receiver.default = 503
    webhooks_send_due()
    clock.shift(timedelta(minutes=1))
    webhooks_send_due()
    assert len(receiver.received) == 4
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.consecutive_failures == 4


def test_a_dead_endpoint_with_many_objects_waiting_is_disabled_its_admins_told_and_nothing_lost(
    receiver, endpoint, alice, clock
):
    """Five tickets' events wait and the receiver answers 503 for hours. When the oldest delivery
    has failed its 8 attempts (1+2+...+60 minutes) and the endpoint has accepted nothing since it
    was recorded, the failure is the endpoint's: disabled, Alice emailed, and no delivery parked:
    each goes out once the endpoint is re-enabled. Before, every delivery parked after its own 8
    attempts, the endpoint stayed enabled (only the oldest's failures counted, never 24) and no one
    was told."""
    deliveries = [emit(endpoint, 1, subject=f"ticket:{n}")[0] for n in range(1, 6)]
    receiver.default = 503
    for _ in range(3 * 60):  # beat's sweep every minute, three hours of a dead receiver
        webhooks_send_due()
        clock.shift(timedelta(minutes=1))
    endpoint.refresh_from_db()
    assert not endpoint.enabled and endpoint.disabled_at == T0 + timedelta(minutes=123)
    assert endpoint.disabled_reason == (
        "Disabled: a delivery failed all 8 attempts and the endpoint accepted nothing meanwhile; the last: HTTP 503"
    )
    assert [m.to for m in OutboxMessage.objects.filter(template="webhook_disabled")] == [alice.email]
    audited = AuditEntry.objects.get(action="webhook.disabled", target_id=str(endpoint.pk))
    assert audited.actor is None and audited.after["reason"] == endpoint.disabled_reason
    waiting = WebhookDelivery.objects.filter(endpoint=endpoint).order_by("id")
    assert [(d.status, d.attempts) for d in waiting] == [("pending", 8)] + [("pending", 7)] * 4
    receiver.default = "ok"
    webhook_endpoint_enable(endpoint=endpoint, actor=alice)
    assert webhooks_send_due() == 5
    assert [r.headers["x-sla-delivery"] for r in receiver.received[-5:]] == [str(d.delivery_id) for d in deliveries]


def test_a_response_lost_in_transit_means_the_same_id_again(receiver, endpoint, clock):
    (delivery,) = emit(endpoint, 1)
    receiver.script = ["drop"]
    assert webhooks_send_due() == 0
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.last_error  # e.g. RemoteDisconnected
    clock.shift(timedelta(minutes=1))
    assert webhooks_send_due() == 1
    assert [r.headers["x-sla-delivery"] for r in receiver.received] == [str(delivery.delivery_id)] * 2


def test_a_delivery_that_fails_alone_is_parked_and_the_next_goes_on(receiver, endpoint, clock, settings):
    """Ticket 1's first event is refused every time while the receiver accepts ticket 2's: the
    failure is that delivery's, not the endpoint's. It is parked and ticket 1's next event goes on."""
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    first, second = emit(endpoint, 2)
    (other,) = emit(endpoint, 1, subject="ticket:2")
    receiver.script = [422, "ok", 422, 422]
    for minutes in (0, 1, 2):
        clock.move_to(T0 + timedelta(minutes=sum(2**i for i in range(minutes))))
        webhooks_send_due()
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.attempts) == ("parked", 3)
    assert (second.status, second.attempts) == ("delivered", 1)
    assert [r.headers["x-sla-delivery"] for r in receiver.received] == [
        str(first.delivery_id), str(other.delivery_id), str(first.delivery_id), str(first.delivery_id),
        str(second.delivery_id),
    ]  # fmt: skip
    endpoint.refresh_from_db()
    assert endpoint.enabled and not OutboxMessage.objects.filter(template="webhook_disabled").exists()


def test_redirects_are_not_followed(receiver, endpoint, clock):
    (delivery,) = emit(endpoint, 1)
    receiver.script = ["redirect"]
    assert webhooks_send_due() == 0
    delivery.refresh_from_db()
    assert delivery.last_status_code == 302
    assert delivery.last_error == "HTTP 302: redirects are not followed (Location: https://10.0.0.5/internal)"
    assert len(receiver.received) == 1


def test_a_failing_endpoint_is_disabled_and_its_admins_emailed(receiver, endpoint, alice, bob, clock, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    for choice in Choice:  # an account email: it goes whatever Alice turned off (portal.core.notify_rules)
        preference_set(user=alice, choice=choice, enabled=False, via="page")
    first, second = emit(endpoint, 2)
    receiver.default = 503
    for minutes in (0, 1, 3):
        clock.move_to(T0 + timedelta(minutes=minutes))
        webhooks_send_due()
    endpoint.refresh_from_db()
    assert not endpoint.enabled and endpoint.disabled_at == T0 + timedelta(minutes=3)
    assert endpoint.disabled_reason == (
        "Disabled: a delivery failed all 3 attempts and the endpoint accepted nothing meanwhile; the last: HTTP 503"
    )
    assert WebhookDelivery.objects.get(pk=first.pk).status == "pending"  # the endpoint's failure: not given up
    mails = list(OutboxMessage.objects.filter(template="webhook_disabled"))
    assert [m.to for m in mails] == [alice.email]  # customer admins only
    assert mails[0].headers == {}  # no unsubscribe link on a mandatory email
    subject, text, html = outbox_render(mails[0])
    assert subject == f"Webhook endpoint disabled: {receiver.url}"
    assert "it has accepted none of them for a while (its last 3 attempts failed)." in text
    assert "HTTP 503" in text and "/webhooks/" in text
    # Disabled: nothing is sent, and nothing new is recorded for it.
    clock.shift(timedelta(hours=2))
    assert webhooks_send_due() == 0 and len(receiver.received) == 3
    assert emit(endpoint, 3)[-1].pk == second.pk
    # Enabled again: the waiting deliveries go out, in order.
    receiver.default = "ok"
    webhook_endpoint_enable(endpoint=endpoint, actor=alice)
    assert webhooks_send_due() == 2
    assert [r.headers["x-sla-delivery"] for r in receiver.received[3:]] == [
        str(first.delivery_id),
        str(second.delivery_id),
    ]


def test_a_delivery_is_never_held_by_two_senders(receiver, endpoint, clock, settings):
    first, _second = emit(endpoint, 2)
    claimed = webhook_claim(now=T0, limit=10)
    assert [d.pk for d in claimed] == [first.pk]  # the head of the endpoint's queue, alone
    assert webhook_claim(now=T0, limit=10) == []  # leased; the next waits behind it
    # The sender died: when its lease runs out the delivery is anyone's again (at least once).
    later = T0 + settings.WEBHOOK_LEASE + timedelta(seconds=1)
    retaken = webhook_claim(now=later, limit=10)
    assert [d.pk for d in retaken] == [first.pk] and retaken[0].attempts == 2
    assert webhook_deliver(deliveries=claimed) == 0  # the stale sender finds it is no longer its row
    assert receiver.received == []
    assert webhook_deliver(deliveries=retaken) == 1


def test_a_corrected_address_sends_the_waiting_deliveries_at_once_with_a_clean_slate(
    receiver, endpoint, alice, clock, settings, django_capture_on_commit_callbacks
):
    """Alice's receiver answered 500 at a mistyped path: the head delivery failed 6 times, its next
    try 32 minutes away. She corrects the URL: it and the one behind it go now, and her endpoint's
    failures in a row are forgotten (its page no longer shows them)."""
    webhook_endpoint_update(endpoint=endpoint, actor=alice, url=receiver.url + "-typo", events=TICKET_EVENTS)
    first, second = emit(endpoint, 2)
    receiver.default = 500
    for minutes in (0, 1, 3, 7, 15, 31):
        clock.move_to(T0 + timedelta(minutes=minutes))
        webhooks_send_due()
    first.refresh_from_db()
    assert (first.status, first.attempts, first.next_attempt_at) == ("pending", 6, T0 + timedelta(minutes=63))
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).consecutive_failures == 6

    clock.move_to(T0 + timedelta(minutes=32))
    receiver.default = "ok"
    with django_capture_on_commit_callbacks(execute=True):  # the update asks for a sweep
        webhook_endpoint_update(endpoint=endpoint, actor=alice, url=receiver.url, events=TICKET_EVENTS)
    assert WebhookDelivery.objects.get(pk=first.pk).status == "delivered"
    assert WebhookDelivery.objects.get(pk=second.pk).status == "delivered"
    assert all(r.path == "/hooks/sla" for r in receiver.received[6:]) and len(receiver.received) == 8
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0 and endpoint.last_success_at == T0 + timedelta(minutes=32)


def test_changing_only_the_events_keeps_the_backoff(receiver, endpoint, alice, clock):
    (delivery,) = emit(endpoint, 1)
    receiver.script = [500]
    webhooks_send_due()
    webhook_endpoint_update(endpoint=endpoint, actor=alice, url=receiver.url, events=["ticket.filed"])
    assert WebhookDelivery.objects.get(pk=delivery.pk).next_attempt_at == T0 + timedelta(minutes=1)
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).consecutive_failures == 1


def test_a_test_event_goes_out_at_once_past_deliveries_waiting_to_retry(receiver, endpoint, alice, clock):
    first, _second = emit(endpoint, 2)
    receiver.script = [500]
    webhooks_send_due()
    clock.shift(timedelta(seconds=10))
    ping = webhook_send_test(endpoint=endpoint, actor=alice)
    assert webhooks_send_due() == 1
    assert [json.loads(r.body)["event"] for r in receiver.received] == ["ticket.updated", "ping"]
    ping.refresh_from_db()
    assert ping.status == "delivered" and WebhookDelivery.objects.get(pk=first.pk).status == "pending"


def test_a_rotated_secret_signs_beside_the_previous_one_for_the_grace(receiver, endpoint, alice, clock):
    old = endpoint.secret
    new = webhook_secret_rotate(endpoint=endpoint, actor=alice)
    assert new != old and new.startswith("whsec_")
    emit(endpoint, 1)
    webhooks_send_due()
    header, body = receiver.received[0].headers["x-sla-signature"], receiver.received[0].body
    assert header.count("v1=") == 2
    assert verify(new, header, body, now=T0.timestamp()) and verify(old, header, body, now=T0.timestamp())
    clock.shift(timedelta(hours=24, seconds=1))
    webhooks_emit(
        events=[HookEvent(organisation_id=endpoint.organisation_id, event="ticket.updated", key="late", data={})]
    )
    webhooks_send_due()
    header, body = receiver.received[1].headers["x-sla-signature"], receiver.received[1].body
    assert header.count("v1=") == 1 and not verify(old, header, body, now=(T0 + timedelta(hours=24)).timestamp())


# --- A claim's cost ---------------------------------------------------------------------------------
def _claim_steps(endpoint, waiting: int, history: int = 0) -> int:
    """SQLite's virtual-machine steps (in thousands: deterministic, unlike a time) of one claim, with
    `waiting` deliveries about as many tickets, the older half waiting out a backoff and the newer
    half due (a receiver that failed for a while), and `history` delivered ones."""
    if connection.vendor == "postgresql":  # fresh pages: a delete leaves its rows in them until a vacuum
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("TRUNCATE portal_webhookdelivery")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    else:
        WebhookDelivery.objects.all().delete()
    rows = [
        WebhookDelivery(
            endpoint=endpoint, event="ticket.updated", key=f"ticket:{i}:k", subject=f"ticket:{i}", payload={},
            created_at=T0, attempts=3 if i < waiting // 2 else 0,
            next_attempt_at=T0 + timedelta(minutes=30) if i < waiting // 2 else T0,
        )
        for i in range(waiting)
    ] + [
        WebhookDelivery(
            endpoint=endpoint, event="ticket.updated", key=f"old:{i}:k", subject=f"old:{i}", payload={},
            created_at=T0, next_attempt_at=T0, status="delivered",
        )
        for i in range(history)
    ]  # fmt: skip
    WebhookDelivery.objects.bulk_create(rows)
    if connection.vendor == "postgresql":
        work = _rows_visited(WebhookDelivery.objects.filter(_due(T0)).filter(_candidates(T0)))
        claimed = webhook_claim(now=T0, limit=50)
    else:
        steps = [0]

        def tick():
            steps[0] += 1
            return 0

        connection.ensure_connection()
        connection.connection.set_progress_handler(tick, 1000)
        try:
            claimed = webhook_claim(now=T0, limit=50)
        finally:
            connection.connection.set_progress_handler(None, 1000)
        work = steps[0]
    assert [d.key for d in claimed] == [f"ticket:{waiting // 2}:k"]  # the endpoint's earliest due one, alone
    return work


def _rows_visited(queryset) -> int:
    """PostgreSQL's count of the buffer pages the claim's query read (EXPLAIN ANALYZE BUFFERS:
    deterministic, unlike a time; an index range that finds nothing still costs its pages)."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE portal_webhookdelivery")  # fresh statistics, as autovacuum keeps them
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    plan = (plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"]
    return plan["Shared Hit Blocks"] + plan["Shared Read Blocks"]


def test_a_claim_costs_in_proportion_to_the_waiting_deliveries_not_their_square(endpoint):
    """Each due delivery was checked against every earlier one of its endpoint: 4,000 waiting took
    3-7 s a claim, and every round of every sweep claims for all endpoints. Four times the rows now
    cost about four times the steps (sixteen before); delivered history costs nothing. SQLite's
    virtual-machine steps, PostgreSQL's rows visited."""
    small, large = _claim_steps(endpoint, 500), _claim_steps(endpoint, 2000)
    assert large < 6 * small, (small, large)
    assert _claim_steps(endpoint, 500, history=5000) < 2 * small


# --- What the services and sweeps report ----------------------------------------------------------
def test_breaches_and_escalations_are_reported_once(endpoint, acme_contract, alice, clock):
    StaffFactory(email="lena@vendor.example", staff_role="support_lead")
    ticket = file(acme_contract, alice, priority="P1")
    for _ in range(2):  # a sweep run twice reports once
        clock.move_to(T0 + timedelta(minutes=16))
        escalate_due_tickets()
        check_sla_deadlines()
    rows = {d.key: d for d in WebhookDelivery.objects.all()}
    assert set(rows) == {
        f"ticket:{ticket.pk}:filed", f"ticket:{ticket.pk}:escalation:2", f"ticket:{ticket.pk}:crossing:first_response:breach",
    }  # fmt: skip
    breach = rows[f"ticket:{ticket.pk}:crossing:first_response:breach"].payload
    assert breach["event"] == "ticket.breached" and breach["data"]["ticket"]["breached"] is True
    assert breach["data"]["breach"]["clock"] == "first_response"
    escalation = rows[f"ticket:{ticket.pk}:escalation:2"].payload["data"]
    assert escalation["escalation"] == {"from": 1, "to": 2} and escalation["ticket"]["escalation_level"] == 2
    lead = StaffFactory(email="lead2@vendor.example", staff_role="support_lead")
    ticket_escalate_now(ticket=ticket, actor=lead)
    assert WebhookDelivery.objects.get(key=f"ticket:{ticket.pk}:escalation:3").payload["data"]["escalation"] == {
        "from": 2, "to": 3,
    }  # fmt: skip


def test_a_claim_decision_is_reported(endpoint, acme_contract, alice, ayo):
    with time_machine.travel(datetime(2026, 11, 3, 10, 0, tzinfo=NBO), tick=False):
        claim = claim_submit(contract=acme_contract, month=date(2026, 10, 1), user=alice, note="Outage")
        claim_reject(claim=claim, actor=ayo, reason="No downtime was recorded in October.")
    payload = WebhookDelivery.objects.get(event="claim.decided").payload
    assert payload["data"]["claim"]["status"] == "rejected"
    assert (payload["data"]["claim"]["eligible_amount"], payload["data"]["claim"]["amount"]) == (None, None)
    assert payload["data"]["claim"]["decision_reason"] == "No downtime was recorded in October."
    assert payload["data"]["claim"]["month"] == "2026-10"


def test_a_claims_amounts_are_given_as_the_api_gives_them(endpoint, acme, alice, ayo):
    """In the currency's minor unit, as text: the API's spelling, not the database's four decimals."""
    from decimal import Decimal

    from rest_framework.test import APIClient

    from contracts.models import Outage
    from credits.services import claim_approve

    from .factories import ContractFactory

    yen = ContractFactory(
        organisation=acme, reference="KAL-JPY", monthly_invoice_amount=Decimal("12345"), currency="JPY"
    )
    start = datetime(2026, 10, 10, 2, 0, tzinfo=NBO)
    outage = Outage.objects.create(title="Storage down", starts_at=start, ends_at=start + timedelta(minutes=500))
    outage.services.set(yen.services.all())
    with time_machine.travel(datetime(2026, 11, 3, 10, 0, tzinfo=NBO), tick=False):
        claim = claim_submit(contract=yen, month=date(2026, 10, 1), user=alice)
        claim_approve(claim=claim, actor=ayo)
        api = APIClient()
        api.force_authenticate(alice)
        shown = api.get(f"/api/v1/claims/{claim.pk}/").json()
    sent = WebhookDelivery.objects.get(event="claim.decided").payload["data"]["claim"]
    # 10% of JPY 12,345 = 1,234.5, half-up to the yen.
    assert (sent["eligible_amount"], sent["amount"]) == ("1235", "1235")
    assert (sent["eligible_amount"], sent["amount"]) == (shown["eligible_amount"], shown["amount"])


def test_a_change_that_rolls_back_reports_nothing(endpoint, acme_contract, alice):
    with pytest.raises(RuntimeError), transaction.atomic():
        file(acme_contract, alice)
        assert WebhookDelivery.objects.count() == 1  # written with the change ...
        raise RuntimeError("the change fails after the ticket was filed")
    assert not WebhookDelivery.objects.exists()  # ... and gone with it


# --- PostgreSQL: two sweeps at once ---------------------------------------------------------------
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_send_each_delivery_once_and_in_order(receiver, alice, charlie, monkeypatch):
    monkeypatch.setattr("portal.core.webhooks._dispatch", lambda: None)  # the broker is down: rows wait
    endpoints = [
        WebhookEndpoint.objects.create(
            organisation=user.organisation,
            url=receiver.url,
            events=["ticket.updated"],
            secret=f"whsec_{n}",
            created_at=T0,
        )  # fmt: skip
        for n, user in enumerate([alice, alice, charlie])
    ]
    for endpoint in endpoints:
        emit(endpoint, 6)
    barrier = threading.Barrier(2)
    sent, errors = [], []

    def sweep():
        try:
            barrier.wait(timeout=10)
            sent.append(webhooks_send_due(batch=2))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and sum(sent) == 18
    ids = [r.headers["x-sla-delivery"] for r in receiver.received]
    assert len(ids) == len(set(ids)) == 18  # each once
    for endpoint in endpoints:
        mine = [str(d) for d in endpoint.deliveries.order_by("id").values_list("delivery_id", flat=True)]
        assert [i for i in ids if i in mine] == mine  # in order per endpoint


def test_an_endpoint_that_dies_during_a_deliverys_retries_is_disabled_and_nothing_is_parked(
    receiver, endpoint, alice, clock
):
    (first,) = emit(endpoint, 1, subject="ticket:1")
    receiver.script = [503, "ok"]
    webhooks_send_due()  # ticket 1's event: 503 (a blip)
    clock.shift(timedelta(seconds=30))
    (other,) = emit(endpoint, 1, subject="ticket:2")
    webhooks_send_due()  # ticket 2's event accepted: the last thing the endpoint ever accepts
    other.refresh_from_db()
    assert other.status == "delivered"
    receiver.default = 503  # dead from here on
    for _ in range(3 * 60):
        clock.shift(timedelta(minutes=1))
        webhooks_send_due()
    first.refresh_from_db()
    endpoint.refresh_from_db()
    assert first.attempts >= 8
    assert not endpoint.enabled, "a dead endpoint stays enabled"
    assert [m.to for m in OutboxMessage.objects.filter(template="webhook_disabled")] == [alice.email]
    assert first.status == "pending", f"ticket 1's event was {first.status}"
