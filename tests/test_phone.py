"""Support by phone (issue 19, "Phone"): every ticket's channel, staff logging a call (an outbound
call that answers the customer is the first response at the call's time, through the one derivation
of deadlines), and staff filing a ticket for a caller, whose clock starts when the customer reached
us. Time frozen on Friday 11 December 2026 in Nairobi (Kaluari: P1 24x7, P3 business hours)."""

from __future__ import annotations

import email
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.messages import SUCCESS
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from portal.core.delivery import outbox_send_due
from portal.models import AuditEntry, OutboxMessage
from tickets import mail_thread
from tickets.channels import ticket_call_log
from tickets.models import SLACrossing, Ticket, TicketCall, TicketEvent
from tickets.services import ticket_open
from tickets.sweeps import check_sla_deadlines

from .factories import ContractFactory, UserFactory

pytestmark = pytest.mark.django_db

NBO = ZoneInfo("Africa/Nairobi")


def at(hour, minute=0, day=11):
    return datetime(2026, 12, day, hour, minute, tzinfo=NBO)


def wall(moment: datetime) -> str:
    """A moment as the staff forms take it: wall time in the contract's zone (datetime-local)."""
    return moment.astimezone(NBO).strftime("%Y-%m-%dT%H:%M")


def moment(audited: str) -> datetime:
    return datetime.fromisoformat(audited)


def change_url(ticket):
    return reverse("admin:tickets_ticket_change", args=[ticket.pk])


def call_url(ticket):
    return reverse("admin:tickets_ticket_call", args=[ticket.pk])


FILE_URL = reverse("admin:tickets_ticket_file")


def messages_of(response):
    return [(m.level, m.message) for m in response.context["messages"]]


@pytest.fixture
def staff_client(client, sam):
    with time_machine.travel(at(8), tick=False):
        client.force_login(sam)
    return client


@pytest.fixture
def p1(acme_contract, alice):
    """Filed at 16:00: its first response is due at 16:15 (24x7)."""
    with time_machine.travel(at(16), tick=False):
        return ticket_open(
            user=alice, contract=acme_contract, service=acme_contract.services.get(), priority="P1",
            subject="Backups fail", description="Nothing backs up since last night.",
        )  # fmt: skip


def log_call(client, ticket, now, **fields):
    data = {"direction": "outbound", "contact_name": "", "duration": "7", "notes": "", **fields}
    with time_machine.travel(now, tick=False):
        return client.post(call_url(ticket), data)


# --- The channel -------------------------------------------------------------------------------
def test_the_portal_and_the_api_record_their_channel(client, acme_contract, alice):
    with time_machine.travel(at(16), tick=False):
        client.force_login(alice)
        client.post(
            reverse("ticket-new"),
            {"contract": acme_contract.pk, "service": acme_contract.services.get().pk, "priority": "P3",
             "subject": "From the form", "description": "Typed in the portal."},
        )  # fmt: skip
        api = APIClient()
        api.force_authenticate(alice)
        answer = api.post(
            "/api/v1/tickets/",
            {"contract": acme_contract.pk, "service": acme_contract.services.get().pk, "priority": "P3",
             "subject": "From a script", "description": "Sent by our monitoring."},
            format="json",
        )  # fmt: skip
    assert answer.status_code == 201 and answer.json()["channel"] == "api"
    assert dict(Ticket.objects.values_list("subject", "channel")) == {"From the form": "portal", "From a script": "api"}


