"""The staff side of tickets in the admin: the queue (sorted by the nearest deadline, SLA badges
from one batch, a fixed number of queries), the ticket page and its operations (each a POST form
calling a service), the changelist actions, and who sees vulnerability reports."""

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.contrib.messages import ERROR, SUCCESS
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from contracts.models import SLA
from portal.models import OutboxMessage
from tickets.models import Attachment, EscalationRequest, SLACrossing, Ticket, TicketEvent, TicketMessage
from tickets.services import (
    TicketError,
    ticket_assign,
    ticket_exclude,
    ticket_open,
    ticket_request_escalation,
    ticket_set_status,
)
from tickets.sweeps import check_sla_deadlines, escalate_due_tickets

from .factories import ContractFactory, StaffFactory

pytestmark = pytest.mark.django_db

NBO = ZoneInfo("Africa/Nairobi")
FRI_1600 = datetime(2026, 12, 11, 16, 0, tzinfo=NBO)
QUEUE = reverse("admin:tickets_ticket_changelist")


def at(hour, minute, second=0):
    return datetime(2026, 12, 11, hour, minute, second, tzinfo=NBO)


def file(contract, user, priority, when=FRI_1600, subject="Backups fail", **kwargs):
    with time_machine.travel(when, tick=False):
        return ticket_open(
            user=user, contract=contract, service=contract.services.get(), priority=priority,
            subject=subject, description="Nothing backs up since last night.", **kwargs,
        )  # fmt: skip


def change_url(ticket):
    return reverse("admin:tickets_ticket_change", args=[ticket.pk])


def op_url(name, ticket, *args):
    return reverse(f"admin:tickets_ticket_{name}", args=[ticket.pk, *args])


def messages_of(response):
    return [(m.level, m.message) for m in response.context["messages"]]


def queue_rows(html):
    """(number, badge text) of each row of the queue, in order."""
    rows = re.findall(r'<tr>\s*<td class="action-checkbox">.*?</tr>', html, re.S)
    out = []
    for row in rows:
        number = re.search(r">#(\d+)</a>", row).group(1)
        badge = re.search(r'<span class="sla-badge sla-\w+">([^<]+)</span>', row).group(1)
        out.append((int(number), badge))
    return out


@pytest.fixture
def staff_client(client, sam):
    """Sam, a support agent: works tickets."""
    with time_machine.travel(at(14, 0), tick=False):  # the session lasts 12 hours from then
        client.force_login(sam)
    return client


@pytest.fixture
def lead_client(client, lena):
    """Lena, a support lead: also priorities, exclusions and escalations (tests/test_roles.py)."""
    with time_machine.travel(at(14, 0), tick=False):
        client.force_login(lena)
    return client


@pytest.fixture
def p1(acme_contract, alice):
    return file(acme_contract, alice, "P1")


# --- The queue -----------------------------------------------------------------------------------
def test_queue_is_sorted_by_next_deadline_with_the_sla_badge(staff_client, acme_contract, alice, bob, sam):
    p3 = file(acme_contract, alice, "P3", subject="Restore is slow")  # first response Monday 11:00
    p1 = file(acme_contract, alice, "P1", subject="Nothing backs up")  # first response 16:15
    p2 = file(acme_contract, bob, "P2", subject="Agent fails a job")  # first response 17:00
    done = file(acme_contract, bob, "P4", FRI_1600 - timedelta(hours=2), subject="Old question")
    with time_machine.travel(at(15, 0), tick=False):
        ticket_set_status(ticket=done, actor=sam, status=Ticket.Status.RESOLVED)  # no deadline: last

    with time_machine.travel(at(16, 1), tick=False):
        response = staff_client.get(QUEUE)
    html = response.content.decode()
    # Named as agents call it, not "Select ticket to change".
    assert "<h1>Ticket queue</h1>" in html and "<title>Ticket queue |" in html
    assert re.search(r'<div class="breadcrumbs">.*&rsaquo; Ticket queue</div>', html)  # not "Tickets › Tickets"
    # The queue opens on the work still to do; "All" adds the resolved ticket, last (no deadline).
    assert queue_rows(html) == [(p1.pk, "On track"), (p2.pk, "On track"), (p3.pk, "On track")]
    with time_machine.travel(at(16, 1), tick=False):
        everything = staff_client.get(QUEUE + "?status=all").content.decode()
    assert queue_rows(everything) == [
        (p1.pk, "On track"), (p2.pk, "On track"), (p3.pk, "On track"), (done.pk, "Met"),
    ]  # fmt: skip
    # The next deadline, with a live countdown in the browser and the contract's time beside it.
    assert f'<time datetime="{p1.first_response_due.isoformat()}" data-countdown' in html
    assert ">in 14 min</time>" in html and "2026-12-11 16:15 (UTC+03:00)" in html
    assert "js/admin-countdown.js" in html and "admin-extra/tickets.css" in html

    with time_machine.travel(at(16, 13), tick=False):
        rows = queue_rows(staff_client.get(QUEUE).content.decode())
    assert rows[0] == (p1.pk, "At risk")  # 2 of its 15 minutes left: under a quarter

    with time_machine.travel(at(16, 16), tick=False):
        check_sla_deadlines()
        response = staff_client.get(QUEUE)
    assert SLACrossing.objects.filter(ticket=p1, clock="first_response", kind="breach").exists()
    assert queue_rows(response.content.decode())[0] == (p1.pk, "Breached")
    assert f'<time datetime="{p1.resolution_due.isoformat()}" data-countdown' in response.content.decode()

    with time_machine.travel(at(16, 16), tick=False):  # the deadline column sorts both ways
        column = response.context["cl"].list_display.index("deadline")
        down = staff_client.get(QUEUE, {"o": f"-{column}", "status": "all"}).context["cl"].result_list
    assert [t.pk for t in down] == [done.pk, p3.pk, p2.pk, p1.pk]

    with time_machine.travel(at(16, 16), tick=False):
        breached = staff_client.get(QUEUE, {"sla": "breached"})
    assert [t.pk for t in breached.context["cl"].result_list] == [p1.pk]


