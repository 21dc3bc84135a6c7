"""One derivation of a ticket's deadlines (tickets.deadlines.ticket_deadlines), stored on the ticket
and read everywhere: after a calendar edit the recompute task moves the stored columns, and the
emails written after it, the staff queue, the customer's page and the API all state them; recorded
breaches stand; and one at-risk rule, driven by settings.SLA_AT_RISK_SHARE, for the queue's badge,
the staff dashboard and the customer's pages. Frozen clocks throughout (Nairobi time)."""

import re
from datetime import date, datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import call_command
from django.urls import reverse
from rest_framework.test import APIClient

from contracts.calendars import calendars_edited
from contracts.models import ClosedDate, PriorityTerm, WorkingCalendar
from portal.core.delivery import outbox_render
from portal.models import OutboxMessage
from tickets import deadlines, recompute
from tickets.models import SLACrossing, Ticket
from tickets.services import ticket_open, ticket_reply, ticket_set_status
from tickets.sweeps import check_sla_deadlines, escalate_due_tickets

from .factories import StaffFactory
from .test_admin import form_data

NBO = ZoneInfo("Africa/Nairobi")
MON_1400 = datetime(2026, 12, 7, 14, 0, tzinfo=NBO)  # a Monday; no Kenyan holiday that week
TUESDAY = date(2026, 12, 8)
MIN, H = timedelta(minutes=1), timedelta(hours=1)
pytestmark = pytest.mark.django_db


def nbo(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=NBO)


def shown(moment: datetime) -> str:
    """A moment as the pages and emails write it in Nairobi time."""
    return f"{moment.astimezone(NBO):%Y-%m-%d %H:%M} (UTC+03:00)"


def file(contract, user, priority, at, subject="Restores are slow"):
    with time_machine.travel(at, tick=False):
        return ticket_open(
            user=user, contract=contract, service=contract.services.get(), priority=priority, subject=subject,
            description="A restore of 2 GB takes hours.",
        )  # fmt: skip


def sweep(at):
    with time_machine.travel(at, tick=False):
        escalate_due_tickets()
        check_sla_deadlines()


def business_calendar(ticket) -> WorkingCalendar:
    return PriorityTerm.objects.get(version=ticket.sla_version, priority=ticket.priority).calendar


def close_day_in_the_admin(client, calendar, day: date, django_capture_on_commit_callbacks):
    """Staff add a closed date to the calendar on its admin page; the edit commits and its
    on-commit callbacks (the recompute task, eager in the tests) run."""
    url = reverse("admin:contracts_workingcalendar_change", args=[calendar.pk])
    data = form_data(client.get(url).content.decode(), "workingcalendar_form")
    n = int(data["closed_dates-TOTAL_FORMS"][0])
    data.update({
        "closed_dates-TOTAL_FORMS": [str(n + 1)], f"closed_dates-{n}-date": [day.isoformat()],
        f"closed_dates-{n}-reason": ["Staff day"], f"closed_dates-{n}-calendar": [str(calendar.pk)],
    })  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert ClosedDate.objects.filter(calendar=calendar, date=day).exists()
    return callbacks


@pytest.fixture
def recomputed(monkeypatch):
    """The ticket ids each run of the recompute recomputed."""
    runs = []
    real = recompute.tickets_recompute

    def spy(ids, **kwargs):
        runs.append(sorted(ids))
        return real(ids, **kwargs)

    monkeypatch.setattr(recompute, "tickets_recompute", spy)
    return runs


def email_text(key_part: str, to: str) -> str:
    (row,) = OutboxMessage.objects.filter(key__contains=key_part, to=to)
    return outbox_render(row)[1]