def test_the_queue_filters_by_channel_and_refuses_a_value_it_does_not_know(staff_client, acme_contract, alice, p1):
    phone = ticket_open(
        user=alice, contract=acme_contract, service=acme_contract.services.get(), priority="P3",
        subject="Called in", description="By phone.", channel=Ticket.Channel.PHONE,
    )  # fmt: skip
    queue = reverse("admin:tickets_ticket_changelist")
    with time_machine.travel(at(16, 5), tick=False):
        shown = {
            value: [t.pk for t in staff_client.get(queue, {"channel": value}).context["cl"].result_list]
            for value in ("phone", "portal", "email")
        }
        page = staff_client.get(queue)
        hostile = [staff_client.get(queue, {"channel": v}) for v in ("x", "' OR 1=1 --", "\x00", "phone" * 500)]
    assert shown == {"phone": [phone.pk], "portal": [p1.pk], "email": []}
    assert "File a ticket for a caller" in page.content.decode()
    assert [r.status_code for r in hostile] == [400] * 4  # refused with a message, never a 500
    assert "“x” is no channel this list can be filtered by." in hostile[0].content.decode()


# --- Logging a call ------------------------------------------------------------------------------
def test_an_outbound_call_that_answers_is_the_first_response_at_its_start(staff_client, p1, alice, sam):
    client = Client()
    assert p1.first_response_due == at(16, 15) and p1.at_risk_at == at(16, 11) + timedelta(seconds=15)
    # Sam called Alice at 16:10 and types the call in at 16:40, after the 16:15 deadline.
    response = log_call(
        staff_client, p1, at(16, 40), contact=alice.pk, started_at=wall(at(16, 10)), answered="on",
        notes="Restarted the backup agent together; jobs run again.",
    )  # fmt: skip
    assert response.status_code == 302 and response["Location"] == change_url(p1) + "#conversation"
    p1.refresh_from_db()
    assert p1.first_response_at == at(16, 10)  # not 16:40, when it was typed
    assert p1.status == Ticket.Status.OPEN
    # The clocks derived again: the first-response clock stopped, at risk now follows the resolution target.
    assert p1.first_response_due == at(16, 15)
    assert p1.at_risk_at == at(16, 45) and p1.next_deadline == at(17)
    entry = AuditEntry.objects.get(action="ticket.first_response_by_call")
    assert entry.actor == sam
    assert entry.before["first_response_at"] is None and moment(entry.before["at_risk_at"]) == at(16, 11) + timedelta(
        seconds=15
    )
    assert moment(entry.after["first_response_at"]) == at(16, 10) and entry.after["breach_recorded_stands"] is False

    # The breach sweep, the customer's page and the API agree: answered at 16:10, nothing breached.
    assert check_sla_deadlines(now=at(16, 41)) == 0
    assert not SLACrossing.objects.filter(ticket=p1).exists()
    with time_machine.travel(at(16, 41), tick=False):
        client.force_login(alice)
        page = client.get(reverse("ticket-detail", args=[p1.pk])).content.decode()
        api = APIClient()
        api.force_authenticate(alice)
        data = api.get(f"/api/v1/tickets/{p1.pk}/").json()
    assert "Answered at 2026-12-11 16:10" in page
    assert "Sam Support called Alice Achieng" in page and "Restarted the backup agent together" in page
    assert "This call was our first response." in page
    assert (data["first_response_at"], data["breached"], data["sla_state"]) == (
        "2026-12-11T13:10:00Z",
        False,
        "on_track",
    )


def test_a_breach_recorded_before_the_call_was_logged_stands(staff_client, p1, alice):
    assert check_sla_deadlines(now=at(16, 20)) == 1  # the 16:15 first-response breach, recorded and emailed
    response = log_call(
        staff_client, p1, at(16, 30), contact_name="Alice, +254 700 000 001", started_at=wall(at(16, 10)),
        answered="on",
    )  # fmt: skip
    assert response.status_code == 302
    p1.refresh_from_db()
    assert p1.first_response_at == at(16, 10)
    assert p1.breached  # the record stands, as every recorded crossing does (docs/decisions.md)
    assert SLACrossing.objects.filter(ticket=p1, clock="first_response", kind="breach", at=at(16, 15)).exists()
    assert AuditEntry.objects.get(action="ticket.first_response_by_call").after["breach_recorded_stands"] is True
    with time_machine.travel(at(16, 31), tick=False):
        messages = messages_of(staff_client.get(change_url(p1)))
    assert any("breach already recorded stands" in text for level, text in messages if level == SUCCESS)