def test_queue_search_by_number_subject_and_organisation(staff_client, acme_contract, globex, charlie, alice):
    p1 = file(acme_contract, alice, "P1", subject="Nothing backs up")
    klart = ContractFactory(organisation=globex, sla=SLA.objects.get(template_key="klart-ai"), contacts=[charlie])
    other = file(klart, charlie, None, subject="Assistant is down")
    with time_machine.travel(at(16, 5), tick=False):

        def found(q):
            return {t.pk for t in staff_client.get(QUEUE, {"q": q}).context["cl"].result_list}

        assert found(f"#{p1.pk}") == {p1.pk}
        assert found(str(other.pk)) == {other.pk}
        assert found("backs up") == {p1.pk, other.pk}  # p1's subject, both descriptions (tests/test_search.py)
        assert found("globex") == {other.pk}


def make_tickets(n, contracts, staff):
    """n tickets of every kind the queue shows: Kaluari P1 at level 4 (its contact falls back to a
    staff member with the role: there is none), Kaluari P3 waiting on the customer and assigned, Klart assigned to another."""
    (kaluari, alice), (klart, charlie) = contracts
    made = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            made.append(file(kaluari, alice, "P1", FRI_1600 - timedelta(hours=2), subject=f"P1 {i}"))
        elif kind == 1:
            t = file(kaluari, alice, "P3", subject=f"P3 {i}")
            with time_machine.travel(FRI_1600 + timedelta(minutes=1), tick=False):
                ticket_assign(ticket=t, actor=staff[0], assignee=staff[0])
                ticket_set_status(ticket=t, actor=staff[0], status=Ticket.Status.WAITING)
            made.append(t)
        else:
            t = file(klart, charlie, None, subject=f"Klart {i}")
            with time_machine.travel(FRI_1600 + timedelta(minutes=1), tick=False):
                ticket_assign(ticket=t, actor=staff[0], assignee=staff[1])
            made.append(t)
    return made


def test_queue_queries_do_not_grow_with_the_tickets(staff_client, acme_contract, alice, globex, charlie, sam):
    klart = ContractFactory(organisation=globex, sla=SLA.objects.get(template_key="klart-ai"), contacts=[charlie])
    staff = [sam, StaffFactory(email="lena@vendor.example", name="Lena Lead", staff_role="support_lead")]
    StaffFactory(email="ayo@vendor.example", name="Ayo AM", staff_role="account_manager")
    contracts = [(acme_contract, alice), (klart, charlie)]
    now = FRI_1600 + timedelta(minutes=30)

    def count():
        with time_machine.travel(now, tick=False):
            escalate_due_tickets()
            check_sla_deadlines()
            with CaptureQueriesContext(connection) as queries:
                response = staff_client.get(QUEUE)
        assert response.status_code == 200
        return len(response.context["cl"].result_list), [q["sql"] for q in queries.captured_queries]

    make_tickets(3, contracts, staff)
    count()  # the process's first page reads the terms the pages after it keep (tickets.terms_cache)
    shown_3, queries_3 = count()
    make_tickets(27, contracts, staff)
    shown_30, queries_30 = count()
    assert (shown_3, shown_30) == (3, 25)  # a page holds 25
    assert Ticket.objects.filter(escalation_level=4).count() == 10
    assert len(queries_30) == len(queries_3)
    # The signed-in user, their second factor and permissions (their own and their role's: one query),
    # the terms revision (read once, for the level filter's choices, kept with the terms, and the
    # rows' clocks), the assignee filter's choices, the capped count, the page: nobody is looked up
    # for a level's contact (the queue shows the level only), no incident (the link action asks for
    # one on its own page). The session is read from the database only where no cache holds it
    # (SESSION_ENGINE).
    page = [q for q in queries_30 if "django_session" not in q]
    assert len(page) == 7, "\n".join(q[:120] for q in page)
    assert sum("contracts_termsrevision" in q for q in page) == 1


