"""The customer dashboard: per organisation, each contract's uptime so far against its guarantee
and the credit the month would earn if it closed now; the open tickets with the working time left
to their next deadline, a live countdown and their escalation level; the maintenance to come; the
claims awaiting a decision and the months still open for one. Another organisation's data never
appears. Everything in a fixed number of queries, whatever the number of contracts, tickets,
windows and claims. Alice at Acme, Charlie at Globex; the clock frozen on Friday 11 December 2026,
16:00 in Nairobi."""

import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from html import unescape
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from contracts.maintenance.services import window_cancel, window_publish
from contracts.maintenance.sweep import maintenance_notices_send_due
from contracts.models import SLA, Outage
from contracts.selectors import Versions
from credits.closing import close_month
from credits.figures import month_so_far, months_so_far
from credits.models import Claim
from credits.selectors import claim_deadline
from credits.services import claim_reject, claim_submit, claim_window
from tickets.models import Ticket
from tickets.services import ticket_open, ticket_set_status

from .factories import ContractFactory, ServiceFactory

NBO = ZoneInfo("Africa/Nairobi")
STO = ZoneInfo("Europe/Stockholm")
NOW = datetime(2026, 12, 11, 16, 0, tzinfo=NBO)  # a Friday
DEC_1 = datetime(2026, 12, 1, 0, 0, tzinfo=NBO)
SEP, NOV = date(2026, 9, 1), date(2026, 11, 1)
DASHBOARD = reverse("dashboard")
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def text_of(response) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def section(response, heading_id: str) -> str:
    """The text of the dashboard's <section aria-labelledby=heading_id>."""
    html = response.content.decode()
    start = html.index(f'<section aria-labelledby="{heading_id}">')
    end = html.index("</section>", start)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html[start:end])).split())


def outage(services, start: datetime, minutes: int, title="Storage down") -> Outage:
    o = Outage.objects.create(title=title, starts_at=start, ends_at=start + timedelta(minutes=minutes))
    o.services.set(services)
    return o


def kept_window(services, start: datetime, hours: int = 1, title="Storage firmware"):
    """A downtime window published on 1 December whose notice went out on time (48 h ahead)."""
    window = window_publish(
        title=title, description="", services=services, starts_at=start, ends_at=start + timedelta(hours=hours),
        now=DEC_1,
    )  # fmt: skip
    maintenance_notices_send_due(now=window.notice_due_at)
    return window


def upcoming_window(services, days: int, title: str):
    """A window `days` from now, 23:00-01:00 Nairobi (off-peak), published now."""
    start = (NOW + timedelta(days=days)).replace(hour=23)
    return window_publish(
        title=title, description="", services=services, starts_at=start, ends_at=start + timedelta(hours=2), now=NOW
    )


def file(contract, user, priority="P1", subject="Backups fail"):
    return ticket_open(
        user=user, contract=contract, service=contract.services.first(), priority=priority, subject=subject,
        description="Nothing backs up.", now=NOW,
    )  # fmt: skip


def claim_for(contract, user, month: date, submitted: datetime) -> Claim:
    """A claim filed within the month's window (closing the month on demand, as the portal does)."""
    return claim_submit(contract=contract, month=month, user=user, now=submitted)


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def klart(globex, charlie):
    return ContractFactory(
        organisation=globex, sla=SLA.objects.get(template_key="klart-ai"), reference="KLA-0002",
        name="Klart AI for Globex", currency="SEK", contacts=[charlie],
        services=[ServiceFactory(name="AI Assistant", slug="ai-assistant")],
    )  # fmt: skip


# --- Contracts: this month so far ---------------------------------------------------------------
@pytest.fixture
def three_contracts(acme, alice, acme_contract):
    """Acme this December: KAL-0001 600 min down (98.656% of the month: the 10% tier, KES 15,000.00);
    KAL-0002 none (100%); KAL-0003 120 min down (99.731%: below 99.8%, in the gap of Kaluari's table)."""
    quiet = ContractFactory(
        organisation=acme, reference="KAL-0002", name="Archive for Acme",
        services=[ServiceFactory(name="Archive", slug="archive")],
    )  # fmt: skip
    gap = ContractFactory(
        organisation=acme, reference="KAL-0003", name="Mail backup for Acme",
        services=[ServiceFactory(name="Mail Backup", slug="mail-backup")],
    )  # fmt: skip
    outage(acme_contract.services.all(), datetime(2026, 12, 3, 8, 0, tzinfo=NBO), 600)
    outage(gap.services.all(), datetime(2026, 12, 4, 10, 0, tzinfo=NBO), 120)
    return acme_contract, quiet, gap