def test_an_earlier_reply_stays_the_first_response(staff_client, p1, sam):
    from tickets.services import ticket_reply

    with time_machine.travel(at(16, 5), tick=False):
        ticket_reply(ticket=p1, author=sam, body="Looking.")
    log_call(staff_client, p1, at(16, 30), contact_name="Alice", started_at=wall(at(16, 20)), answered="on")
    p1.refresh_from_db()
    assert p1.first_response_at == at(16, 5)
    assert TicketCall.objects.filter(ticket=p1, answered=True).exists()
    assert not AuditEntry.objects.filter(action="ticket.first_response_by_call").exists()


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({"started_at": wall(at(16, 31)), "answered": "on"}, "started_at", "The call cannot start in the future."),
        ({"started_at": wall(at(15, 59)), "answered": "on"}, "started_at", "before the ticket was filed"),
        ({"started_at": "2026-13-45T99:00"}, "started_at", "Enter a valid date/time."),
        ({"started_at": "0001-01-01T00:00"}, "started_at", "years 2000 to 2099"),
        ({"started_at": wall(at(16, 10)), "direction": "inbound", "answered": "on"}, "answered", "Only a call we made"),
        ({"started_at": wall(at(16, 10)), "answered": "on", "internal": "on"}, "internal", "untick internal"),
        ({"started_at": wall(at(16, 10)), "contact_name": ""}, "contact_name", "Say with whom"),
        ({"started_at": wall(at(16, 10)), "contact_name": "A\r\nBcc: x"}, "contact_name", "single line"),
        ({"started_at": wall(at(16, 10)), "duration": "-5"}, "duration", "greater than or equal to 0"),
        ({"started_at": wall(at(16, 10)), "direction": "sideways"}, "direction", "Select a valid choice"),
    ],
)
def test_a_call_the_rules_refuse_is_a_form_error_and_changes_nothing(staff_client, p1, fields, field, message):
    data = {"contact_name": "Alice", **fields}
    response = log_call(staff_client, p1, at(16, 30), **data)
    assert response.status_code == 400
    errors = response.context["op_forms"]["call"].errors
    assert any(message in e for e in errors[field]), errors
    assert 'id="call-details" open>' in response.content.decode()  # unfolded: its errors in view
    p1.refresh_from_db()
    assert p1.first_response_at is None and not TicketCall.objects.exists()


def test_a_person_of_another_organisation_is_not_offered(staff_client, p1, charlie):
    response = log_call(staff_client, p1, at(16, 30), contact=charlie.pk, started_at=wall(at(16, 10)))
    assert response.status_code == 400 and "contact" in response.context["op_forms"]["call"].errors
    assert not TicketCall.objects.exists()


def test_an_internal_call_is_staff_only(staff_client, p1, alice):
    client = Client()
    log_call(staff_client, p1, at(16, 30), contact=alice.pk, started_at=wall(at(16, 20)), internal="on",
             notes="Left a voicemail, will try again.")  # fmt: skip
    call = TicketCall.objects.get()
    assert call.internal and not call.answered
    with time_machine.travel(at(16, 31), tick=False):
        staff_page = staff_client.get(change_url(p1)).content.decode()
        client.force_login(alice)
        page = client.get(reverse("ticket-detail", args=[p1.pk])).content.decode()
    assert "Left a voicemail" in staff_page
    assert "Left a voicemail" not in page and "Phone call" not in page
    assert TicketEvent.objects.filter(ticket=p1, kind=TicketEvent.Kind.CALL).count() == 1