# --- A calendar edit: every place states the recomputed deadline ------------------------------------
def test_after_a_calendar_edit_every_email_page_and_the_api_state_the_recomputed_deadlines(
    client, acme_contract, alice, recomputed, django_capture_on_commit_callbacks
):
    staff = StaffFactory(email="lena@vendor.example", name="Lena Lead", staff_role="support_lead")
    # Kaluari P3, business hours 08:00-17:00: first response 4 h, resolution target 12 h, limit 24 h.
    with django_capture_on_commit_callbacks(execute=True):
        t = file(acme_contract, alice, "P3", MON_1400)
    before = (t.first_response_due, t.resolution_target_at, t.resolution_due)
    assert before == (nbo(8, 9), nbo(8, 17), nbo(10, 11))
    receipt = email_text(":filed:", alice.email)

    # At 14:10 staff close Tuesday: every clock of the ticket moves a working day later.
    with time_machine.travel(MON_1400 + 10 * MIN, tick=False):
        client.force_login(staff)
        callbacks = close_day_in_the_admin(client, business_calendar(t), TUESDAY, django_capture_on_commit_callbacks)
    assert len(callbacks) == 1 and recomputed == [[t.pk]]  # the recompute task ran, once, for this ticket
    t.refresh_from_db()
    after = (t.first_response_due, t.resolution_target_at, t.resolution_due)
    assert after == (nbo(9, 9), nbo(9, 17), nbo(11, 11))
    # The sweep looks again when the first response is at risk: 3 of its 4 working hours gone.
    assert t.next_deadline == nbo(9, 9) and t.next_sla_check_at == t.first_response_warn_at == nbo(7, 17)
    # Escalation dwells (30 min, then 4 h) on the same clock: level 2 at 14:30, level 3 on Wednesday.
    assert t.next_escalation_due == nbo(7, 14, 30)
    assert deadlines.dues_from_json(t.escalation_dues)[1] == nbo(9, 9, 30)

    # The receipt, written before the edit, said what was true then.
    assert f"First response due: {shown(before[0])}" in receipt

    # Emails written after the edit: escalation, first-response breach, resolution warning.
    sweep(nbo(7, 14, 30))
    sweep(nbo(9, 9))
    sweep(nbo(9, 9, 30))
    sweep(nbo(9, 17))
    t.refresh_from_db()
    assert t.escalation_level == 4  # level 4 at Wednesday 13:30
    assert after == (t.first_response_due, t.resolution_target_at, t.resolution_due)  # the sweeps derive nothing
    escalated = email_text(f"ticket:{t.pk}:escalation:2:customer", alice.email)
    assert f"It is due to be resolved by {shown(after[2])}." in escalated
    (to_staff,) = OutboxMessage.objects.filter(key__startswith=f"ticket:{t.pk}:escalation:2:staff")
    assert f"Resolution due: {shown(after[2])}." in outbox_render(to_staff)[1]
    breach = email_text("crossing:first_response:breach:customer", alice.email)
    assert f"it was due at {shown(after[0])}" in breach
    warning = email_text("crossing:resolution:warning", "support-queue@vendor.example")
    assert f"passed its resolution target at {shown(after[1])}" in warning
    assert f"It breaches at {shown(after[2])}" in warning
    assert list(SLACrossing.objects.filter(ticket=t).values_list("clock", "kind", "at")) == [
        ("first_response", "breach", after[0]),
        ("resolution", "warning", after[1]),
    ]

    # The staff queue, the customer's page and the API, on Wednesday at noon.
    with time_machine.travel(nbo(9, 12), tick=False):
        client.force_login(staff)
        queue = client.get(reverse("admin:tickets_ticket_changelist")).content.decode()
        client.force_login(alice)
        page = unescape(client.get(reverse("ticket-detail", args=[t.pk])).content.decode())
        api = APIClient()
        api.force_authenticate(alice)
        answer = api.get(reverse("api-ticket-detail", args=[t.pk])).json()
    row = re.search(rf"<tr[^>]*>(?:(?!</tr>).)*?/tickets/ticket/{t.pk}/change/.*?</tr>", queue, re.S)[0]
    assert f'<time datetime="{after[1].isoformat()}" data-countdown' in row  # the next deadline: the target
    assert shown(after[1]) in row
    assert f"Resolution target</dt>\n      <dd>{shown(after[1])}" in page
    assert f"Resolution limit</dt>\n      <dd>{shown(after[2])}" in page
    assert (answer["first_response_due"], answer["resolution_target"], answer["resolution_due"]) == tuple(
        m.astimezone(ZoneInfo("UTC")).isoformat().replace("+00:00", "Z") for m in after
    )


