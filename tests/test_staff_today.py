"""The staff dashboard's day's work (issue 21, item 6): breached, at risk, waiting on staff longest,
escalation requests with their acknowledgement deadlines, held emails, today's maintenance and this
month's claims. Each number opens its admin list filtered to exactly those rows (the list's count is
the number), scoped by role (vulnerability reports for security staff only); the page's queries
do not grow with its rows."""

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from contracts.maintenance.services import window_publish
from credits.closing import close_month
from credits.services import claim_submit
from tickets.models import InboundMessage, Ticket
from tickets.security import security_report_submit
from tickets.services import ticket_open, ticket_reply, ticket_request_escalation
from tickets.sweeps import check_sla_deadlines

from .factories import ContractFactory, OrganisationFactory, ServiceFactory, UserFactory
from .test_staff_dashboard import gap_month, section, text

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)  # a Wednesday
OCT = date(2026, 10, 1)
MIN = timedelta(minutes=1)
DASHBOARD = reverse("admin:staff_dashboard")
# (the number's place on the page, its link's name in the context)
NUMBERS = ["breached", "at_risk", "waiting", "escalations", "held", "today", "month_claims", "claims"]


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def file(contract, user, priority, when, subject):
    with time_machine.travel(when, tick=False):
        return ticket_open(user=user, contract=contract, service=contract.services.get(), priority=priority,
                           subject=subject, description="Nothing backs up.")  # fmt: skip


def reply(ticket, author, when, body="Noted."):
    with time_machine.travel(when, tick=False):
        ticket_reply(ticket=ticket, author=author, body=body)


def held(n: int, *, security=False):
    return InboundMessage.objects.create(
        sha256=f"{n:064x}", sender=f"pat{n}@other.example", subject=f"Held {n}", received_at=NOW - n * MIN,
        source="pipe", size=100, outcome="held", reason="Not from a known contact.", security=security,
        created_at=NOW - n * MIN,
    )  # fmt: skip


def world(n: int, sam):
    """n organisations, each with: a P1 breached (and nobody answered it: waiting on staff), a P2 at
    risk, a P3 whose customer wrote after our reply (waiting), a P3 we answered last (not waiting), a pending escalation request, a
    held email, a window today and one tomorrow, and a claim filed this month."""
    for i in range(n):
        org = OrganisationFactory(name=f"Org {i}", slug=f"org-{i}")
        user = UserFactory(email=f"u{i}@org{i}.example", organisation=org, customer_role="admin")
        service = ServiceFactory(name=f"Backup {i}", slug=f"backup-{i}")
        contract = ContractFactory(organisation=org, reference=f"K-{i}", services=[service], contacts=[user])
        file(contract, user, "P1", NOW - 2 * 60 * MIN, f"Breached {i}")
        at_risk = file(contract, user, "P2", NOW - 190 * MIN, f"At risk {i}")
        reply(at_risk, sam, NOW - 180 * MIN)
        waiting = file(contract, user, "P3", NOW - 300 * MIN, f"Waiting {i}")
        reply(waiting, sam, NOW - 290 * MIN)
        reply(waiting, user, NOW - (280 - i) * MIN, "Still broken.")
        answered = file(contract, user, "P3", NOW - 100 * MIN, f"Answered {i}")
        reply(answered, sam, NOW - 90 * MIN)
        with time_machine.travel(NOW - 30 * MIN, tick=False):
            ticket_request_escalation(ticket=answered, user=user, reason="Please hurry.")
        held(i)
        for day in (0, 1):
            starts = datetime(2026, 11, 18 + day, 22, 0, tzinfo=UTC)
            window_publish(
                title=f"Window {i}/{day}", description="", services=[service], starts_at=starts,
                ends_at=starts + 60 * MIN,
            )  # fmt: skip
        gap_month(contract)
        close_month(month=OCT, now=NOW, contract_ids=[contract.pk])
        claim_submit(contract=contract, month=OCT, user=user)
    check_sla_deadlines(now=NOW)


def count_in_list(client, url: str) -> int:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.context["cl"].result_count