def test_the_ticket_page_asks_as_many_queries_with_five_calls_as_with_one(staff_client, p1, alice, sam):
    client = Client()

    def count():
        with time_machine.travel(at(16, 50), tick=False), CaptureQueriesContext(connection) as staff:
            assert staff_client.get(change_url(p1)).status_code == 200
        with time_machine.travel(at(16, 50), tick=False):
            client.force_login(alice)
        with time_machine.travel(at(16, 50), tick=False), CaptureQueriesContext(connection) as customer:
            assert client.get(reverse("ticket-detail", args=[p1.pk])).status_code == 200
        return len(staff.captured_queries), len(customer.captured_queries)

    def add_call(minute):
        ticket_call_log(
            ticket=p1, actor=sam, direction="outbound", contact=alice, started_at=at(16, minute),
            duration=timedelta(minutes=3), notes=f"Call at {minute}.", now=at(16, 45),
        )  # fmt: skip

    add_call(1)
    one = count()
    for minute in (5, 10, 15, 20):
        add_call(minute)
    assert count() == one


# --- Filing for a caller --------------------------------------------------------------------------
def file_form(contract, customer, reached_at, /, **overrides):
    return {
        "channel": "phone", "customer": customer.pk, "contract": contract.pk,
        "service": contract.services.get().pk, "priority": "P3", "subject": "Restore is slow",
        "description": "Alice called: a 2 GB restore takes hours.", "reached_at": wall(reached_at), **overrides,
    }  # fmt: skip


def test_a_ticket_filed_for_a_caller_two_hours_ago_has_its_deadlines_from_then(
    staff_client, acme_contract, alice, sam, mailoutbox, django_capture_on_commit_callbacks
):
    client = Client()
    now = at(14)
    with time_machine.travel(now, tick=False):  # the moment is typed in the contract's zone, named with it
        page = staff_client.get(FILE_URL).content.decode()
    assert f"{acme_contract.reference} {acme_contract.name} (Africa/Nairobi)</option>" in page
    with time_machine.travel(now, tick=False), django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(FILE_URL, file_form(acme_contract, alice, now - timedelta(hours=2)))
    ticket = Ticket.objects.get()
    assert response.status_code == 302 and response["Location"] == change_url(ticket)
    assert (ticket.channel, ticket.created_by, ticket.filed_at) == ("phone", alice, at(12))
    # P3, business hours 08:00-17:00: 4 working hours from 12:00 is 16:00 (from 14:00 it would be Monday).
    assert ticket.first_response_due == at(16)
    assert ticket.resolution_target_at == at(15, day=14)  # 5 h on Friday, 7 h on Monday
    event = TicketEvent.objects.get(ticket=ticket, kind=TicketEvent.Kind.FILED)
    assert (event.actor, event.at, event.data["channel"]) == (sam, now, "phone")
    entry = AuditEntry.objects.get(action="ticket.filed_for_customer")
    assert entry.actor == sam and moment(entry.after["reached_at"]) == at(12)
    assert entry.after["support_contact_override"] is False

    # The usual receipt, through the outbox.
    row = OutboxMessage.objects.get(key=f"ticket:{ticket.pk}:filed:user:{alice.pk}")
    assert row.message_id == mail_thread.root_id(ticket)  # what every later email of the ticket answers
    assert (row.template, row.to) == ("ticket_filed", alice.email)
    with time_machine.travel(now, tick=False):
        outbox_send_due()
    receipt = next(m for m in mailoutbox if m.to == [alice.email])
    parsed = email.message_from_bytes(receipt.message().as_bytes())
    assert parsed["Subject"] == f"[#{ticket.pk}] Received: Restore is slow"
    assert parsed["To"] == alice.email and parsed["Message-ID"] == row.message_id
    assert parsed["Auto-Submitted"] == "auto-generated"  # RFC 3834: no out-of-office answers it
    assert "First response due: 2026-12-11 16:00" in receipt.body

    # Alice sees it in the portal, with its channel.
    with time_machine.travel(now, tick=False):
        client.force_login(alice)
        listed = client.get(reverse("ticket-list")).content.decode()
        page = client.get(reverse("ticket-detail", args=[ticket.pk])).content.decode()
    assert "Restore is slow" in listed
    assert "Alice Achieng</strong> called us" in page and "filed by our support team from your call" in page