def test_the_queue_counts_only_up_to_its_cap(staff_client, acme_contract, alice, globex, charlie, sam, monkeypatch):
    from portal.core.paging import CappedPaginator

    monkeypatch.setattr(CappedPaginator, "CAP", 5)
    klart = ContractFactory(organisation=globex, sla=SLA.objects.get(template_key="klart-ai"), contacts=[charlie])
    contracts, staff = [(acme_contract, alice), (klart, charlie)], [sam, StaffFactory(staff_role="support_lead")]
    make_tickets(5, contracts, staff)
    page = staff_client.get(QUEUE).content.decode()
    assert "5 tickets" in page and "More than" not in page
    make_tickets(3, contracts, staff)
    with CaptureQueriesContext(connection) as queries:
        page = staff_client.get(QUEUE).content.decode()
    assert "More than 5 tickets: filter or search to narrow them." in page
    assert "Select all matching tickets (more than 5)" in page
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"]]
    assert len(counts) == 1 and "LIMIT 6" in counts[0]  # the count stops at the cap
    # ... reading the active tickets in the order of their partial index (ticket_queue_active),
    # not in a sequential scan that first reads every closed ticket (230 ms at a million tickets)
    assert re.search(r'ORDER BY "tickets_ticket"."next_deadline" ASC NULLS LAST, "tickets_ticket"."id" DESC', counts[0])
    for status, ordered in (("open", True), ("all", False), ("closed", False)):
        with CaptureQueriesContext(connection) as queries:
            assert staff_client.get(QUEUE, {"status": status}).status_code == 200
        (count,) = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"]]
        assert ("ORDER BY" in count) == ordered, status  # no index has every ticket in that order


# --- Who sees the queue --------------------------------------------------------------------------
def test_a_customer_is_sent_to_the_admin_login(client, alice):
    client.force_login(alice)
    response = client.get(QUEUE)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_vulnerability_reports_are_for_security_staff_only(client, staff_client, acme_contract, alice, p1):
    report = file(acme_contract, alice, "P2", subject="XSS in the portal", kind=Ticket.Kind.SECURITY)
    with time_machine.travel(at(16, 5), tick=False):
        listed = {t.pk for t in staff_client.get(QUEUE).context["cl"].result_list}
        assert listed == {p1.pk}  # sam is a superuser, but a support agent
        assert staff_client.get(change_url(report)).status_code == 302  # "doesn't exist": back to the index
        assert staff_client.post(op_url("status", report), {"status": "open"}).status_code == 404
        assert Ticket.objects.get(pk=report.pk).status == Ticket.Status.NEW

        security = StaffFactory(
            email="sec@vendor.example", name="Sid Security", staff_role="security", is_superuser=False
        )
        security.user_permissions.set(Permission.objects.filter(codename__in=["view_ticket", "change_ticket"]))
        client.force_login(security)
        listed = {t.pk for t in client.get(QUEUE).context["cl"].result_list}
        assert listed == {p1.pk, report.pk}
        assert client.get(change_url(report)).status_code == 200


def test_vulnerability_reports_stay_out_of_the_request_list(staff_client, acme_contract, alice):
    report = file(acme_contract, alice, "P2", subject="XSS in the portal", kind=Ticket.Kind.SECURITY)
    with time_machine.travel(at(16, 5), tick=False):
        ticket_request_escalation(ticket=report, user=alice, reason="Please look.")
        response = staff_client.get(reverse("admin:tickets_escalationrequest_changelist"))
    assert list(response.context["cl"].result_list) == []
    assert EscalationRequest.objects.filter(ticket=report).exists()


def test_the_request_and_crossing_lists_give_a_tickets_moments_in_its_contracts_time(staff_client, p1, alice):
    # Sam works in UTC; the ticket's page and these lists say Nairobi's time, each on the same row.
    with time_machine.travel(at(16, 5), tick=False):
        ticket_request_escalation(ticket=p1, user=alice, reason="Please look.")
        requests = staff_client.get(reverse("admin:tickets_escalationrequest_changelist")).content.decode()
    assert "2026-12-11 16:05 (UTC+03:00)" in requests and "(UTC+00:00)" not in requests
    with time_machine.travel(at(16, 20), tick=False):
        check_sla_deadlines()
        crossings = staff_client.get(reverse("admin:tickets_slacrossing_changelist")).content.decode()
    assert "2026-12-11 16:15 (UTC+03:00)" in crossings and "(UTC+00:00)" not in crossings