def test_a_recorded_breach_stands_after_a_recompute_that_moves_its_deadline_later(
    client, acme_contract, alice, recomputed, django_capture_on_commit_callbacks
):
    t = file(acme_contract, alice, "P3", MON_1400)
    sweep(nbo(8, 9))  # nobody answered by Tuesday 09:00: the first response is breached
    breach = SLACrossing.objects.get(ticket=t)
    assert (breach.clock, breach.kind, breach.at) == ("first_response", "breach", nbo(8, 9))
    emails = OutboxMessage.objects.filter(key__contains="crossing:first_response:breach").count()

    # At 10:00 on Tuesday the day is closed after all: the deadline moves to Wednesday 09:00.
    with time_machine.travel(nbo(8, 10), tick=False):
        client.force_login(StaffFactory(email="lena@vendor.example", staff_role="support_lead"))
        close_day_in_the_admin(client, business_calendar(t), TUESDAY, django_capture_on_commit_callbacks)
    assert recomputed == [[t.pk]]
    t.refresh_from_db()
    assert t.first_response_due == nbo(9, 9) and t.breached
    # The breach stands: its row, its moment, the ticket's state; no second crossing, no second email.
    sweep(nbo(9, 9))
    sweep(nbo(9, 10))
    assert list(SLACrossing.objects.filter(ticket=t, clock="first_response").values_list("kind", "at")) == [
        ("breach", nbo(8, 9))
    ]
    assert OutboxMessage.objects.filter(key__contains="crossing:first_response:breach").count() == emails
    t.refresh_from_db()
    assert deadlines.sla_state(t, now=nbo(8, 11)) == deadlines.State.BREACHED
    with time_machine.travel(nbo(8, 11), tick=False):
        client.force_login(alice)
        page = client.get(reverse("ticket-detail", args=[t.pk])).content.decode()
    assert "Breached" in page


def test_a_deadline_an_edit_moves_into_the_past_is_swept_at_once(
    client, acme_contract, alice, django_capture_on_commit_callbacks
):
    calendar = WorkingCalendar.objects.get(pk=business_calendar(file(acme_contract, alice, "P3", MON_1400)).pk)
    t = Ticket.objects.get()
    ClosedDate.objects.create(calendar=calendar, date=TUESDAY)
    with time_machine.travel(MON_1400 + MIN, tick=False), django_capture_on_commit_callbacks(execute=True):
        calendars_edited([calendar.pk])
    t.refresh_from_db()
    assert t.first_response_due == nbo(9, 9)
    # Tuesday opens again on Wednesday at 10:00: the deadline was Tuesday 09:00, an hour ago.
    ClosedDate.objects.filter(calendar=calendar).delete()
    with time_machine.travel(nbo(9, 10), tick=False), django_capture_on_commit_callbacks(execute=True):
        calendars_edited([calendar.pk])
    t.refresh_from_db()
    assert t.first_response_due == nbo(8, 9) and t.next_sla_check_at == nbo(8, 9)
    sweep(nbo(9, 10))
    assert SLACrossing.objects.get(ticket=t, clock="first_response").at == nbo(8, 9)


def test_the_recompute_touches_only_open_tickets_on_the_calendar_and_runs_twice_to_the_same_columns(
    acme_contract, alice
):
    p3 = file(acme_contract, alice, "P3", MON_1400)
    p1 = file(acme_contract, alice, "P1", MON_1400, "24x7")  # another calendar
    done = file(acme_contract, alice, "P3", MON_1400, "Done")
    ticket_set_status(ticket=done, actor=StaffFactory(), status="resolved")
    calendar = business_calendar(p3)
    assert recompute.tickets_touched(calendar_ids=[calendar.pk]) == [p3.pk]
    assert p1.pk not in recompute.tickets_touched(calendar_ids=[calendar.pk])
    ClosedDate.objects.create(calendar=calendar, date=TUESDAY)
    calendars_edited([calendar.pk])  # its task is left to run by hand below (no commit in a test)
    columns = list(deadlines.Columns.FIELDS)
    with time_machine.travel(MON_1400 + MIN, tick=False):
        assert recompute.tickets_recompute([p3.pk, done.pk]) == 1
        first = Ticket.objects.filter(pk=p3.pk).values(*columns).get()
        assert recompute.tickets_recompute([p3.pk]) == 1
        assert Ticket.objects.filter(pk=p3.pk).values(*columns).get() == first
    assert first["first_response_due"] == nbo(9, 9)