def test_each_contract_shows_its_uptime_so_far_against_the_guarantee_and_the_credit_it_would_earn(
    client, alice, three_contracts, frozen
):
    bad, quiet, gap = three_contracts
    client.force_login(alice)
    response = client.get(DASHBOARD)
    assert response.status_code == 200
    cards = {c.contract.reference: c for c in response.context["board"].contracts}
    assert [c.state for c in cards.values()] == ["below", "met", "below"]
    f = cards["KAL-0001"].figures
    # 1 to 11 December 16:00 in Nairobi: 15,360 minutes have passed, 600 of them down; if nothing
    # more goes down, December's 44,640 minutes make 98.656%.
    assert (f.elapsed_minutes, f.down_minutes, f.total_minutes) == (15360, 600, 44640)
    assert f.uptime_percent == Decimal("98.65591398")
    assert (f.tier_percent, f.credit_amount) == (Decimal("10"), Decimal("15000.00"))

    text = section(response, "contracts-h")
    assert (
        "Below the guarantee 98.656% uptime for December if nothing more goes down, against a guarantee of "
        "99.8% 98.656% So far 600 min down; 15,360 of the month's 44,640 min have passed. "
        "If the month closed now: KES 15,000.00 (10.0% of the invoice, refund of the month's invoice)."
    ) in text
    assert "Meets the guarantee 100.000% uptime for December" in text
    assert "No credit: above the guarantee." in text
    assert "Below the guarantee 99.731% uptime" in text
    assert "No credit tier: below the guarantee, but in a gap of the credit table." in text
    html = response.content.decode()
    # The state is said in words and a symbol; the colour of the card only repeats it.
    assert html.count('class="card contract-card contract-below"') == 2
    assert html.count('class="card contract-card contract-met"') == 1
    assert '<meter class="uptime-meter" min="98" max="100" low="99.800" optimum="100" value="98.65591398"' in html
    for c in three_contracts:
        assert f'href="{reverse("contract-uptime", args=[c.pk])}"' in html
        assert f'href="{reverse("ticket-new")}?contract={c.pk}"' in html


def test_a_contract_that_has_not_started_shows_no_figures(client, acme, alice, frozen):
    ContractFactory(organisation=acme, reference="KAL-0009", name="Next year's backup", starts_on=date(2027, 2, 1))
    client.force_login(alice)
    response = client.get(DASHBOARD)
    assert response.context["board"].contracts[0].figures is None
    assert "The contract starts on 1 February 2027." in section(response, "contracts-h")


@pytest.mark.parametrize(
    "now",
    [
        NOW,
        # New Year in Nairobi, still 31 December in Stockholm: the contracts are in different months.
        datetime(2027, 1, 1, 0, 30, tzinfo=NBO),
    ],
)
def test_months_so_far_gives_month_so_fars_figures_for_many_contracts_at_once(three_contracts, klart, now):
    """The batched read is the per-contract one, contract by contract: outages (one ongoing),
    maintenance kept and broken, two timezones."""
    bad, quiet, gap = three_contracts
    kept_window(bad.services.all(), datetime(2026, 12, 5, 23, 0, tzinfo=NBO), hours=2)
    # Never announced: all of it counts as downtime.
    window_publish(
        title="Unannounced", description="", services=quiet.services.all(),
        starts_at=datetime(2026, 12, 10, 1, 0, tzinfo=NBO), ends_at=datetime(2026, 12, 10, 1, 45, tzinfo=NBO),
        now=datetime(2026, 12, 10, 0, 55, tzinfo=NBO),
    )  # fmt: skip
    Outage.objects.create(title="Still down", starts_at=datetime(2026, 12, 31, 20, 0, tzinfo=STO)).services.set(
        klart.services.all()
    )
    contracts = [
        type(c).objects.prefetch_related("services").get(pk=c.pk) for c in (bad, quiet, gap, klart)
    ]  # fmt: skip
    with time_machine.travel(now, tick=False):
        one_by_one = {c.pk: month_so_far(contract=c, now=now) for c in contracts}
        batched = months_so_far(contracts=contracts, now=now)
    assert batched == one_by_one
    if now == NOW:
        assert batched[bad.pk].excluded_minutes == 120 and batched[quiet.pk].down_minutes == 45
        assert batched[klart.pk].lines == ()  # its outage starts on 31 December
    else:
        assert batched[bad.pk].month == date(2027, 1, 1) and batched[klart.pk].month == date(2026, 12, 1)
        # Down since 20:00 in Stockholm, and it is 22:30 there.
        assert batched[klart.pk].lines[0].ongoing is True and batched[klart.pk].down_minutes == 150