# --- The ticket page -----------------------------------------------------------------------------
def test_ticket_page_shows_clocks_in_contract_time_and_the_history(lead_client, p1, alice, lena):
    with time_machine.travel(at(16, 3), tick=False):
        lead_client.post(op_url("reply", p1), {"body": "Looking into it.", "internal": "on"})
        ticket_request_escalation(ticket=p1, user=alice, reason="Production is down.")
        response = lead_client.get(change_url(p1))
    html = response.content.decode()
    assert response.status_code == 200
    assert "2026-12-11 16:15 (UTC+03:00)" in html  # first response due, Nairobi time
    assert '<span class="sla-badge sla-on_track">On track</span>' in html
    assert '<span class="note-label">Internal note</span>' in html and "Looking into it." in html
    assert "Customer asked to escalate" in html  # the audit trail
    request = EscalationRequest.objects.get(ticket=p1)
    assert op_url("acknowledge", p1, request.pk) in html
    assert 'id="ticket_form"' not in html  # no form that saves the ticket's fields
    # What was said before the forms that answer it: the request, the conversation, then the reply;
    # logging a call folded (closed) until opened.
    order = [html.index(f'id="{part}"') for part in ("escalation-requests", "conversation", "calls", "reply-form")]
    assert order == sorted(order)
    assert '<details class="ticket-op ticket-op-wide" id="call-details">' in html
    assert lead_client.post(change_url(p1), {"subject": "Changed"}).status_code == 405
    assert Ticket.objects.get(pk=p1.pk).subject == "Backups fail"


def test_public_reply_answers_the_clock_and_emails_the_customer(
    staff_client, p1, alice, bob, mailoutbox, django_capture_on_commit_callbacks
):
    upload = SimpleUploadedFile("agent.log", b"2026-12-11 backup started\n", content_type="application/octet-stream")
    with time_machine.travel(at(16, 5), tick=False), django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(op_url("reply", p1), {"body": "We are on it.", "attachments": [upload]})
    assert response.status_code == 302 and response["Location"] == change_url(p1) + "#conversation"
    p1.refresh_from_db()
    assert p1.first_response_at == at(16, 5)
    assert p1.status == Ticket.Status.OPEN
    message = TicketMessage.objects.get(ticket=p1)
    assert not message.internal
    assert [(a.original_name, a.content_type) for a in Attachment.objects.filter(message=message)] == [
        ("agent.log", "text/plain")
    ]
    replies = [m for m in mailoutbox if m.subject == f"[#{p1.pk}] Reply from support: Backups fail"]
    # The filer; Bob, the contract's other contact, only if he chose every ticket of Acme.
    assert [m.to[0] for m in replies] == [alice.email]
    assert "We are on it." in replies[0].body


def test_internal_note_emails_no_customer_and_leaves_the_clock(
    staff_client, p1, mailoutbox, django_capture_on_commit_callbacks
):
    with time_machine.travel(at(16, 5), tick=False), django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(op_url("reply", p1), {"body": "Customer runs agent 2.1.", "internal": "on"})
    assert response.status_code == 302
    p1.refresh_from_db()
    assert p1.first_response_at is None and p1.status == Ticket.Status.NEW
    assert TicketMessage.objects.get(ticket=p1).internal
    assert mailoutbox == []
    assert not OutboxMessage.objects.filter(key__contains=":reply:").exists()


def test_a_refused_attachment_keeps_the_reply_unsent(staff_client, p1):
    exe = SimpleUploadedFile("tool.exe", b"MZ\x90\x00\x03" + b"\x00" * 200)
    with time_machine.travel(at(16, 5), tick=False):
        response = staff_client.post(op_url("reply", p1), {"body": "Try this tool.", "attachments": [exe]})
    assert response.status_code == 400  # the page again, with the typed reply kept
    assert any(level == ERROR and "tool.exe" in text for level, text in messages_of(response))
    assert "Try this tool." in response.content.decode()
    assert not TicketMessage.objects.filter(ticket=p1).exists()


def test_status_waiting_pauses_the_clocks(staff_client, p1):
    with time_machine.travel(at(16, 5), tick=False):
        response = staff_client.post(op_url("status", p1), {"status": "waiting"}, follow=True)
    assert (SUCCESS, "Status changed.") in messages_of(response)
    p1.refresh_from_db()
    assert p1.status == Ticket.Status.WAITING and p1.paused
    assert p1.pauses.get().ended_at is None
    page = response.content.decode()
    assert '<span class="sla-badge sla-paused">Paused</span>' in page
    # Said in words, with the moment in the contract's time.
    assert "Paused while the ticket waits on the customer, since 2026-12-11 16:05 (UTC+03:00)" in page
    assert "<td>New → Waiting on customer</td>" in page and "<td>channel: Portal, priority: P1</td>" in page
    with time_machine.travel(at(16, 10), tick=False):
        page = staff_client.post(op_url("status", p1), {"status": "resolved"}, follow=True).content.decode()
    assert "Stopped: the ticket was resolved 2026-12-11 16:10 (UTC+03:00)" in page
    assert "yes:" not in page and "resolved since" not in page