def test_an_edits_recompute_whose_task_is_lost_is_done_by_the_minutes_sweep(
    acme_contract, alice, monkeypatch, django_capture_on_commit_callbacks
):
    """The embedded broker forgets a message a killed worker had taken, and a broker down at the
    commit never gets it: the edit's request stays, and the SLA sweep recomputes its tickets once it
    is due (RECOMPUTE_GRACE), then forgets it. Before, the tickets kept deadlines a working day early."""
    from tickets import tasks
    from tickets.models import DeadlineRecompute

    t = file(acme_contract, alice, "P3", MON_1400)
    calendar = business_calendar(t)
    monkeypatch.setattr(tasks.recompute_deadlines, "delay", lambda **kwargs: None)  # the task, lost
    ClosedDate.objects.create(calendar=calendar, date=TUESDAY)
    with time_machine.travel(MON_1400 + MIN, tick=False), django_capture_on_commit_callbacks(execute=True):
        calendars_edited([calendar.pk])
    (request,) = DeadlineRecompute.objects.all()
    assert (request.calendar_ids, request.due_at) == ([calendar.pk], MON_1400 + 3 * MIN)
    t.refresh_from_db()
    assert t.first_response_due == nbo(8, 9)  # not recomputed yet
    sweep(MON_1400 + 2 * MIN)
    assert DeadlineRecompute.objects.exists()  # its task's time
    sweep(MON_1400 + 3 * MIN)
    t.refresh_from_db()
    assert t.first_response_due == nbo(9, 9) and not DeadlineRecompute.objects.exists()


def test_an_edits_task_forgets_its_request(acme_contract, alice, django_capture_on_commit_callbacks):
    from tickets.models import DeadlineRecompute

    t = file(acme_contract, alice, "P3", MON_1400)
    ClosedDate.objects.create(calendar=business_calendar(t), date=TUESDAY)
    with time_machine.travel(MON_1400 + MIN, tick=False), django_capture_on_commit_callbacks(execute=True):
        calendars_edited([business_calendar(t).pk])
    t.refresh_from_db()
    assert t.first_response_due == nbo(9, 9) and not DeadlineRecompute.objects.exists()


def test_a_failing_recompute_does_not_stop_the_sla_sweep(monkeypatch, caplog):
    from django.utils import timezone

    from tickets.models import DeadlineRecompute
    from tickets.sweeps import check_sla_deadlines

    now = timezone.now()
    DeadlineRecompute.objects.create(calendar_ids=[1], version_ids=[], due_at=now - MIN)

    def boom(*a, **k):
        raise RuntimeError("one bad ticket")

    monkeypatch.setattr(recompute, "tickets_recompute", boom)
    check_sla_deadlines(now=now)  # the clocks are checked; the request is taken again after its lease
    (request,) = DeadlineRecompute.objects.all()
    assert request.due_at == now + recompute.RECOMPUTE_LEASE
    assert "deadline recompute" in caplog.text


# --- One at-risk rule ------------------------------------------------------------------------------
def test_at_risk_is_the_same_on_the_queue_the_staff_dashboard_and_the_customer_pages(
    client, acme_contract, alice, settings
):
    sam = StaffFactory(email="sam@vendor.example", name="Sam Support")
    # Kaluari P2, 24x7: resolution within 4 h. Answered; at 13:00, 90 of its 240 minutes are left.
    t = file(acme_contract, alice, "P2", nbo(7, 10, 30), "Agent fails a job")
    with time_machine.travel(nbo(7, 10, 40), tick=False):
        ticket_reply(ticket=t, author=sam, body="Looking into it.")
    now = nbo(7, 13)

    def everywhere() -> dict[str, bool]:
        with time_machine.travel(now, tick=False):
            client.force_login(sam)
            queue = client.get(reverse("admin:tickets_ticket_changelist")).content.decode()
            board = client.get(reverse("admin:staff_dashboard")).content.decode()
            client.force_login(alice)
            page = client.get(reverse("ticket-detail", args=[t.pk])).content.decode()
            listed = client.get(reverse("ticket-list") + "?sla=at_risk").content.decode()
            api = APIClient()
            api.force_authenticate(alice)
            state = api.get(reverse("api-ticket-detail", args=[t.pk])).json()["sla_state"]
        at_risk_section = re.search(r'id="at-risk">(.*?)\n</div>', board, re.S)[1]
        return {
            "queue badge": 'class="sla-badge sla-at_risk"' in queue,
            "staff dashboard": "Agent fails a job" in at_risk_section,
            "customer page": "At risk" in page,
            "customer list, at risk": "Agent fails a job" in listed,
            "API": state == "at_risk",
        }

    # A quarter of the allowance (the default): 37.5% left is not at risk, anywhere.
    assert settings.SLA_AT_RISK_SHARE["P2"] == 0.25
    assert set(everywhere().values()) == {False}
    # Half of it, for P2: at risk, everywhere, once the open tickets are recomputed.
    settings.SLA_AT_RISK_SHARE = {**settings.SLA_AT_RISK_SHARE, "P2": 0.5}
    with time_machine.travel(now, tick=False):
        call_command("recompute_deadlines", verbosity=0)
    t.refresh_from_db()
    assert t.at_risk_at == nbo(7, 12, 30)  # 2 of the 4 hours used
    assert everywhere() == dict.fromkeys(everywhere(), True)


