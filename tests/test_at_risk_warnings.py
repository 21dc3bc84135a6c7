"""Warnings before a breach (issue 21, item 2): each clock (first response, the resolution limit, an
escalation request's acknowledgement) warns the assignee, or the queue (the support agents), and the
support lead when only the at-risk share of its allowance is left (SLA_AT_RISK_SHARE: a quarter),
once; a P1's first response also reaches the vendor's on-call tool as a signed `ticket.at_risk`.

Alice (Acme, Kaluari Cloud Backup, Nairobi) files on Friday 11 December 2026 at 16:00. A P1's
first response is due in 15 minutes (24x7): at risk from 16:11:15. Lena, the support lead, lives in
Berlin. Clocks are frozen."""

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

from portal.core.webhook_delivery import webhooks_send_due
from portal.core.webhooks import SUBSCRIBABLE, vendor_endpoint_create, webhook_endpoint_create
from portal.models import AuditEntry, OutboxMessage, WebhookDelivery, WebhookEndpoint
from tickets import mail_thread
from tickets.models import SLACrossing
from tickets.recompute import tickets_recompute
from tickets.services import ticket_open, ticket_reply, ticket_request_escalation, ticket_set_status
from tickets.sweeps import check_sla_deadlines

from .factories import StaffFactory
from .test_webhooks import verify

pytestmark = pytest.mark.django_db
NBO = ZoneInfo("Africa/Nairobi")
T0 = datetime(2026, 12, 11, 16, 0, tzinfo=NBO)


@pytest.fixture
def lena(db):
    return StaffFactory(
        email="lena@vendor.example", name="Lena Lead", staff_role="support_lead", timezone="Europe/Berlin"
    )


def file(contract, user, priority, at=T0):
    with time_machine.travel(at, tick=False):
        return ticket_open(user=user, contract=contract, service=contract.services.get(), priority=priority,
                           subject="Backups fail", description="Nothing backs up since last night.")  # fmt: skip


def reply(ticket, author, at):
    with time_machine.travel(at, tick=False):
        ticket_reply(ticket=ticket, author=author, body="Looking into it.")


def sweep(at, capture):
    """The crossing sweep at `at`, its emails sent then (as the worker would)."""
    with time_machine.travel(at, tick=False), capture(execute=True):
        return check_sla_deadlines()


def warnings_to(ticket) -> dict:
    return {m.to[0]: m for m in mail.outbox if "At risk" in m.subject and ticket.number in m.subject}


def test_a_p1_warns_once_before_its_first_response_is_due_and_pages_the_on_call_tool(
    acme_contract, alice, sam, lena, receiver, django_capture_on_commit_callbacks
):
    with time_machine.travel(T0, tick=False):
        on_call, secret = vendor_endpoint_create(actor=lena, url=receiver.url, description="On-call")
        # A customer's endpoint with every ticket event never hears of the vendor's warning.
        webhook_endpoint_create(actor=alice, url=receiver.url, events=["ticket.breached", "ticket.updated"])
    t = file(acme_contract, alice, "P1")
    assert t.first_response_warn_at == T0 + timedelta(minutes=11, seconds=15)
    mail.outbox.clear()

    assert sweep(T0 + timedelta(minutes=11, seconds=14), django_capture_on_commit_callbacks) == 0
    assert sweep(T0 + timedelta(minutes=11, seconds=15), django_capture_on_commit_callbacks) == 1
    sent = warnings_to(t)
    # Unassigned: the queue (Sam, the support agent) and the lead.
    assert set(sent) == {sam.email, lena.email}
    to_lena = sent[lena.email]
    assert to_lena.subject == f"[{t.number}] At risk: first response due in 3 min (P1): Backups fail"
    assert "is at risk of missing its first response deadline" in to_lena.body
    assert "Due: 2026-12-11 16:15 (UTC+03:00), the contract's time (Africa/Nairobi)" in to_lena.body
    assert "2026-12-11 14:15 (UTC+01:00), your time (Europe/Berlin)" in to_lena.body
    assert "Left: 3 min of working time" in to_lena.body
    assert "your time" not in sent[sam.email].body  # Sam has no timezone of his own
    for m in sent.values():
        assert m.extra_headers["In-Reply-To"] == mail_thread.root_id(t)
        assert m.extra_headers["Reply-To"] == mail_thread.reply_address_for(t, m.to[0])
        assert m.extra_headers["Auto-Submitted"] == "auto-generated"

    # Once: a second sweep, a recompute (as after a calendar edit) and a sweep again send nothing.
    mail.outbox.clear()
    assert sweep(T0 + timedelta(minutes=12), django_capture_on_commit_callbacks) == 0
    with time_machine.travel(T0 + timedelta(minutes=13), tick=False):
        tickets_recompute([t.pk])
    assert sweep(T0 + timedelta(minutes=14), django_capture_on_commit_callbacks) == 0
    assert not warnings_to(t)
    assert OutboxMessage.objects.filter(key__contains=":at_risk:").count() == 2
    assert SLACrossing.objects.filter(ticket=t, kind="at_risk").count() == 1

    # The on-call tool: one signed delivery of ticket.at_risk, to the vendor's endpoint only.
    with time_machine.travel(T0 + timedelta(minutes=14), tick=False):
        webhooks_send_due()
    (got,) = [r for r in receiver.received if json.loads(r.body)["event"] == "ticket.at_risk"]
    assert WebhookDelivery.objects.filter(event="ticket.at_risk").get().endpoint == on_call
    assert verify(secret, got.headers["x-sla-signature"], got.body, now=(T0 + timedelta(minutes=14)).timestamp())
    data = json.loads(got.body)["data"]
    assert data["ticket"]["number"] == t.number and data["ticket"]["organisation"] == "Acme Savings"
    assert data["at_risk"] == {
        "clock": "first_response",
        "deadline": "2026-12-11T13:15:00Z",
        "working_seconds_left": 225,
    }