def test_priority_change_recomputes_the_clocks_and_is_audited(lead_client, acme_contract, alice, lena):
    t = file(acme_contract, alice, "P3")
    assert t.first_response_due == datetime(2026, 12, 14, 11, 0, tzinfo=NBO)  # 4 business hours
    with time_machine.travel(at(16, 5), tick=False):
        response = lead_client.post(op_url("priority", t), {"priority": "P1", "reason": "Production is down."})
    assert response.status_code == 302
    t.refresh_from_db()
    assert t.priority == "P1"
    assert t.first_response_due == at(16, 15)  # 15 minutes, 24x7, from filing
    event = TicketEvent.objects.get(ticket=t, kind=TicketEvent.Kind.PRIORITY)
    assert (event.actor, event.data, event.at) == (
        lena,
        {"old": "P3", "new": "P1", "reason": "Production is down."},
        at(16, 5),
    )


def test_priority_outside_the_contract_is_refused(lead_client, p1):
    with time_machine.travel(at(16, 5), tick=False):
        response = lead_client.post(op_url("priority", p1), {"priority": "STD"})
    assert response.status_code == 400
    assert [level for level, _ in messages_of(response)] == [ERROR]
    assert Ticket.objects.get(pk=p1.pk).priority == "P1"


def test_assign_and_take(staff_client, p1, sam):
    lena = StaffFactory(email="lena@vendor.example", name="Lena Lead", staff_role="support_lead")
    with time_machine.travel(at(16, 5), tick=False):
        assert staff_client.post(op_url("assign", p1), {"assignee": lena.pk}).status_code == 302
        assert Ticket.objects.get(pk=p1.pk).assignee == lena
        assert staff_client.post(op_url("take", p1)).status_code == 302
        assert Ticket.objects.get(pk=p1.pk).assignee == sam
        inactive = StaffFactory(email="gone@vendor.example", is_active=False)
        response = staff_client.post(op_url("assign", p1), {"assignee": inactive.pk})
    assert response.status_code == 400 and ERROR in [level for level, _ in messages_of(response)]
    assert Ticket.objects.get(pk=p1.pk).assignee == sam
    assert TicketEvent.objects.filter(ticket=p1, kind=TicketEvent.Kind.ASSIGNED).count() == 2

    # Staff without a role that works tickets are not offered, and refused: they would be emailed
    # about a ticket they cannot open.
    roleless = StaffFactory(email="nobody@vendor.example", name="No Role", staff_role="")
    with time_machine.travel(at(16, 6), tick=False):
        page = staff_client.get(change_url(p1)).content.decode()
        response = staff_client.post(op_url("assign", p1), {"assignee": roleless.pk})
    assert "No Role" not in page and "Lena Lead" in page
    assert response.status_code == 400 and (ERROR, "A ticket is assigned to staff who work tickets.") in messages_of(
        response
    )
    with pytest.raises(TicketError, match="staff who work tickets"):
        ticket_assign(ticket=p1, actor=sam, assignee=roleless)


def test_exclude_needs_a_cause_from_the_contract_and_a_reason(lead_client, p1):
    with time_machine.travel(at(16, 5), tick=False):
        # Kaluari's list does not have "customer modification" (Klart's does).
        response = lead_client.post(op_url("exclude", p1), {"cause": "customer_modification", "reason": "Edited it."})
        assert response.status_code == 400
        assert (ERROR, "Choose a cause from the contract's exclusion list.") in messages_of(response)
        response = lead_client.post(op_url("exclude", p1), {"cause": "force_majeure", "reason": " "})
        assert [level for level, _ in messages_of(response)] == [ERROR]
        assert not Ticket.objects.get(pk=p1.pk).is_excluded

        response = lead_client.post(op_url("exclude", p1), {"cause": "force_majeure", "reason": "Flooded DC."})
        assert response.status_code == 302
        p1.refresh_from_db()
        assert (p1.excluded_cause, p1.excluded_reason) == ("force_majeure", "Flooded DC.")
        assert p1.next_deadline is None and p1.next_escalation_due is None
        assert TicketEvent.objects.filter(ticket=p1, kind=TicketEvent.Kind.EXCLUDED).exists()
        rows = queue_rows(lead_client.get(QUEUE).content.decode())
    assert rows == [(p1.pk, "Excluded from SLA")]


def test_escalate_now_moves_one_level_and_tells_the_next_contact_once(lead_client, p1, alice, bob):
    with time_machine.travel(at(16, 5), tick=False):
        response = lead_client.post(op_url("escalate", p1))
    assert response.status_code == 302
    p1.refresh_from_db()
    assert p1.escalation_level == 2
    event = TicketEvent.objects.get(ticket=p1, kind=TicketEvent.Kind.ESCALATED)
    assert event.data == {"from": 1, "to": 2, "passed": [2]}
    keys = set(OutboxMessage.objects.filter(key__contains=":escalation:").values_list("key", flat=True))
    assert keys == {
        f"ticket:{p1.pk}:escalation:2:staff:to:lena@vendor.example",  # level 2's role: a support lead
        f"ticket:{p1.pk}:escalation:2:customer:user:{alice.pk}",
        f"ticket:{p1.pk}:escalation:2:customer:user:{bob.pk}",
    }
    # The sweep carries on from level 2 at the ladder's time (16:15 + 1 h), not again at 16:15.
    with time_machine.travel(at(16, 20), tick=False):
        assert escalate_due_tickets() == 0
    with time_machine.travel(at(17, 15), tick=False):
        assert escalate_due_tickets() == 1
    assert Ticket.objects.get(pk=p1.pk).escalation_level == 3