def test_every_priority_has_an_at_risk_share(settings):
    from contracts.choices import Priority

    assert set(settings.SLA_AT_RISK_SHARE) == set(Priority.values)
    assert all(0 < share < 1 for share in settings.SLA_AT_RISK_SHARE.values())


# --- The state rule and its query filters agree -----------------------------------------------------
def test_sla_state_and_the_query_filters_agree_on_tickets_in_every_state(acme_contract, alice):
    sam = StaffFactory(email="sam@vendor.example")
    start = nbo(7, 10)
    made = []
    for i, minutes in enumerate((0, 5, 10, 12, 14, 20, 40, 50, 70, 100)):
        made.append(file(acme_contract, alice, "P1", start - minutes * MIN, f"P1 {i}"))
    for i, minutes in enumerate((30, 150, 190, 230, 250)):
        t = file(acme_contract, alice, "P2", start - minutes * MIN, f"P2 {i}")
        with time_machine.travel(start - minutes * MIN + 10 * MIN, tick=False):
            ticket_reply(ticket=t, author=sam, body="On it.")
        made.append(t)
    # P3, business hours, target 12 h before the limit of 24 h: past the target on Monday morning
    # (recorded by the sweep at 09:30, or not yet), and close to it.
    for i, filed in enumerate((nbo(3, 9), nbo(3, 16), nbo(4, 8))):
        t = file(acme_contract, alice, "P3", filed, f"P3 {i}")
        with time_machine.travel(filed + 10 * MIN, tick=False):
            ticket_reply(ticket=t, author=sam, body="On it.")
    with time_machine.travel(start - 40 * MIN, tick=False):
        ticket_set_status(ticket=made[7], actor=sam, status="waiting")
        ticket_set_status(ticket=made[8], actor=sam, status="resolved")
    sweep(start - 30 * MIN)  # some breaches recorded, some not yet
    now = start
    tickets = list(Ticket.objects.filter(status__in=Ticket.ACTIVE))
    states = {t.pk: deadlines.sla_state(t, now=now) for t in tickets}
    active = Ticket.objects.filter(status__in=Ticket.ACTIVE)
    for name, q, state in (
        ("breached", deadlines.breached_q(now), deadlines.State.BREACHED),
        ("warned", deadlines.warned_q(now), deadlines.State.WARNED),
        ("at risk", deadlines.at_risk_q(now), deadlines.State.AT_RISK),
    ):
        by_query = set(active.filter(q).values_list("pk", flat=True))
        assert by_query == {pk for pk, s in states.items() if s == state}, name
    assert {deadlines.State.BREACHED, deadlines.State.WARNED, deadlines.State.AT_RISK} <= set(states.values())
    assert deadlines.State.ON_TRACK in states.values() and deadlines.State.PAUSED in states.values()


# --- The derivation itself (pure) ------------------------------------------------------------------
def test_the_at_risk_moment_is_when_the_share_of_the_nearest_clock_is_left():
    from portal.domain.working_time import WorkingTime

    clock = WorkingTime.always_open("Africa/Nairobi")
    targets = deadlines.Targets(
        first_response=H, resolution_target=4 * H, resolution_limit=4 * H, clock=clock, resolution_clock=clock
    )
    filed = nbo(7, 10)
    fresh = deadlines.History(filed_at=filed)
    assert deadlines.at_risk_moment(targets, fresh, share=0.25) == filed + 45 * MIN  # the first response's
    answered = deadlines.History(filed_at=filed, first_response_at=filed + 5 * MIN)
    assert deadlines.at_risk_moment(targets, answered, share=0.25) == filed + 3 * H  # the resolution's
    waited = deadlines.History(filed_at=filed, first_response_at=filed + 5 * MIN, waiting=((filed + H, filed + 2 * H),))
    assert deadlines.at_risk_moment(targets, waited, share=0.25) == filed + 4 * H  # the pause counts
    paused = deadlines.History(filed_at=filed, first_response_at=filed + 5 * MIN, waiting=((filed + H, None),))
    assert deadlines.at_risk_moment(targets, paused, share=0.25) is None
    with pytest.raises(ValueError):
        deadlines.at_risk_moment(targets, fresh, share=1.5)