# --- Open tickets -------------------------------------------------------------------------------
def test_open_tickets_show_the_working_time_left_a_live_countdown_and_the_escalation_level(
    client, alice, sam, acme_contract, frozen
):
    p1 = file(acme_contract, alice, "P1", "Agent crashes")
    p3 = file(acme_contract, alice, "P3", "Restores are slow")
    waiting = file(acme_contract, alice, "P4", "Which port?")
    ticket_set_status(ticket=waiting, actor=sam, status="waiting", now=NOW)
    done = file(acme_contract, alice, "P2", "Old question")
    ticket_set_status(ticket=done, actor=sam, status="resolved", now=NOW)
    Ticket.objects.filter(pk=p3.pk).update(escalation_level=2)
    client.force_login(alice)
    response = client.get(DASHBOARD)
    rows = response.context["board"].tickets
    assert [r.ticket for r in rows] == [p1, p3, waiting]  # nearest deadline first; resolved ones are not open
    text = section(response, "open-tickets-h")
    assert "3 open tickets, nearest deadline first." in text
    # P1: 15 minutes to the first response, 24x7.
    assert f"{p1.number} Agent crashes Cloud Backup for Acme · P1 (P1 – production incident)" in text
    assert "15 min Due 2026-12-11 16:15 (UTC+03:00) · in 15 min 0 s" in text
    assert "Level 1: Email support with a description of the issue support@kaluari.com" in text
    # P3: 4 business hours; Friday 16:00-17:00, then Monday 08:00-11:00.
    assert "4 h Due 2026-12-14 11:00 (UTC+03:00) · in 2 d 19 h 0 min" in text
    assert "Level 2: Call the support line +254 728 999 222" in text
    assert "Paused: waiting on your reply Reply on the ticket: we are waiting for you" in text  # not "email support"
    assert "Old question" not in text
    html = response.content.decode()
    assert '<time class="countdown" datetime="2026-12-11T13:15:00+00:00" data-countdown>' in html
    assert '<script src="/static/js/countdown.js" defer></script>' in html
    assert f'href="{reverse("ticket-detail", args=[p1.pk])}"' in html


def test_a_ticket_late_on_every_deadline_says_since_when_not_a_dash(client, alice, acme_contract, frozen):
    p1 = file(acme_contract, alice, "P1", "Agent crashes")  # first response due 16:15, 24x7
    frozen.move_to(NOW + timedelta(days=3))
    client.force_login(alice)
    text = section(client.get(DASHBOARD), "open-tickets-h")
    assert "Breached Overdue Was due 2026-12-11 16:15 (UTC+03:00) · passed 2 d 23 h 45 min ago" in text
    listed = text_of(client.get(reverse("ticket-list")))
    assert "Overdue passed 2 d 23 h 45 min ago" in listed
    page = text_of(client.get(reverse("ticket-detail", args=[p1.pk])))
    assert "Working time left None: every deadline has passed" in page  # each named above it, with its moment


def test_only_the_ten_nearest_deadlines_are_listed(client, alice, acme_contract, frozen):
    for i in range(12):
        file(acme_contract, alice, "P4" if i else "P1", f"Ticket {i}")
    client.force_login(alice)
    response = client.get(DASHBOARD)
    board = response.context["board"]
    assert (len(board.tickets), board.open_count, board.tickets[0].ticket.subject) == (10, 12, "Ticket 0")
    assert "The 10 with the nearest deadlines of 12 open tickets" in section(response, "open-tickets-h")


def test_a_klart_ticket_shows_stockholm_time(client, charlie, klart, frozen):
    file(klart, charlie, None, "Answers are wrong")
    client.force_login(charlie)
    text = section(client.get(DASHBOARD), "open-tickets-h")
    # Filed at 14:00 in Stockholm: 4 working hours to acknowledge, 3 of them left on Friday.
    assert "(UTC+01:00)" in text and "(UTC+03:00)" not in text


