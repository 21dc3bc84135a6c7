"""Ticket clocks end to end: filing, deadlines from the SLA version, escalation and crossings
swept by the timers, emails through the outbox. Frozen clocks throughout."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail

from contracts.models import SLA
from portal.core.delivery import outbox_render
from portal.models import OutboxMessage
from tickets.models import SLACrossing, Ticket, TicketEvent
from tickets.services import ticket_open, ticket_reply, ticket_set_status
from tickets.sweeps import check_sla_deadlines, escalate_due_tickets

from .factories import ContractFactory, StaffFactory

NBO = ZoneInfo("Africa/Nairobi")
STO = ZoneInfo("Europe/Stockholm")
FRI_1600 = datetime(2026, 12, 11, 16, 0, tzinfo=NBO)
pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(db):
    return {
        "lead": StaffFactory(email="lena@vendor.example", name="Lena Lead", staff_role="support_lead"),
        "am": StaffFactory(
            email="ayo@vendor.example", name="Ayo AM", staff_role="account_manager", phone="+254 700 100 300"
        ),
        "csm": StaffFactory(
            email="cleo@vendor.example", name="Cleo CSM", staff_role="cloud_solutions_manager", phone="+254 700 100 400"
        ),
    }


def file(contract, user, priority, at, subject="Backups fail"):
    with time_machine.travel(at, tick=False):
        return ticket_open(
            user=user, contract=contract, service=contract.services.get(), priority=priority,
            subject=subject, description="Nothing backs up since last night.",
        )  # fmt: skip


def local(moment, tz=NBO):
    return moment.astimezone(tz).replace(tzinfo=None)


def sweep(at):
    with time_machine.travel(at, tick=False):
        return escalate_due_tickets(), check_sla_deadlines()


def test_kaluari_p3_filed_friday_afternoon_is_due_monday(acme_contract, alice):
    t = file(acme_contract, alice, "P3", FRI_1600)
    assert local(t.first_response_due) == datetime(2026, 12, 14, 11, 0)  # 4 business hours
    assert local(t.resolution_target_at) == datetime(2026, 12, 15, 10, 0)  # 12 business hours
    assert local(t.resolution_due) == datetime(2026, 12, 16, 13, 0)  # 24 business hours: 1 + 9 + 9 + 5
    assert t.sla_version.number == 1 and t.escalation_level == 1
    assert local(t.next_escalation_due) == datetime(2026, 12, 11, 16, 30)  # level 1 dwell: 30 business minutes


def test_receipt_email_names_the_ticket_and_its_deadlines_in_nairobi_time(
    acme_contract, alice, bob, django_capture_on_commit_callbacks
):
    with time_machine.travel(FRI_1600, tick=False), django_capture_on_commit_callbacks(execute=True):
        t = file(acme_contract, alice, "P3", FRI_1600)
    to_alice = [m for m in mail.outbox if m.to == [alice.email]]
    assert len(to_alice) == 1
    assert to_alice[0].subject == f"[#{t.pk}] Received: Backups fail"
    assert "First response due: 2026-12-14 11:00 (UTC+03:00)" in to_alice[0].body
    assert "Resolution limit:   2026-12-16 13:00 (UTC+03:00)" in to_alice[0].body
    # The contract's other contact hears of Alice's ticket only if he chose every ticket of Acme.
    assert not any(m.to == [bob.email] for m in mail.outbox)
    assert any(m.to == ["support-queue@vendor.example"] and "New P3 ticket" in m.subject for m in mail.outbox)


def test_kaluari_p1_escalates_through_the_ladder_with_one_email_per_level_and_recipient(
    acme_contract, alice, bob, staff
):
    t = file(acme_contract, alice, "P1", FRI_1600)
    assert local(t.first_response_due) == datetime(2026, 12, 11, 16, 15)
    assert local(t.resolution_due) == datetime(2026, 12, 11, 17, 0)
    assert sweep(FRI_1600 + timedelta(minutes=14, seconds=59))[0] == 0
    expected = [(16, 15, 2), (17, 15, 3), (18, 15, 4)]
    for hour, minute, level in expected:
        at = datetime(2026, 12, 11, hour, minute, tzinfo=NBO)
        assert sweep(at)[0] == 1
        t.refresh_from_db()
        assert t.escalation_level == level
        assert sweep(at)[0] == 0  # a second sweep at the same moment changes nothing
    # Level 4's dwell (4 h) passes at 22:15: one top-level alert, to level 4 again.
    sweep(datetime(2026, 12, 11, 22, 14, tzinfo=NBO))
    assert not TicketEvent.objects.filter(ticket=t, kind="top_alert").exists()
    sweep(datetime(2026, 12, 11, 22, 15, tzinfo=NBO))
    sweep(datetime(2026, 12, 12, 9, 0, tzinfo=NBO))
    assert TicketEvent.objects.filter(ticket=t, kind="top_alert").count() == 1
    t.refresh_from_db()
    assert t.next_escalation_due is None and t.top_alert_sent
    keys = set(OutboxMessage.objects.filter(key__contains=":escalation:").values_list("key", flat=True))
    assert keys == {
        f"ticket:{t.pk}:escalation:2:staff:to:lena@vendor.example",
        f"ticket:{t.pk}:escalation:3:staff:to:ayo@vendor.example",
        f"ticket:{t.pk}:escalation:4:staff:to:cleo@vendor.example",
        *(f"ticket:{t.pk}:escalation:{lv}:customer:user:{u.pk}" for lv in (2, 3, 4) for u in (alice, bob)),
    }
    top = OutboxMessage.objects.get(key__contains=":top-alert")
    # Rendered from the contexts frozen when each level was reached (the ticket is at 4 by now).
    assert top.to == "cleo@vendor.example" and "UNRESOLVED AT THE TOP LEVEL" in outbox_render(top)[0]
    level3 = OutboxMessage.objects.get(key=f"ticket:{t.pk}:escalation:3:customer:user:{alice.pk}")
    subject, text, _ = outbox_render(level3)
    assert "Escalated to level 3" in subject
    assert "Call your Account Manager: Ayo AM, +254 700 100 300" in text


def test_missed_escalations_are_caught_up_in_one_step_naming_every_level(acme_contract, alice, staff):
    t = file(acme_contract, alice, "P1", FRI_1600)
    # Workers were down from 16:10 until 19:00: one sweep brings the ticket from level 1 to 4.
    assert sweep(datetime(2026, 12, 11, 19, 0, tzinfo=NBO))[0] == 1
    t.refresh_from_db()
    assert t.escalation_level == 4
    event = TicketEvent.objects.get(ticket=t, kind="escalated")
    assert event.data == {"from": 1, "to": 4, "passed": [2, 3, 4]}
    to_alice = OutboxMessage.objects.filter(key__contains=":escalation:", to=alice.email)
    assert to_alice.count() == 1
    assert "It passed levels 2, 3, 4." in outbox_render(to_alice.get())[1]
    to_csm = outbox_render(OutboxMessage.objects.get(key__contains=":escalation:4:staff", to=staff["csm"].email))[1]
    assert "Levels passed: 2 (" in to_csm and "), 3 (" in to_csm
    # One level at a time (the sweep on time), no list of one.
    t2 = file(acme_contract, alice, "P1", FRI_1600, subject="Restore fails")
    sweep(FRI_1600 + timedelta(minutes=16))
    to_lead = OutboxMessage.objects.filter(key__startswith=f"ticket:{t2.pk}:escalation:2:staff:").first()
    assert "Levels passed" not in outbox_render(to_lead)[1] and "now at escalation level 2" in outbox_render(to_lead)[1]
    assert local(t.next_escalation_due) == datetime(2026, 12, 11, 22, 15)


def test_an_escalation_due_before_the_resolution_is_recorded_by_a_late_sweep_and_tells_nobody(
    acme_contract, alice, staff
):
    """P1 filed at 16:00: level 2 is due at 16:15. Resolved at 16:30 while the workers were down
    until 19:00: the ticket reached level 2 (as with the workers up), recorded at 16:15; nobody is
    told to act on a resolved ticket, and it moves no further."""
    sam = StaffFactory(email="sam@vendor.example")
    t = file(acme_contract, alice, "P1", FRI_1600)
    with time_machine.travel(FRI_1600 + timedelta(minutes=30), tick=False):
        ticket_set_status(ticket=t, actor=sam, status="resolved")
    t.refresh_from_db()
    assert local(t.next_escalation_due) == datetime(2026, 12, 11, 16, 15)  # due before the resolution
    mail.outbox.clear()
    OutboxMessage.objects.all().delete()
    assert sweep(datetime(2026, 12, 11, 19, 0, tzinfo=NBO))[0] == 1
    t.refresh_from_db()
    assert (t.escalation_level, t.next_escalation_due, t.top_alert_sent) == (2, None, False)
    event = TicketEvent.objects.get(ticket=t, kind="escalated")
    assert (event.data, local(event.at)) == ({"from": 1, "to": 2, "passed": [2]}, datetime(2026, 12, 11, 16, 15))
    assert not OutboxMessage.objects.filter(key__contains=":escalation:").exists()
    assert sweep(datetime(2026, 12, 12, 19, 0, tzinfo=NBO))[0] == 0


def test_waiting_on_the_customer_pauses_every_clock_until_they_reply(acme_contract, alice, staff):
    sam = StaffFactory(email="sam@vendor.example")
    t = file(acme_contract, alice, "P2", FRI_1600)
    with time_machine.travel(FRI_1600 + timedelta(minutes=10), tick=False):
        ticket_reply(ticket=t, author=sam, body="Which agent version?")
        ticket_set_status(ticket=t, actor=sam, status="waiting")
    t.refresh_from_db()
    assert t.paused and t.resolution_due is None and t.next_escalation_due is None
    assert t.first_response_at == FRI_1600 + timedelta(minutes=10)
    assert sweep(FRI_1600 + timedelta(hours=10)) == (0, 0)  # nothing runs while paused
    # The customer replies two hours later: the clocks resume; 3 h 50 min of resolution remain.
    with time_machine.travel(FRI_1600 + timedelta(hours=2, minutes=10), tick=False):
        ticket_reply(ticket=t, author=alice, body="Agent 4.2.1")
    t.refresh_from_db()
    assert t.status == "open" and not t.paused
    assert local(t.resolution_due) == datetime(2026, 12, 11, 22, 0)  # 16:00 + 4 h + 2 h paused
    assert local(t.next_escalation_due) == datetime(2026, 12, 11, 18, 15)  # level-1 dwell: 15 min, of which 10 used


def test_reopening_resumes_the_resolution_clock_where_it_stopped(acme_contract, alice, staff):
    sam = StaffFactory(email="sam@vendor.example")
    t = file(acme_contract, alice, "P2", FRI_1600)
    with time_machine.travel(FRI_1600 + timedelta(hours=1), tick=False):
        ticket_reply(ticket=t, author=sam, body="Fixed the agent.")
        ticket_set_status(ticket=t, actor=sam, status="resolved")
    t.refresh_from_db()
    assert t.next_sla_check_at is None
    # Level 2 was due at 16:15, before the resolution, and no sweep has run: the next one moves it.
    assert local(t.next_escalation_due) == datetime(2026, 12, 11, 16, 15)
    with time_machine.travel(FRI_1600 + timedelta(days=1), tick=False):
        ticket_set_status(ticket=t, actor=alice, status="open")
    t.refresh_from_db()
    # 1 h of the 4 h was used before the resolution; 3 h remain from the reopening.
    assert t.resolution_due == FRI_1600 + timedelta(days=1, hours=3)
    # No sweep ran: the ticket is still at level 1, whose move was due at 16:15 (taken at once).
    assert t.escalation_level == 1 and t.next_escalation_due == FRI_1600 + timedelta(minutes=15)
    # Deadlines recomputed from the history give the same answer.
    from tickets.recompute import ticket_recompute

    before = (t.first_response_due, t.resolution_due, t.next_escalation_due)
    ticket_recompute(t, now=FRI_1600 + timedelta(days=1))
    assert (t.first_response_due, t.resolution_due, t.next_escalation_due) == before


def test_a_missed_first_response_is_a_breach_recorded_once_and_emailed(acme_contract, alice, bob, staff):
    assignee = StaffFactory(email="sam@vendor.example")
    t = file(acme_contract, alice, "P1", FRI_1600)
    t.assignee = assignee
    t.save()
    assert sweep(datetime(2026, 12, 11, 16, 14, 59, tzinfo=NBO))[1] == 1  # the warning before (at 16:11:15)
    assert sweep(datetime(2026, 12, 11, 16, 15, tzinfo=NBO))[1] == 1
    assert sweep(datetime(2026, 12, 11, 16, 16, tzinfo=NBO))[1] == 0
    crossing = SLACrossing.objects.get(ticket=t, kind="breach")
    assert (crossing.clock, crossing.kind, local(crossing.at)) == (
        "first_response",
        "breach",
        datetime(2026, 12, 11, 16, 15),
    )
    recipients = set(
        OutboxMessage.objects.filter(key__contains=":crossing:first_response:breach").values_list("to", flat=True)
    )
    assert recipients == {"sam@vendor.example", "lena@vendor.example", alice.email, bob.email}
    t.refresh_from_db()
    assert t.breached
    # P1 resolution (1 h) is target and limit at once: one warning and one breach at 17:00 (no
    # sweep ran from 16:45, when it was at risk, to its deadline: a late warning is never sent).
    sweep(datetime(2026, 12, 11, 17, 0, tzinfo=NBO))
    assert set(SLACrossing.objects.filter(ticket=t).values_list("clock", "kind")) == {
        ("first_response", "at_risk"), ("first_response", "breach"), ("resolution", "warning"), ("resolution", "breach"),
    }  # fmt: skip
    # Its staff hear of the breach alone: a "target passed" email beside it would say less, at once.
    resolution = OutboxMessage.objects.filter(key__contains=":crossing:resolution:")
    assert sorted({k.split(":")[4] for k in resolution.values_list("key", flat=True)}) == ["breach"]
    assert "sam@vendor.example" in set(resolution.values_list("to", flat=True))


def test_kaluari_p3_passing_its_target_warns_and_its_limit_breaches(acme_contract, alice, staff):
    t = file(acme_contract, alice, "P3", FRI_1600)
    sam = StaffFactory(email="sam@vendor.example")
    with time_machine.travel(datetime(2026, 12, 14, 9, 0, tzinfo=NBO), tick=False):
        ticket_reply(ticket=t, author=sam, body="Looking into it.")
    sweep(datetime(2026, 12, 15, 10, 0, tzinfo=NBO))
    assert list(SLACrossing.objects.filter(ticket=t).values_list("clock", "kind")) == [("resolution", "warning")]
    warning = OutboxMessage.objects.get(key__contains="crossing:resolution:warning")
    assert warning.to == "support-queue@vendor.example"  # unassigned: the queue hears of it
    sweep(datetime(2026, 12, 16, 13, 0, tzinfo=NBO))
    assert SLACrossing.objects.filter(ticket=t, kind="breach").count() == 1


def test_resolving_in_time_records_nothing(acme_contract, alice, staff):
    sam = StaffFactory(email="sam@vendor.example")
    t = file(acme_contract, alice, "P1", FRI_1600)
    with time_machine.travel(FRI_1600 + timedelta(minutes=5), tick=False):
        ticket_reply(ticket=t, author=sam, body="On it")
        ticket_set_status(ticket=t, actor=sam, status="resolved")
    sweep(FRI_1600 + timedelta(days=3))
    assert not SLACrossing.objects.exists()
    assert not TicketEvent.objects.filter(kind="escalated").exists()


def test_klart_has_one_pair_of_targets_on_working_days(globex, charlie, staff):
    klart = SLA.objects.get(template_key="klart-ai")
    contract = ContractFactory(organisation=globex, sla=klart, currency="SEK", contacts=[charlie])
    t = file(contract, charlie, None, datetime(2026, 12, 11, 15, 0, tzinfo=STO))  # a Friday
    assert t.priority == "STD"
    # 4 business hours (08:00-17:00): 2 on Friday, 2 on Monday.
    assert local(t.first_response_due, STO) == datetime(2026, 12, 14, 10, 0)
    # 24 hours of weekday time: the 9 hours left on Friday, then 15 on Monday.
    assert local(t.resolution_due, STO) == datetime(2026, 12, 14, 15, 0)
    assert t.next_escalation_due is None  # Klart has no escalation ladder


def test_an_excluded_ticket_has_no_timers(acme_contract, alice, staff):
    from tickets.services import ticket_exclude

    sam = StaffFactory(email="sam@vendor.example")
    t = file(acme_contract, alice, "P1", FRI_1600)
    ticket_exclude(ticket=t, actor=sam, cause="unsupported_equipment", reason="Agent on Windows XP")
    t.refresh_from_db()
    assert t.next_escalation_due is None and t.next_sla_check_at is None
    assert sweep(FRI_1600 + timedelta(days=1)) == (0, 0)
    assert TicketEvent.objects.get(ticket=t, kind="excluded").data == {
        "cause": "unsupported_equipment",
        "reason": "Agent on Windows XP",
    }


def test_changing_priority_recomputes_clocks_from_the_start(acme_contract, alice, staff):
    from tickets.services import ticket_change_priority

    sam = StaffFactory(email="sam@vendor.example")
    t = file(acme_contract, alice, "P3", FRI_1600)
    with time_machine.travel(FRI_1600 + timedelta(minutes=5), tick=False):
        ticket_change_priority(ticket=t, actor=sam, priority="P1", reason="Production is down.")
    t.refresh_from_db()
    assert local(t.first_response_due) == datetime(2026, 12, 11, 16, 15)
    assert TicketEvent.objects.get(ticket=t, kind="priority").data == {
        "old": "P3",
        "new": "P1",
        "reason": "Production is down.",
    }


def test_only_tickets_marked_active_are_in_the_queue(acme_contract, alice):
    t = file(acme_contract, alice, "P4", FRI_1600)
    assert Ticket.objects.filter(next_deadline__isnull=False).get() == t


def test_a_departed_account_manager_is_not_the_person_a_customer_is_told_to_call(acme, acme_contract, alice):
    """Level 3 is "Call your Account Manager": once the organisation's own manager is deactivated,
    the customer is given the role's active staff, the same person the staff email goes to."""
    from django.test import Client
    from django.urls import reverse

    gone = StaffFactory(email="old-am@vendor.example", name="Olga Gone", staff_role="account_manager",
                        phone="+254 700 000 999")  # fmt: skip
    StaffFactory(email="ayo@vendor.example", name="Ayo AM", staff_role="account_manager", phone="+254 700 100 300")
    acme.account_manager = gone
    acme.save()
    gone.is_active = False
    gone.save()
    with time_machine.travel(datetime(2026, 12, 11, 16, 0, tzinfo=NBO), tick=False):
        t = ticket_open(user=alice, contract=acme_contract, service=acme_contract.services.get(), priority="P1",
                        subject="Backups fail", description="Nothing backs up.")  # fmt: skip
    for hm in ((16, 15), (17, 15)):  # level 2, then level 3
        with time_machine.travel(datetime(2026, 12, 11, *hm, tzinfo=NBO), tick=False):
            escalate_due_tickets()
    t.refresh_from_db()
    assert t.escalation_level == 3

    staff_to = set(
        OutboxMessage.objects.filter(key__startswith=f"ticket:{t.pk}:escalation:3:staff").values_list("to", flat=True)
    )
    assert staff_to == {"ayo@vendor.example"}
    text = outbox_render(OutboxMessage.objects.get(key=f"ticket:{t.pk}:escalation:3:customer:user:{alice.pk}"))[1]
    with time_machine.travel(datetime(2026, 12, 11, 17, 20, tzinfo=NBO), tick=False):
        client = Client()
        client.force_login(alice)
        page = client.get(reverse("ticket-detail", args=[t.pk])).content.decode()
    for shown in (text, page):
        assert "Olga Gone" not in shown and "+254 700 000 999" not in shown
        assert "Ayo AM, +254 700 100 300" in shown