def test_a_recompute_longer_than_its_lease_is_not_started_again_by_the_sla_sweep(acme_contract, alice, monkeypatch):
    """A recompute runs batch after batch; its request's lease (RECOMPUTE_LEASE, 10 minutes) was
    set once, so the minute's SLA sweep took the request again while the first run still went on
    (two runs side by side, and a third ten minutes later). Its lease is renewed after each batch."""
    from tickets.models import DeadlineRecompute

    tickets = [file(acme_contract, alice, "P3", MON_1400, f"Ticket {i}") for i in range(3)]
    calendar = business_calendar(tickets[0])
    ClosedDate.objects.create(calendar=calendar, date=TUESDAY)
    request = recompute.recompute_requested(calendar_ids=[calendar.pk], now=MON_1400)
    monkeypatch.setattr(recompute, "RECOMPUTE_BATCH", 1)
    runs, real_batch, real_run = [], recompute._recompute_batch, recompute.recompute_run

    def counted_run(request_id, **kwargs):
        runs.append(request_id)
        return real_run(request_id, **kwargs)

    monkeypatch.setattr(recompute, "recompute_run", counted_run)
    with time_machine.travel(MON_1400 + 3 * MIN, tick=False) as clock:

        def slow_batch(ids, **kwargs):  # 4 minutes a batch: 12 minutes in all
            clock.shift(4 * MIN)
            if len(runs) == 1:  # (not from within a second run, had the sweep started one)
                check_sla_deadlines()  # the minute's sweep, meanwhile (another worker process)
            return real_batch(ids, **kwargs)

        monkeypatch.setattr(recompute, "_recompute_batch", slow_batch)
        assert recompute.recompute_overdue(now=MON_1400 + 3 * MIN) == 3
    assert runs == [request.pk]  # once: no sweep took it again while it ran
    assert not DeadlineRecompute.objects.exists()
    assert {t.first_response_due for t in Ticket.objects.filter(pk__in=[t.pk for t in tickets])} == {nbo(9, 9)}


def test_the_sla_sweeps_soft_time_limit_stops_it_in_a_recompute(acme_contract, alice, monkeypatch):
    """The task's soft time limit (portal.celery) raises inside the recompute the sweep runs: it stops
    the sweep, not a "failed" log line with the sweep going on until the hard kill."""
    from celery.exceptions import SoftTimeLimitExceeded

    from tickets.models import DeadlineRecompute

    file(acme_contract, alice, "P3", MON_1400, "Ticket")
    recompute.recompute_requested(calendar_ids=[], version_ids=[acme_contract.sla.versions.first().pk], now=MON_1400)

    def out_of_time(*args, **kwargs):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(recompute, "tickets_recompute", out_of_time)
    with pytest.raises(SoftTimeLimitExceeded):
        recompute.recompute_overdue(now=MON_1400 + 3 * MIN)
    assert DeadlineRecompute.objects.exists()  # taken again after its lease


def test_an_at_risk_warning_stands_while_it_is_about_the_deadline_the_clock_has():
    """deadlines.standing: a breach and a target's warning stand for the ticket's life; an at-risk
    warning under the ticket's priority (a pause or a reopening moved the deadline: its allowance was
    warned of), or naming the deadline the clock has (a priority change that did not move it)."""
    due, later = nbo(7, 15), nbo(14, 15)
    rows = [
        deadlines.Recorded("first_response", "at_risk", "P2", due),
        deadlines.Recorded("first_response", "breach", "P2", due),
        deadlines.Recorded("resolution", "warning", "P2", due),
    ]
    stand = lambda priority, deadline: deadlines.standing(rows, priority=priority, deadline_of=lambda c: deadline)  # noqa: E731
    everything = {("first_response", "at_risk"), ("first_response", "breach"), ("resolution", "warning")}
    assert stand("P2", later) == everything  # the same priority, the deadline moved by a pause
    assert stand("P4", due) == everything  # another priority, the same deadline
    assert stand("P4", later) == everything - {("first_response", "at_risk")}  # warn of the new one
    assert stand("P4", None) == everything - {("first_response", "at_risk")}