# --- Maintenance --------------------------------------------------------------------------------
def test_upcoming_maintenance_of_the_organisations_services_for_the_next_fourteen_days(
    client, alice, acme_contract, klart, frozen
):
    services = acme_contract.services.all()
    upcoming_window(services, 7, "Storage upgrade")
    upcoming_window(services, 3, "Network switch")
    cancelled = upcoming_window(services, 5, "Called off")
    window_cancel(window=cancelled, now=NOW)
    upcoming_window(services, 20, "Datacentre move")
    upcoming_window(klart.services.all(), 2, "Model upgrade")  # Globex's service only
    client.force_login(alice)
    response = client.get(DASHBOARD)
    text = section(response, "maintenance-h")
    assert [v.window.title for v in response.context["board"].maintenance] == ["Network switch", "Storage upgrade"]
    assert (
        "Storage upgrade 2026-12-18 23:00 (UTC+03:00) – 2026-12-19 01:00 (UTC+03:00) Cloud Backup · "
        "Downtime (services unavailable) "
        "KAL-0001: Keeps every rule: nothing counted as downtime"
    ) in text
    assert "1 more window scheduled later." in text
    assert "Called off" not in text and "Model upgrade" not in text and "Datacentre move" not in text
    assert f'href="{reverse("maintenance-list")}"' in response.content.decode()


def test_with_nothing_in_fourteen_days_the_next_window_is_named(client, alice, acme_contract, frozen):
    upcoming_window(acme_contract.services.all(), 20, "Datacentre move")
    client.force_login(alice)
    text = section(client.get(DASHBOARD), "maintenance-h")
    assert "No maintenance in the next 14 days. The next: Datacentre move, from 2026-12-31 23:00 (UTC+03:00)." in text


# --- Claims -------------------------------------------------------------------------------------
def test_claims_awaiting_a_decision_and_months_that_can_still_be_claimed(client, alice, sam, acme_contract, frozen):
    outage(acme_contract.services.all(), datetime(2026, 11, 10, 2, 0, tzinfo=NBO), 500)  # 98.843%: KES 15,000.00
    close_month(month=NOV, now=datetime(2026, 12, 1, 1, 0, tzinfo=NBO))
    waiting = claim_for(acme_contract, alice, SEP, datetime(2026, 10, 5, 9, 0, tzinfo=NBO))
    rejected = claim_for(acme_contract, alice, date(2026, 8, 1), datetime(2026, 9, 3, 9, 0, tzinfo=NBO))
    claim_reject(claim=rejected, actor=sam, reason="No outage that month.", now=datetime(2026, 9, 4, tzinfo=NBO))
    client.force_login(alice)
    response = client.get(DASHBOARD)
    text = section(response, "credits-h")
    assert (
        "Months you can still claim Cloud Backup for Acme, November 2026 Credit due "
        "98.843% uptime against 99.8%: KES 15,000.00 (10.0% of the invoice). "
        "Claims close 2026-12-31 00:00 (UTC+03:00). File a claim for November 2026 on Cloud Backup for Acme"
    ) in text
    assert f"Claim {waiting.pk}: Cloud Backup for Acme, September 2026 Awaiting review" in text
    assert "filed 2026-10-05 09:00 (UTC+03:00)" in text
    assert f"Claim {rejected.pk}" not in text
    html = response.content.decode()
    assert f'href="{reverse("claim-new")}?contract={acme_contract.pk}&amp;month=2026-11"' in html
    assert f'href="{reverse("claim-detail", args=[waiting.pk])}"' in html
    # The deadline shown is the one the claim is judged by.
    _, closes, _ = claim_window(contract=acme_contract, month=NOV, now=NOW)
    assert response.context["board"].claimable[0].closes == closes
    # The claims page gives each month the same figures and deadline (credits.selectors.claimable_with_figures).
    claims_page = text_of(client.get(reverse("claim-list")))
    assert (
        "Months you can still claim for: November 2026 (Cloud Backup for Acme) : 98.843% uptime against 99.8%: KES 15,000.00 "
        "(10.0% of the invoice). Claims close 2026-12-31 00:00 (UTC+03:00)."
    ) in claims_page


def test_a_claimed_month_is_no_longer_offered(client, alice, acme_contract, frozen):
    claim_for(acme_contract, alice, NOV, datetime(2026, 12, 2, 9, 0, tzinfo=NBO))
    client.force_login(alice)
    text = section(client.get(DASHBOARD), "credits-h")
    assert "No month is open for a claim right now." in text
    assert "November 2026 Awaiting review" in text