def test_acknowledge_an_escalation_request_from_the_ticket_page(lead_client, p1, alice, lena):
    with time_machine.travel(at(16, 3), tick=False):
        request = ticket_request_escalation(ticket=p1, user=alice, reason="Production is down.")
    with time_machine.travel(at(16, 6), tick=False):
        response = lead_client.post(op_url("acknowledge", p1, request.pk), follow=True)
    assert (SUCCESS, "Escalation request acknowledged.") in messages_of(response)
    request.refresh_from_db()
    assert (request.acknowledged_at, request.acknowledged_by) == (at(16, 6), lena)
    assert TicketEvent.objects.filter(ticket=p1, kind=TicketEvent.Kind.ESCALATION_ACKNOWLEDGED).count() == 1


def test_every_operation_rejects_get(staff_client, p1, alice):
    with time_machine.travel(at(16, 3), tick=False):
        request = ticket_request_escalation(ticket=p1, user=alice, reason="Production is down.")
        urls = [op_url(name, p1) for name in ("reply", "status", "priority", "assign", "take", "exclude", "escalate")]
        urls.append(op_url("acknowledge", p1, request.pk))
        for url in urls:
            assert staff_client.get(url).status_code == 405, url
    assert TicketEvent.objects.filter(ticket=p1).count() == 2  # filed, escalation requested


def test_operations_check_csrf(p1, sam):
    browser = Client(enforce_csrf_checks=True)
    with time_machine.travel(at(16, 5), tick=False):
        browser.force_login(sam)
        assert browser.post(op_url("status", p1), {"status": "open"}).status_code == 403
    assert Ticket.objects.get(pk=p1.pk).status == Ticket.Status.NEW


def test_operations_need_the_change_permission(client, p1):
    viewer = StaffFactory(email="viewer@vendor.example", staff_role="")  # no role: only what is given below
    viewer.user_permissions.set(Permission.objects.filter(codename="view_ticket"))
    with time_machine.travel(at(16, 5), tick=False):
        client.force_login(viewer)
        assert client.get(change_url(p1)).status_code == 200
        assert client.post(op_url("status", p1), {"status": "open"}).status_code == 403
    assert Ticket.objects.get(pk=p1.pk).status == Ticket.Status.NEW


# --- Changelist actions --------------------------------------------------------------------------
def act(client, action, tickets, **extra):
    data = {"action": action, "_selected_action": [str(t.pk) for t in tickets], **extra}
    return client.post(QUEUE + "?status=all", data, follow=True)  # every ticket, not only the active


def test_take_resolve_and_escalate_actions(lead_client, acme_contract, alice, lena):
    a, b = file(acme_contract, alice, "P1"), file(acme_contract, alice, "P2")
    with time_machine.travel(at(16, 5), tick=False):
        response = act(lead_client, "take", [a, b])
        assert (SUCCESS, "2 ticket(s) assigned to you.") in messages_of(response)
        assert set(Ticket.objects.values_list("assignee", flat=True)) == {lena.pk}

        response = act(lead_client, "escalate_now", [a])
        assert Ticket.objects.get(pk=a.pk).escalation_level == 2

        response = act(lead_client, "resolve", [a, b])
        assert (SUCCESS, "2 ticket(s) resolved.") in messages_of(response)
        assert set(Ticket.objects.values_list("status", flat=True)) == {Ticket.Status.RESOLVED}

        response = act(lead_client, "escalate_now", [b])  # resolved: refused, no 500
    assert (ERROR, f"#{b.pk}: Only an open ticket that counts for the SLA can be escalated.") in messages_of(response)


def test_exclude_action_asks_for_cause_and_reason(lead_client, acme_contract, alice):
    a, b = file(acme_contract, alice, "P1"), file(acme_contract, alice, "P3")
    with time_machine.travel(at(16, 5), tick=False):
        page = act(lead_client, "exclude_from_sla", [a, b])
        assert page.status_code == 200
        html = page.content.decode()
        assert 'id="exclude_from_sla-form"' in html and 'value="ddos"' in html
        assert 'value="customer_modification"' not in html  # not on Kaluari's list

        refused = act(lead_client, "exclude_from_sla", [a, b], apply="yes", cause="ddos", reason="")
        assert refused.status_code == 400 and not Ticket.objects.exclude(excluded_cause="").exists()

        done = act(lead_client, "exclude_from_sla", [a, b], apply="yes", cause="ddos", reason="Attack on the DC.")
    assert (SUCCESS, "2 ticket(s) excluded from the SLA.") in messages_of(done)
    assert set(Ticket.objects.values_list("excluded_cause", flat=True)) == {"ddos"}