def test_each_number_opens_its_list_with_the_same_count(client, ayo, sam):
    world(2, sam)
    client.force_login(ayo)  # an account manager: every section
    response = client.get(DASHBOARD)
    board, links = response.context["board"], response.context["links"]
    numbers = {
        "breached": board.breached.count, "at_risk": board.at_risk.count, "waiting": board.waiting.count,
        "escalations": board.escalations.count, "held": board.held.count, "today": board.today.count,
        "month_claims": board.month_claims, "claims": board.claims.count,
    }  # fmt: skip
    # Org 0 and 1 each: a breached P1, a P2 at risk, a request, a held email, a window today
    # (tomorrow's is not), a claim; waiting on staff, the P3 the customer wrote on after our reply and
    # the P1 nobody answered. The answered P3 is neither waiting nor at risk.
    assert numbers == {**dict.fromkeys(NUMBERS, 2), "waiting": 4}
    html = response.content.decode()
    for name in NUMBERS:
        assert f'href="{links[name]}"'.replace("&", "&amp;") in html, name
        assert count_in_list(client, links[name]) == numbers[name], name
    # Waiting on staff: the longest waiting first (Org 0's customer wrote a minute before Org 1's).
    assert [r.subject for r in board.waiting.rows] == ["Waiting 0", "Waiting 1", "Breached 0", "Breached 1"]
    assert "Answered" not in section(html, "waiting")
    # How long each has waited, written as the queue's countdowns ("4 h 40 min", not "4 hours, 40 minutes").
    assert "4 h 40 min" in text(section(html, "waiting")) and "hours" not in text(section(html, "waiting"))
    # Escalation requests with their acknowledgement deadline in the contract's timezone.
    escalations = text(section(html, "escalations"))
    assert "Answered 0" in escalations and "(UTC+03:00)" in escalations


def test_todays_maintenance_is_the_staff_members_own_today(client, ayo, sam):
    world(1, sam)  # windows at 22:00 UTC today and tomorrow: 01:00 tomorrow and the day after in Nairobi
    ayo.timezone = "Africa/Nairobi"
    ayo.save(update_fields=["timezone"])
    client.force_login(ayo)
    response = client.get(DASHBOARD)
    board, links = response.context["board"], response.context["links"]
    assert (board.today.count, count_in_list(client, links["today"])) == (0, 0)
    assert "Scheduled windows overlapping today (Africa/Nairobi)." in response.content.decode()
    ayo.timezone = "America/Los_Angeles"  # 02:00 there: the first window is this afternoon
    ayo.save(update_fields=["timezone"])
    board = client.get(DASHBOARD).context["board"]
    assert [w.title for w in board.today.rows] == ["Window 0/0"]


def test_a_ticket_past_its_target_before_its_limit_is_counted_beside_those_at_risk(client, ayo, sam):
    world(1, sam)
    # Org 0's waiting P3 (a target and a limit): its target passed a minute ago, its limit ahead.
    Ticket.objects.filter(subject="Waiting 0").update(resolution_target_at=NOW - MIN, warned=True)
    client.force_login(ayo)
    response = client.get(DASHBOARD)
    board, links = response.context["board"], response.context["links"]
    assert (board.past_target, board.at_risk.count, board.breached.count) == (1, 1, 1)
    assert count_in_list(client, links["past_target"]) == 1
    assert "1 ticket past its resolution target" in section(response.content.decode(), "at-risk")


def test_vulnerability_reports_count_and_show_for_security_staff_only(client, sam, sol):
    with time_machine.travel(NOW - 3 * 24 * 60 * MIN, tick=False):
        security_report_submit(email="eve@research.example", name="Eve", summary="XSS in search", details="...")
    held(1, security=True)
    check_sla_deadlines(now=NOW)
    for person, seen in ((sam, 0), (sol, 1)):
        client.force_login(person)
        response = client.get(DASHBOARD)
        board, links = response.context["board"], response.context["links"]
        assert (board.breached.count, board.waiting.count) == (seen, seen)
        assert ("XSS in search" in section(response.content.decode(), "breached")) == bool(seen)
        for name, number in (("breached", board.breached.count), ("waiting", board.waiting.count)):
            assert count_in_list(client, links[name]) == number
    client.force_login(sam)
    assert client.get(DASHBOARD).context["board"].held.count == 0


@pytest.mark.parametrize("n", [1, 5])
def test_the_days_work_is_a_fixed_number_of_queries(client, ayo, sam, django_assert_num_queries, n):
    world(n, sam)
    client.force_login(ayo)
    # As tests/test_staff_dashboard.py counts (20), and two per section of the day's work (breached,
    # waiting, escalations, held, today), the month's claims' count and the tickets past their target:
    # 32 whatever n.
    with django_assert_num_queries(32):
        response = client.get(DASHBOARD)
    assert response.context["board"].waiting.count == 2 * n