@pytest.mark.parametrize(
    "overrides, field, message",
    [
        ({"reached_at": wall(at(14, 1))}, "reached_at", "in the future"),
        ({"reached_at": wall(at(13, day=4))}, "reached_at", "At most 7 days ago"),
        ({"reached_at": "yesterday"}, "reached_at", "Enter a valid date/time."),
        ({"channel": "fax"}, "channel", "Select a valid choice"),
        ({"priority": "STD"}, "priority", "Choose one of: P1, P2, P3, P4."),
        ({"subject": "Slow\x85restore"}, "subject", "single line"),
    ],
)
def test_filing_the_rules_refuse_is_a_form_error(staff_client, acme_contract, alice, overrides, field, message):
    with time_machine.travel(at(14), tick=False):
        response = staff_client.post(FILE_URL, file_form(acme_contract, alice, at(12), **overrides))
    assert response.status_code == 400
    assert any(message in e for e in response.context["form"].errors[field]), response.context["form"].errors
    assert not Ticket.objects.exists() and not OutboxMessage.objects.exists()


def test_the_customer_must_be_an_active_person_of_the_contracts_organisation(
    staff_client, acme_contract, alice, bob, charlie
):
    bob.is_active = False
    bob.save()
    with time_machine.travel(at(14), tick=False):
        foreign = staff_client.post(FILE_URL, file_form(acme_contract, charlie, at(12)))
        gone = staff_client.post(FILE_URL, file_form(acme_contract, bob, at(12)))
    assert foreign.status_code == 400 and "organisation" in str(foreign.context["form"].errors["contract"])
    assert gone.status_code == 400 and "customer" in gone.context["form"].errors  # not offered
    assert not Ticket.objects.exists()


def test_someone_who_may_not_open_tickets_needs_the_audited_override(staff_client, acme, acme_contract, alice):
    erin = UserFactory(email="erin@acme.example", name="Erin Echo", organisation=acme)
    acme_contract.support_contacts.remove(erin)
    with time_machine.travel(at(14), tick=False):
        refused = staff_client.post(FILE_URL, file_form(acme_contract, erin, at(13)))
        filed = staff_client.post(FILE_URL, file_form(acme_contract, erin, at(13), override="on"))
    assert refused.status_code == 400 and "not a designated support contact" in str(refused.context["form"].errors)
    assert filed.status_code == 302 and Ticket.objects.get().created_by == erin
    assert AuditEntry.objects.get(action="ticket.filed_for_customer").after["support_contact_override"] is True


def test_the_form_and_a_klart_ticket_filed_from_an_email(staff_client, globex, charlie):
    from contracts.models import SLA

    klart = ContractFactory(organisation=globex, sla=SLA.objects.get(template_key="klart-ai"), contacts=[charlie])
    with time_machine.travel(at(14), tick=False):
        form = staff_client.get(FILE_URL)
        response = staff_client.post(
            FILE_URL,
            file_form(klart, charlie, at(13), channel="email", priority="", subject="Wrong answers",
                      reached_at="2026-12-11T11:00"),  # wall time in the contract's zone
        )  # fmt: skip
    assert form.status_code == 200 and "The customer reached us at" in form.content.decode()
    assert response.status_code == 302
    ticket = Ticket.objects.get()
    assert (ticket.channel, ticket.priority) == ("email", "STD")
    assert ticket.filed_at == datetime(2026, 12, 11, 11, 0, tzinfo=ZoneInfo("Europe/Stockholm")) == at(13)
    with time_machine.travel(at(14), tick=False):
        staff_page = staff_client.get(change_url(ticket)).content.decode()
    assert f"{charlie.get_full_name()} emailed a person (staff filed the ticket)," in staff_page