# --- Escalation requests and SLA crossings -------------------------------------------------------
def test_escalation_requests_list_pending_by_ack_due_and_acknowledge(lead_client, acme_contract, alice, bob, lena):
    p3, p1 = file(acme_contract, alice, "P3"), file(acme_contract, bob, "P1")
    with time_machine.travel(at(16, 3), tick=False):
        late = ticket_request_escalation(ticket=p3, user=alice, reason="Restore is blocking us.")  # Monday
        soon = ticket_request_escalation(ticket=p1, user=bob, reason="Production is down.")  # 16:18
    url = reverse("admin:tickets_escalationrequest_changelist")
    with time_machine.travel(at(16, 5), tick=False):
        response = lead_client.get(url)
        assert [r.pk for r in response.context["cl"].result_list] == [soon.pk, late.pk]
        assert "data-countdown" in response.content.decode()
        response = lead_client.post(url, {"action": "acknowledge", "_selected_action": [soon.pk]}, follow=True)
        assert (SUCCESS, "1 escalation request(s) acknowledged.") in messages_of(response)
        assert [r.pk for r in response.context["cl"].result_list] == [late.pk]  # pending only
        everything = lead_client.get(url, {"state": "all"})
    assert {r.pk for r in everything.context["cl"].result_list} == {soon.pk, late.pk}
    assert EscalationRequest.objects.get(pk=soon.pk).acknowledged_by == lena


@pytest.mark.parametrize("model", ["escalationrequest", "slacrossing"])
def test_requests_and_crossings_are_read_only(staff_client, p1, model):
    with time_machine.travel(at(16, 20), tick=False):
        check_sla_deadlines()
        assert staff_client.get(reverse(f"admin:tickets_{model}_changelist")).status_code == 200
        assert staff_client.get(reverse(f"admin:tickets_{model}_add")).status_code == 403
    if model == "slacrossing":
        crossing = SLACrossing.objects.get(ticket=p1)
        page = staff_client.get(reverse("admin:tickets_slacrossing_change", args=[crossing.pk]))
        assert page.status_code == 200 and 'type="submit"' not in page.content.decode().split('id="content-main"')[1]


def test_the_ticket_page_words_its_crossings_and_audit_trail_as_people_read_them(staff_client, p1):
    """The crossings' clock and the audit trail's moments as the page writes times (the contract's,
    with its offset), not the database's codes and ISO strings with microseconds."""
    with time_machine.travel(at(16, 14), tick=False):
        check_sla_deadlines()  # the P1's first response (16:15) at risk
    with time_machine.travel(at(16, 20), tick=False):
        check_sla_deadlines()  # then breached
        html = staff_client.get(change_url(p1)).content.decode()
    crossings = html.split('id="crossings"')[1].split("</table>")[0]
    assert "<th>Crossed at</th>" in crossings
    assert "<td>First response</td><td>Breach</td><td>2026-12-11 16:15 (UTC+03:00)</td>" in crossings
    trail = html.split('id="events"')[1].split("</table>")[0]
    assert "first response: Breach at 2026-12-11 16:15 (UTC+03:00)" in trail
    # An at-risk warning's moment is when the share began, not a deadline passed.
    assert "first response: At risk (the at-risk share of its allowance left) at 2026-12-11 16:1" in trail
    assert "first_response" not in trail and "T13:15:00" not in trail


def test_the_audit_trail_names_no_database_id():
    from tickets.admin.display import event_summary

    call = TicketEvent(kind=TicketEvent.Kind.CALL, data={"call": 12, "direction": "outbound", "answered": False,
                       "internal": False, "started_at": "2026-12-11T13:00:00+00:00"})  # fmt: skip
    assert event_summary(call, "Africa/Nairobi") == (
        "answered: no, direction: Outbound (we called the customer), internal: no, started at: 2026-12-11 16:00 (UTC+03:00)"
    )
    away = TicketEvent(kind=TicketEvent.Kind.AUTOMATIC_MAIL, data={"from": "a@x", "subject": "Away", "reason": "r",
                       "inbound": 44})  # fmt: skip
    assert event_summary(away, "UTC") == "from: a@x, reason: r, subject: Away"
    asked = TicketEvent(kind=TicketEvent.Kind.ESCALATION_REQUESTED, data={"request": 5})
    assert event_summary(asked, "UTC") == ""


def test_the_queue_links_each_row_to_its_ticket(staff_client, acme_contract, alice):
    tickets = [file(acme_contract, alice, "P3", subject=f"Row {i}") for i in range(3)]
    page = staff_client.get(QUEUE).content.decode()
    for t in tickets:
        assert page.count(f'href="{reverse("admin:tickets_ticket_change", args=[t.pk])}') == 2  # number and subject