def test_claim_deadline_is_the_claim_windows(acme_contract):
    versions = Versions([acme_contract.sla_id])
    for month in (date(2026, 2, 1), date(2026, 10, 1), date(2026, 12, 1)):
        _, closes, version = claim_window(contract=acme_contract, month=month, now=NOW)
        assert claim_deadline(version=versions.at(acme_contract.sla_id, NOW), month=month) == closes


# --- One organisation only ----------------------------------------------------------------------
def test_another_organisations_data_never_appears(client, alice, charlie, acme_contract, klart, sam, frozen):
    file(klart, charlie, None, "Globex secret ticket")
    upcoming_window(klart.services.all(), 2, "Globex model upgrade")
    outage(klart.services.all(), datetime(2026, 10, 10, 2, 0, tzinfo=NBO), 600)
    claim_for(klart, charlie, date(2026, 10, 1), datetime(2026, 11, 5, 9, 0, tzinfo=NBO))
    client.force_login(alice)
    response = client.get(DASHBOARD)
    text = text_of(response)
    for secret in ("Klart AI for Globex", "KLA-0002", "Globex secret ticket", "Globex model upgrade", "SEK"):
        assert secret not in text
    board = response.context["board"]
    assert [c.contract for c in board.contracts] == [acme_contract]
    assert board.tickets == [] and board.pending_claims == [] and board.maintenance == []


def test_an_organisation_without_contracts(client, acme, alice, frozen):
    client.force_login(alice)
    response = client.get(DASHBOARD)
    assert response.status_code == 200
    text = text_of(response)
    assert "Your organisation has no contracts yet." in text and "No open tickets." in text
    assert "No maintenance in the next 14 days." in text and "No claim is awaiting a decision." in text


def test_staff_are_sent_to_the_admin(client, sam):
    client.force_login(sam)
    assert client.get(DASHBOARD).url == reverse("admin:index")


# --- A fixed number of queries ------------------------------------------------------------------
def organisation_with(org, user, *, contracts: int, tickets: int, windows: int, claims: int):
    """An organisation's contracts, each with its own service: outages this month, a downtime window
    earlier this month that kept the rules, open tickets spread over the contracts, windows to come
    (one beyond 14 days), claims awaiting review for September, November closed and claimable."""
    made = []
    for i in range(contracts):
        service = ServiceFactory(name=f"{org.slug} service {i}", slug=f"{org.slug}-service-{i}")
        made.append(
            ContractFactory(
                organisation=org,
                reference=f"{org.slug.upper()}-{i}",
                name=f"{org.name} contract {i}",
                services=[service],
                contacts=[user],
            )  # fmt: skip
        )
    for i, c in enumerate(made):
        outage(c.services.all(), datetime(2026, 12, 2 + i, 10, 0, tzinfo=NBO), 30 * (i + 1))
        kept_window(c.services.all(), datetime(2026, 12, 6, 1, 0, tzinfo=NBO))
    for i in range(tickets):
        c = made[i % len(made)]
        file(c, user, ("P1", "P2", "P3", "P4")[i % 4], f"Ticket {i}")
    for i in range(windows):
        upcoming_window(made[i % len(made)].services.all(), 2 + 4 * i, f"Window {i}")
    close_month(month=NOV, now=datetime(2026, 12, 1, 1, 0, tzinfo=NBO))
    for i in range(claims):
        claim_for(made[i % len(made)], user, SEP, datetime(2026, 10, 5, 9, 0, tzinfo=NBO))
    return made


def test_the_dashboard_takes_a_fixed_number_of_queries_whatever_its_size(
    client, acme, globex, alice, charlie, django_assert_num_queries, frozen
):
    organisation_with(acme, alice, contracts=1, tickets=2, windows=1, claims=1)
    organisation_with(globex, charlie, contracts=4, tickets=30, windows=5, claims=3)
    boards = {}
    for user in (alice, charlie):
        client.force_login(user)
        with django_assert_num_queries(QUERIES):
            response = client.get(DASHBOARD)
        boards[user.email] = response.context["board"]
    small, big = boards["alice@acme.example"], boards["charlie@globex.example"]
    assert (len(small.contracts), small.open_count, len(small.maintenance), len(small.pending_claims)) == (1, 2, 1, 1)
    assert (len(big.contracts), big.open_count, len(big.maintenance), len(big.pending_claims)) == (4, 30, 3, 3)
    assert (len(big.tickets), big.maintenance_later, len(big.claimable)) == (10, 2, 4)
    assert all(card.figures and card.figures.excluded_minutes == 60 for card in big.contracts)


QUERIES = 29  # the tickets' pauses are no longer read; one for the open incidents of the banner