def test_the_moment_is_read_in_the_contracts_zone_never_in_the_staff_members(staff_client, acme_contract, globex,
                                                                              charlie, alice, sam):  # fmt: skip
    """28 March 2027, 02:30 does not exist in Stockholm (the clocks go forward at 02:00) but does in
    Nairobi: Sam, working in Stockholm time, files a Kaluari call at it. On a Klart contract the
    same wall time, and 02:30 on 31 October 2027 (passed twice there), are refused, not moved an hour."""
    from contracts.models import SLA

    sam.timezone = "Europe/Stockholm"
    sam.save(update_fields=["timezone"])
    now = datetime(2027, 3, 28, 10, 0, tzinfo=NBO)
    with time_machine.travel(now, tick=False):
        staff_client.force_login(sam)
        filed = staff_client.post(FILE_URL, {**file_form(acme_contract, alice, now), "reached_at": "2027-03-28T02:30"})
    assert filed.status_code == 302, filed.context["form"].errors
    assert Ticket.objects.get().filed_at == datetime(2027, 3, 28, 2, 30, tzinfo=NBO)

    klart = ContractFactory(organisation=globex, sla=SLA.objects.get(template_key="klart-ai"), contacts=[charlie])
    for typed, now, words in [
        ("2027-03-28T02:30", datetime(2027, 3, 28, 10, 0, tzinfo=NBO), "does not exist in Europe/Stockholm"),
        ("2027-10-31T02:30", datetime(2027, 10, 31, 10, 0, tzinfo=NBO), "happens twice in Europe/Stockholm"),
    ]:
        with time_machine.travel(now, tick=False):
            staff_client.force_login(sam)
            refused = staff_client.post(FILE_URL, {**file_form(klart, charlie, now), "reached_at": typed})
        assert refused.status_code == 400, typed
        assert words in str(refused.context["form"].errors["reached_at"])
    assert Ticket.objects.count() == 1


def test_a_call_that_answers_the_customer_acknowledges_the_escalation_requests_made_before_it_ended(
    acme_contract, alice, sam
):
    """A public reply acknowledges a pending escalation request; an outbound call that answered the
    customer does the same, as of the call (an agent may not acknowledge one by hand: that is the
    leads'). A request made after the call stays pending."""
    from tickets.services import ticket_request_escalation

    with time_machine.travel(at(16), tick=False):
        t = ticket_open(user=alice, contract=acme_contract, service=acme_contract.services.get(), priority="P1",
                        subject="Backups fail", description="Nothing backs up.")  # fmt: skip
    with time_machine.travel(at(16, 2), tick=False):
        request = ticket_request_escalation(ticket=t, user=alice, reason="Production is down, call me.")
    assert request.ack_due == at(16, 17)  # P1: the first-response time, 15 minutes
    ticket_call_log(
        ticket=t, actor=sam, direction="outbound", contact=alice, started_at=at(16, 5),
        duration=timedelta(minutes=10), notes="Talked it through.", answered=True, now=at(16, 10),
    )  # fmt: skip
    request.refresh_from_db()
    assert (request.acknowledged_at, request.acknowledged_by) == (at(16, 5), sam)
    ack = OutboxMessage.objects.get(key=f"ticket:{t.pk}:esc-ack:{request.pk}:user:{alice.pk}")
    assert ack.to == alice.email

    with time_machine.travel(at(16, 20), tick=False):
        later = ticket_request_escalation(ticket=t, user=alice, reason="Still down.")
    ticket_call_log(
        ticket=t, actor=sam, direction="outbound", contact=alice, started_at=at(16, 12),
        duration=timedelta(minutes=3), notes="", answered=True, now=at(16, 25),
    )  # fmt: skip
    later.refresh_from_db()
    assert later.acknowledged_at is None  # the call ended at 16:15, before she asked again

    check_sla_deadlines(now=at(16, 30))
    assert not SLACrossing.objects.filter(ticket=t, clock=f"ack:{request.pk}", kind="breach").exists()
    assert not OutboxMessage.objects.filter(key__startswith=f"ticket:{t.pk}:crossing:ack:{request.pk}").exists()