# --- A deadline an edit moves is explained on the customer's ticket page ---------------------------
def test_a_deadline_a_closed_date_moves_is_explained_on_the_customers_ticket_page(
    client, acme_contract, alice, lena, django_capture_on_commit_callbacks
):
    """Alice's receipt said: first response by Tuesday 09:00. Lena closes Tuesday ("Staff day"): the
    deadline became Wednesday 09:00 with nothing on the ticket saying so, or why. An answered ticket's
    first response is not a deadline any more: only its resolution's moves are told."""
    from django.core import mail

    from contracts.services import calendar_set_closed_dates

    with django_capture_on_commit_callbacks(execute=True):
        t = file(acme_contract, alice, "P3", MON_1400)
        answered = file(acme_contract, alice, "P3", MON_1400, "Answered")
        with time_machine.travel(MON_1400 + MIN, tick=False):
            ticket_reply(ticket=answered, author=StaffFactory(), body="On it.")
    mail.outbox.clear()
    calendar = business_calendar(t)
    with time_machine.travel(MON_1400 + 10 * MIN, tick=False), django_capture_on_commit_callbacks(execute=True):
        assert calendar_set_closed_dates(calendar=calendar, closed={TUESDAY: "Staff day"}, actor=lena)
    t.refresh_from_db()
    assert t.first_response_due == nbo(9, 9)
    assert not [m for m in mail.outbox if alice.email in m.to]  # told on the page, not by email

    client.force_login(alice)
    with time_machine.travel(MON_1400 + 11 * MIN, tick=False):
        page = unescape(client.get(reverse("ticket-detail", args=[t.pk])).content.decode())
        other = unescape(client.get(reverse("ticket-detail", args=[answered.pk])).content.decode())
    why = f"Why: our working calendar “{calendar.name}” changed: 2026-12-08 closed (Staff day)."
    assert "Your SLA deadlines moved" in page and why in page
    assert f"First response: from {shown(nbo(8, 9))} to {shown(nbo(9, 9))}" in re.sub(r"</?strong>", "", page)
    assert "Resolution limit: from" in page
    assert why in other and "First response: from" not in other and "Resolution limit: from" in other
    client.force_login(lena)  # the staff's audit trail says it too
    with time_machine.travel(MON_1400 + 11 * MIN, tick=False):
        staff = unescape(client.get(reverse("admin:tickets_ticket_change", args=[t.pk])).content.decode())
    assert f"First response {shown(nbo(8, 9))} → {shown(nbo(9, 9))}" in staff and "(shown to the customer)" in staff
    client.force_login(alice)

    # Tuesday open again: told too, and the deadline is back.
    with time_machine.travel(MON_1400 + 20 * MIN, tick=False), django_capture_on_commit_callbacks(execute=True):
        assert calendar_set_closed_dates(calendar=calendar, closed={}, actor=lena)
    with time_machine.travel(MON_1400 + 21 * MIN, tick=False):
        page = unescape(client.get(reverse("ticket-detail", args=[t.pk])).content.decode())
    assert "changed: 2026-12-08 open again." in page
    assert f"First response: from {shown(nbo(9, 9))} to {shown(nbo(8, 9))}" in re.sub(r"</?strong>", "", page)
    # A recompute that moves nothing says nothing.
    with time_machine.travel(MON_1400 + 30 * MIN, tick=False):
        recompute.tickets_recompute([t.pk, answered.pk])
    assert t.events.filter(kind="deadline_moved").count() == 2


def test_telling_moved_deadlines_costs_the_same_queries_whatever_the_batch(acme_contract, alice):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    calendar = business_calendar(file(acme_contract, alice, "P3", MON_1400, "First"))
    counts = []
    for n, day in ((2, TUESDAY), (6, TUESDAY + timedelta(days=1))):
        ids = [file(acme_contract, alice, "P3", MON_1400, f"Ticket {i}").pk for i in range(n)]
        ClosedDate.objects.create(calendar=calendar, date=day, reason="Staff day")
        calendars_edited([calendar.pk])
        with time_machine.travel(MON_1400 + MIN, tick=False), CaptureQueriesContext(connection) as queries:
            assert recompute.tickets_recompute(ids, reason="closed") == n
        counts.append(len(queries))
        assert Ticket.objects.filter(pk__in=ids, events__kind="deadline_moved").distinct().count() == n
    assert counts[0] == counts[1]