def test_a_p1_warning_reaches_the_on_call_tool_before_the_p1_breaches_although_an_earlier_one_waits_to_retry(
    acme_contract, alice, lena, receiver, client
):
    """The on-call tool is down from 16:11 to 16:19 (503). P1 A (16:00) warns at 16:11:30 and its
    warning fails until it waits for a retry at 16:26:30; P1 B (16:06, due 16:21) warns at 16:17:30.
    B's warning is about another ticket: it does not wait for A's, and on-call hears of B in time."""
    with time_machine.travel(T0, tick=False):
        on_call, _ = vendor_endpoint_create(actor=lena, url=receiver.url, description="On-call")
    a = file(acme_contract, alice, "P1")
    b = file(acme_contract, alice, "P1", at=T0 + timedelta(minutes=6))
    assert b.first_response_due == T0 + timedelta(minutes=21)
    tool_back = T0 + timedelta(minutes=19)
    arrived = {}
    moment = T0 + timedelta(minutes=11, seconds=30)
    while moment < T0 + timedelta(minutes=25):  # the sweeps, every 30 s
        receiver.default = "ok" if moment >= tool_back else 503
        with time_machine.travel(moment, tick=False):
            check_sla_deadlines()
            webhooks_send_due()
        for d in WebhookDelivery.objects.filter(status="delivered"):
            arrived.setdefault(d.key, d.delivered_at)
        moment += timedelta(seconds=30)
    warning = "ticket:{}:crossing:first_response:at_risk"
    # B's own retries: failed at 16:17:30 and 16:18:30, sent at 16:20:30, before B's deadline.
    assert arrived == {warning.format(b.pk): T0 + timedelta(minutes=20, seconds=30)}
    held = WebhookDelivery.objects.get(key=warning.format(a.pk))  # A's: its own backoff, holding nobody
    assert (held.status, held.attempts, held.next_attempt_at) == ("pending", 4, T0 + timedelta(minutes=26, seconds=30))
    on_call.refresh_from_db()
    assert on_call.enabled and on_call.consecutive_failures == 0
    # The lead sees the failing warning on the endpoint's page (in her zone, Berlin), not only once
    # the endpoint is disabled.
    client.force_login(lena)
    page = client.get(reverse("admin:portal_vendorwebhookendpoint_change", args=[on_call.pk])).content.decode()
    assert "Recent deliveries" in page and "HTTP 503" in page and "HTTP 204" in page
    assert "Pending, next try 2026-12-11 14:26 (UTC+01:00)" in page
    assert "2026-12-11 14:11 (UTC+01:00)" in page  # A's warning, recorded at 16:11:30 in Nairobi