def test_the_queue_filters_by_assignee(staff_client, acme_contract, alice, sam):
    lena = StaffFactory(email="lena@vendor.example", name="Lena Lead", staff_role="support_lead")
    mine, theirs = (file(acme_contract, alice, "P3", subject=s) for s in ("For Sam", "For Lena"))
    with time_machine.travel(FRI_1600 + timedelta(minutes=1), tick=False):
        ticket_assign(ticket=mine, actor=sam, assignee=sam)
        ticket_assign(ticket=theirs, actor=sam, assignee=lena)
    page = staff_client.get(QUEUE).content.decode()
    assert "Lena Lead" in page and f"assignee__id__exact={lena.pk}" in page
    shown = staff_client.get(QUEUE, {"assignee__id__exact": lena.pk}).context["cl"].result_list
    assert [t.subject for t in shown] == ["For Lena"]
    refused = staff_client.get(QUEUE, {"assignee__id__exact": "x"})  # not a 500, nor silently ignored
    assert refused.status_code == 400 and "“x” is none of the staff members it offers." in refused.content.decode()


def test_the_queue_shows_every_kind_of_row(staff_client, acme_contract, alice, bob, sam):
    """Open, assigned, waiting, breached, excluded and resolved tickets, a subject that needs
    escaping, an assignee without a name; the rows' links carry the queue's filters along."""
    lena = StaffFactory(email="lena@vendor.example", name="", staff_role="support_lead")
    file(acme_contract, alice, "P1", subject='Backups "fail" <b>again</b> & again')
    p2 = file(acme_contract, bob, "P2", subject="Agent fails a job")
    p3 = file(acme_contract, alice, "P3", subject="Restore is slow")
    p4 = file(acme_contract, bob, "P4", FRI_1600 - timedelta(hours=2), subject="Old question")
    blank = file(acme_contract, bob, "P3", subject="   ")
    with time_machine.travel(at(16, 5), tick=False):
        ticket_assign(ticket=p2, actor=sam, assignee=sam)
        ticket_assign(ticket=p3, actor=sam, assignee=lena)
        ticket_set_status(ticket=p3, actor=sam, status=Ticket.Status.WAITING)
        ticket_set_status(ticket=p4, actor=sam, status=Ticket.Status.RESOLVED)
        ticket_exclude(ticket=blank, actor=sam, cause="beyond_control", reason="A flood.")
    with time_machine.travel(at(16, 20), tick=False):
        check_sla_deadlines()  # p1's first response is breached
        page = staff_client.get(QUEUE, {"status": "all", "o": "-7.1", "q": "night"}).content.decode()
        everything = staff_client.get(QUEUE, {"status": "all"}).content.decode()
    assert "&quot;fail&quot; &lt;b&gt;again&lt;/b&gt; &amp; again" in page and "<b>again</b>" not in page
    assert f'{change_url(p2)}?_changelist_filters=status%3Dall%26o%3D-7.1%26q%3Dnight"' in page
    for needed in ("Breached", "Excluded", "Met", "Paused", lena.email):
        assert needed in everything, needed
    assert len(queue_rows(everything)) == 5


def test_no_list_counts_its_filters_choices(staff_client, admin_client, p1):
    """Django's "Show counts" counts the whole list once per choice of every filter (the queue at a
    million tickets: 6-9 s a page): no list offers it, and asking for it by URL changes nothing."""
    staff_client.get(QUEUE)  # the process's first page reads the terms the next ones keep
    with CaptureQueriesContext(connection) as plain:
        page = staff_client.get(QUEUE)
    with CaptureQueriesContext(connection) as asked:
        counted = staff_client.get(QUEUE, {"_facets": "True"})
    assert page.status_code == counted.status_code == 200
    assert b"Show counts" not in page.content and b"Hide counts" not in counted.content
    assert len(asked.captured_queries) == len(plain.captured_queries)
    outbox = admin_client.get(reverse("admin:portal_outboxmessage_changelist"), {"_facets": "True"})
    assert outbox.status_code == 200 and b"Hide counts" not in outbox.content


def test_the_queue_cells_escape_what_they_show():
    """tickets.admin.display writes the queue's cells with escape() on each value (not format_html)."""
    from datetime import UTC, datetime

    from django.utils.safestring import SafeString

    from tickets.admin.display import countdown, cut, sla_badge

    hostile = "<script>alert(\"x\")</script> & 'more'"
    escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;more&#x27;"
    assert cut(hostile) == f'<span class="cut" title="{escaped}">{escaped}</span>'
    due, now = datetime(2026, 12, 14, 8, 0, tzinfo=UTC), datetime(2026, 12, 14, 7, 45, tzinfo=UTC)
    assert countdown(due, "Africa/Nairobi", now, hostile) == (
        f'<time datetime="2026-12-14T08:00:00+00:00" data-countdown title="{escaped}">in 15 min</time><br>'
        '<small class="sla-due">2026-12-14 11:00 (UTC+03:00)</small>'
    )
    assert sla_badge("breached") == '<span class="sla-badge sla-breached">Breached</span>'
    assert all(isinstance(v, SafeString) for v in (cut(hostile), countdown(due, "UTC", now), sla_badge("met")))