def test_an_on_call_tool_that_accepts_nothing_is_disabled_its_leads_told_and_its_warnings_kept(
    acme_contract, alice, lena, receiver, settings
):
    """The on-call tool is down for good. When the P1's warning has failed its last attempt (here the
    2nd) and the tool has accepted nothing since, the tool is disabled and the support leads are
    emailed; the warning is not given up: it goes once a lead re-enables the endpoint."""
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    with time_machine.travel(T0, tick=False):
        on_call, _ = vendor_endpoint_create(actor=lena, url=receiver.url, description="On-call")
    t = file(acme_contract, alice, "P1")
    receiver.default = 503
    for minutes in (11.5, 12.5):
        with time_machine.travel(T0 + timedelta(minutes=minutes), tick=False):
            check_sla_deadlines()
            webhooks_send_due()
    on_call.refresh_from_db()
    assert not on_call.enabled
    assert [m.to for m in OutboxMessage.objects.filter(template="webhook_disabled")] == [lena.email]
    warning = WebhookDelivery.objects.get(key=f"ticket:{t.pk}:crossing:first_response:at_risk")
    assert (warning.status, warning.attempts) == ("pending", 2)


def test_an_escalation_request_warns_before_its_acknowledgement_is_due(
    acme_contract, alice, sam, lena, django_capture_on_commit_callbacks
):
    t = file(acme_contract, alice, "P2")
    t.assignee = sam
    t.save(update_fields=["assignee"])
    with time_machine.travel(T0 + timedelta(minutes=1), tick=False):
        request = ticket_request_escalation(ticket=t, user=alice, reason="Still down.")
    request.refresh_from_db()
    allowance = request.ack_due - request.requested_at  # the P2 first-response time, 24x7
    assert request.ack_warn_at == request.requested_at + allowance * 3 / 4
    mail.outbox.clear()
    sweep(request.ack_warn_at - timedelta(seconds=1), django_capture_on_commit_callbacks)
    assert not SLACrossing.objects.filter(clock=f"ack:{request.pk}").exists()
    sweep(request.ack_warn_at, django_capture_on_commit_callbacks)
    sweep(request.ack_warn_at + timedelta(minutes=1), django_capture_on_commit_callbacks)
    assert SLACrossing.objects.filter(clock=f"ack:{request.pk}", kind="at_risk").count() == 1
    ack = [m for m in warnings_to(t).values() if "acknowledgement" in m.subject]
    assert {m.to[0] for m in ack} == {sam.email, lena.email}  # the assignee and the lead, not the queue
    assert ack[0].subject.startswith(f"[{t.number}] At risk: acknowledgement of the customer's escalation request")

    # Unacknowledged at its deadline: a breach, told to staff of the customer's request and to the
    # customer of hers (the staff email said "your escalation request").
    mail.outbox.clear()
    sweep(request.ack_due, django_capture_on_commit_callbacks)
    breach = {m.to[0]: m.subject for m in mail.outbox if "acknowledgement" in m.subject}
    assert breach[sam.email].startswith(
        f"[{t.number}] SLA BREACH, acknowledgement of the customer's escalation request (P2"
    )
    assert breach[alice.email] == (
        f"[{t.number}] We missed the acknowledgement of your escalation request deadline: {t.subject}"
    )


def test_a_range_warns_at_the_share_of_its_limit_not_of_its_target(
    acme_contract, alice, sam, lena, django_capture_on_commit_callbacks
):
    # Kaluari P3 (business hours 08:00-17:00): resolution target 12 h, limit 24 h. A quarter of the
    # limit left: after 18 working hours (Friday 1 h, Monday 9 h, Tuesday 8 h), Tuesday 16:00.
    t = file(acme_contract, alice, "P3")
    assert t.resolution_warn_at == datetime(2026, 12, 15, 16, 0, tzinfo=NBO)
    assert t.at_risk_at < t.resolution_target_at < t.resolution_warn_at < t.resolution_due
    mail.outbox.clear()
    sweep(datetime(2026, 12, 15, 10, 0, tzinfo=NBO), django_capture_on_commit_callbacks)  # the target passes
    assert not SLACrossing.objects.filter(ticket=t, clock="resolution", kind="at_risk").exists()
    sweep(datetime(2026, 12, 15, 16, 0, tzinfo=NBO), django_capture_on_commit_callbacks)
    assert SLACrossing.objects.filter(ticket=t, clock="resolution", kind="at_risk").count() == 1
    (to_sam,) = [m for m in warnings_to(t).values() if m.to == [sam.email] and "resolution" in m.subject]
    assert "Left: 6 h of working time" in to_sam.body  # Tuesday 16-17, Wednesday 08-13
    # Its subject does not say "due in 6 h": that is 21 hours away on the wall clock.
    assert to_sam.subject == f"[{t.number}] At risk: resolution, 6 h of working time left (P3): Backups fail"
    assert "Due: 2026-12-16 13:00 (UTC+03:00)" in to_sam.body


def test_support_leads_register_the_on_call_endpoint_in_the_admin_and_agents_cannot(client, sam, lena, receiver):
    add = reverse("admin:portal_vendorwebhookendpoint_add")
    client.force_login(sam)
    assert client.get(add).status_code == 403
    client.force_login(lena)
    refused = client.post(add, {"url": "http://10.0.0.5/hook", "description": "On-call"})
    assert refused.status_code == 200 and not WebhookEndpoint.objects.exists()
    assert "url" in refused.context["adminform"].form.errors
    response = client.post(add, {"url": receiver.url, "description": "On-call"}, follow=True)
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.organisation is None and endpoint.events == ["ticket.at_risk"]
    assert any(endpoint.secret in str(m) for m in response.context["messages"])
    assert AuditEntry.objects.filter(action="webhook.created", actor=lena).exists()
    # Customers' webhook pages never list it, nor offer its event.
    assert "ticket.at_risk" not in dict(SUBSCRIBABLE)


def test_a_reopened_ticket_does_not_warn_again_for_a_clock_that_warned(
    acme_contract, alice, sam, lena, django_capture_on_commit_callbacks
):
    # P1: resolution within 1 h (24x7), at risk from 16:45. Resolved at 16:50, reopened at 16:52:
    # the clock resumes where it stopped (its deadline 2 minutes later), at risk again from the
    # reopening on, and its warning was given.
    t = file(acme_contract, alice, "P1")
    reply(t, sam, T0 + timedelta(minutes=5))
    sweep(T0 + timedelta(minutes=45), django_capture_on_commit_callbacks)
    with time_machine.travel(T0 + timedelta(minutes=50), tick=False):
        ticket_set_status(ticket=t, actor=sam, status="resolved")
    with time_machine.travel(T0 + timedelta(minutes=52), tick=False):
        ticket_set_status(ticket=t, actor=alice, status="open")
    t.refresh_from_db()
    assert t.resolution_warn_at == T0 + timedelta(minutes=45) and t.resolution_due == T0 + timedelta(minutes=62)
    sweep(T0 + timedelta(minutes=53), django_capture_on_commit_callbacks)
    assert SLACrossing.objects.filter(ticket=t, clock="resolution", kind="at_risk").count() == 1
    assert OutboxMessage.objects.filter(key__contains=":resolution:at_risk:").count() == 2  # Sam and Lena, once


def _acknowledgement_mail() -> list[str]:
    return [f"{m.to[0]}: {m.subject}" for m in mail.outbox if "acknowledgement" in m.subject]


def _asked(contract, alice, sam):
    """Alice's P2 (first response 1 h, 24x7) and her escalation request a minute after filing: to be
    acknowledged by 17:01, at risk from 16:46."""
    t = file(contract, alice, "P2")
    t.assignee = sam
    t.save(update_fields=["assignee"])
    with time_machine.travel(T0 + timedelta(minutes=1), tick=False):
        request = ticket_request_escalation(ticket=t, user=alice, reason="Still down.")
    assert (request.ack_warn_at, request.ack_due) == (T0 + timedelta(minutes=46), T0 + timedelta(minutes=61))
    return t, request


def test_an_excluded_tickets_escalation_request_neither_warns_nor_breaches(
    acme_contract, alice, sam, lena, django_capture_on_commit_callbacks
):
    """Lena takes the ticket out of the SLA: its request's acknowledgement has no deadline any more,
    so nobody is warned, the customer is not told of a missed deadline and nothing is recorded."""
    from tickets.services import ticket_exclude

    t, request = _asked(acme_contract, alice, sam)
    with time_machine.travel(T0 + timedelta(minutes=2), tick=False):
        ticket_exclude(ticket=t, actor=lena, cause=t.sla_version.exclusion_causes[0], reason="Customer's own config.")
    request.refresh_from_db()
    assert (request.ack_due, request.ack_warn_at, request.acknowledged_at) == (None, None, None)  # still pending
    mail.outbox.clear()
    for minutes in (46, 61, 62):
        sweep(T0 + timedelta(minutes=minutes), django_capture_on_commit_callbacks)
    assert _acknowledgement_mail() == []
    assert not SLACrossing.objects.filter(ticket=t).exists()
    t.refresh_from_db()
    assert not t.breached and t.next_sla_check_at is None


def test_a_request_on_an_excluded_ticket_has_no_deadline_and_its_emails_say_so(
    acme_contract, alice, sam, lena, django_capture_on_commit_callbacks
):
    from tickets.services import ticket_exclude

    t = file(acme_contract, alice, "P2")
    with time_machine.travel(T0 + timedelta(minutes=2), tick=False):
        ticket_exclude(ticket=t, actor=lena, cause=t.sla_version.exclusion_causes[0], reason="Customer's own config.")
    mail.outbox.clear()
    with time_machine.travel(T0 + timedelta(minutes=3), tick=False), django_capture_on_commit_callbacks(execute=True):
        request = ticket_request_escalation(ticket=t, user=alice, reason="Still down.")
    assert request.ack_due is None
    asked = {m.to[0]: m.body for m in mail.outbox if "escalat" in m.subject.lower()}
    assert "outside the SLA, so its acknowledgement has no deadline" in asked[alice.email]
    staff = [body for to, body in asked.items() if to != alice.email]  # the queue and the lead
    assert staff and all("excluded from the SLA, so there is no deadline" in body for body in staff)
    assert all("—" not in body for body in asked.values())


def test_a_resolved_tickets_escalation_request_waits_and_resumes_where_it_stopped_on_reopening(
    acme_contract, alice, sam, lena, django_capture_on_commit_callbacks
):
    """Sam resolves the ticket from the status form (no public reply: the request stays pending) at
    16:10, 51 minutes of its acknowledgement left. Resolved, the clock is stopped: no warning at
    16:46, no breach at 17:01. Alice reopens it at 18:00: the 51 minutes run again, at risk from
    18:36 (the warning goes out then, once), due at 18:51."""
    t, request = _asked(acme_contract, alice, sam)
    with time_machine.travel(T0 + timedelta(minutes=10), tick=False):
        ticket_set_status(ticket=t, actor=sam, status="resolved")
    request.refresh_from_db()
    assert (request.ack_due, request.ack_warn_at) == (None, None)
    mail.outbox.clear()
    for minutes in (46, 61, 62):
        sweep(T0 + timedelta(minutes=minutes), django_capture_on_commit_callbacks)
    assert _acknowledgement_mail() == []
    assert not SLACrossing.objects.filter(ticket=t).exists()

    with time_machine.travel(T0 + timedelta(hours=2), tick=False):
        ticket_set_status(ticket=t, actor=alice, status="open")
    request.refresh_from_db()
    assert (request.ack_warn_at, request.ack_due) == (
        T0 + timedelta(hours=2, minutes=36), T0 + timedelta(hours=2, minutes=51)
    )  # fmt: skip
    mail.outbox.clear()
    sweep(T0 + timedelta(hours=2, minutes=35), django_capture_on_commit_callbacks)
    assert _acknowledgement_mail() == []
    sweep(T0 + timedelta(hours=2, minutes=36), django_capture_on_commit_callbacks)
    assert sorted(_acknowledgement_mail()) == [
        f"{lena.email}: [{t.number}] At risk: acknowledgement of the customer's escalation request due in 15 min (P2): Backups fail",
        f"{sam.email}: [{t.number}] At risk: acknowledgement of the customer's escalation request due in 15 min (P2): Backups fail",
    ]  # fmt: skip


def test_a_priority_change_that_moves_a_deadline_warns_before_the_new_one(
    acme_contract, alice, sam, lena, django_capture_on_commit_callbacks
):
    """Alice's P2 (first response within 1 h, 24x7) warns at 16:45 of its 17:00 deadline. At 16:50 Lena
    lowers it to P4 (8 business hours, 08:00-17:00): due Monday 14 December 15:00, a quarter left from
    13:00. That deadline is warned of at 13:00, once; the Friday warning stays on record."""
    from tickets.services import ticket_change_priority

    t = file(acme_contract, alice, "P2")
    t.assignee = sam
    t.save(update_fields=["assignee"])
    sweep(T0 + timedelta(minutes=45), django_capture_on_commit_callbacks)
    with time_machine.travel(T0 + timedelta(minutes=50), tick=False):
        ticket_change_priority(ticket=t, actor=lena, priority="P4", reason="Only one agent affected.")
    t.refresh_from_db()
    monday = datetime(2026, 12, 14, 13, 0, tzinfo=NBO)
    assert (t.first_response_warn_at, t.first_response_due) == (monday, monday + timedelta(hours=2))
    assert t.next_sla_check_at <= monday
    mail.outbox.clear()
    moment = T0 + timedelta(hours=1)
    while moment < monday:  # every half hour until the new warning is due: nothing
        sweep(moment, django_capture_on_commit_callbacks)
        moment += timedelta(minutes=30)
    assert not [m for m in mail.outbox if "At risk" in m.subject]
    for at in (monday, monday + timedelta(minutes=30)):
        sweep(at, django_capture_on_commit_callbacks)
    warned = {m.to[0]: m for m in mail.outbox if "At risk: first response" in m.subject}
    assert set(warned) == {sam.email, lena.email}
    assert "Due: 2026-12-14 15:00 (UTC+03:00)" in warned[sam.email].body
    rows = SLACrossing.objects.filter(ticket=t, clock="first_response", kind="at_risk").order_by("at")
    assert [(r.priority, r.deadline) for r in rows] == [
        ("P2", T0 + timedelta(hours=1)), ("P4", monday + timedelta(hours=2))
    ]  # fmt: skip
    assert OutboxMessage.objects.filter(key__contains=":first_response:at_risk:").count() == 4  # two a warning


def test_a_priority_change_that_keeps_a_deadline_does_not_warn_again(
    acme_contract, alice, sam, lena, django_capture_on_commit_callbacks
):
    """A change back to the priority it warned under (P2 -> P4 -> P2 within the hour) gives the clock
    the deadline that was warned of: no second warning."""
    from tickets.services import ticket_change_priority

    t = file(acme_contract, alice, "P2")
    sweep(T0 + timedelta(minutes=45), django_capture_on_commit_callbacks)
    for minutes, priority in ((46, "P4"), (47, "P2")):
        with time_machine.travel(T0 + timedelta(minutes=minutes), tick=False):
            ticket_change_priority(ticket=t, actor=lena, priority=priority, reason="Reconsidered.")
    mail.outbox.clear()
    sweep(T0 + timedelta(minutes=48), django_capture_on_commit_callbacks)
    assert not [m for m in mail.outbox if "At risk" in m.subject]
    assert SLACrossing.objects.filter(ticket=t, kind="at_risk").count() == 1


def test_a_warning_and_a_breach_sent_to_the_queue_do_not_name_a_departed_assignee(
    acme_contract, alice, sam, lena, django_capture_on_commit_callbacks
):
    """Kim had the P1 and has left (deactivated): its warning and its breach go to the queue (Sam) and
    the lead, and say nobody has it, not "Assignee: Kim Gone" (the agents would think Kim is on it)."""
    kim = StaffFactory(email="kim@vendor.example", name="Kim Gone", staff_role="support_agent")
    t = file(acme_contract, alice, "P1")
    t.assignee = kim
    t.save(update_fields=["assignee"])
    kim.is_active = False
    kim.save(update_fields=["is_active"])
    mail.outbox.clear()
    sweep(T0 + timedelta(minutes=12), django_capture_on_commit_callbacks)
    sweep(T0 + timedelta(minutes=16), django_capture_on_commit_callbacks)
    assert kim.email not in {m.to[0] for m in mail.outbox}
    queue = "support-queue@vendor.example"  # the breach's queue is its address, the warning's the agents
    staff = [m for m in mail.outbox if "At risk" in m.subject or "SLA BREACH" in m.subject]
    kinds = sorted((m.to[0], "At risk" if "At risk" in m.subject else "breach") for m in staff)
    assert kinds == [(lena.email, "At risk"), (lena.email, "breach"), (sam.email, "At risk"), (queue, "breach")]
    for m in staff:
        html = m.alternatives[0][0]
        assert "Kim Gone" not in m.body and "Kim Gone" not in html, m.body
        assert "Assignee: nobody (the queue)" in m.body and "Assignee: nobody (the queue)." in html, m.body
