"""The SLA compliance report (/admin/compliance/?month=YYYY-MM): per contract, the month's closed
figures (or "not closed yet"), the claim on it and its tickets' attainment by priority; filters by
organisation and SLA, pages, one contract's detail, and a CSV of exactly the rows on the page
(guarded against formula injection). Bad input is a form error, never a 500; staff only; a fixed
number of queries whatever the number of contracts. Frozen clocks: 18 November 2026, 10:00 UTC."""

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from html import unescape

import pytest
import time_machine
from django.urls import reverse

from contracts.models import SLA, Outage
from credits import compliance
from credits.closing import close_month
from credits.compliance import COLUMNS, csv_lines
from credits.services import claim_submit
from tickets.models import Ticket
from tickets.services import ticket_exclude, ticket_open, ticket_reply, ticket_set_status

from .factories import ContractFactory, OrganisationFactory, ServiceFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
OCT = date(2026, 10, 1)
MIN = timedelta(minutes=1)
REPORT = reverse("admin:compliance")
EXPORT = reverse("admin:compliance_export")


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def staff_client(client, lena):
    client.force_login(lena)
    return client


def text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def contract_rows(html: str) -> dict[str, list[str]]:
    """Each contract's group of rows on the page, as text, in page order."""
    groups = re.findall(r'<tbody class="compliance-contract" data-contract="([^"]+)">(.*?)</tbody>', html, re.S)
    return {ref: [text(r) for r in re.findall(r"<tr.*?</tr>", body, re.S)] for ref, body in groups}


def parse_csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def file(contract, user, priority, when, subject="Backups fail"):
    with time_machine.travel(when, tick=False):
        return ticket_open(
            user=user, contract=contract, service=contract.services.get(), priority=priority,
            subject=subject, description="Nothing backs up.",
        )  # fmt: skip


def at(day, hour, minute=0):
    return datetime(2026, 10, day, hour, minute, tzinfo=UTC)


def october_tickets(contract, user, sam):
    """Kaluari: P1 answers within 15 min and resolves within 1 h; P2 within 1 h and 4 h (24x7)."""
    kept = file(contract, user, "P1", at(5, 9))
    ticket_reply(ticket=kept, author=sam, body="On it.", now=at(5, 9, 5))
    ticket_set_status(ticket=kept, actor=sam, status=Ticket.Status.RESOLVED, now=at(5, 9, 30))
    file(contract, user, "P1", at(6, 9))  # never answered: response missed, resolution breached
    late = file(contract, user, "P2", at(7, 9))
    ticket_reply(ticket=late, author=sam, body="Sorry for the wait.", now=at(7, 10, 30))  # 30 min late
    ticket_set_status(ticket=late, actor=sam, status=Ticket.Status.RESOLVED, now=at(7, 11))
    excluded = file(contract, user, "P1", at(8, 9))
    cause = excluded.sla_version.exclusion_causes[0]
    ticket_exclude(ticket=excluded, actor=sam, cause=cause, reason="Customer changed the agent", now=at(8, 9, 1))
    file(contract, user, "P1", datetime(2026, 11, 2, 9, 0, tzinfo=UTC))  # November: not in October's report


def down(contract, minutes):
    start = datetime(2026, 10, 10, 2, 0, tzinfo=UTC)
    outage = Outage.objects.create(title="Storage down", starts_at=start, ends_at=start + minutes * MIN)
    outage.services.set([contract.services.get()])


@pytest.fixture
def october(acme_contract, globex_contract, alice, sam):
    """Acme: 500 minutes down in October (98.880%, the 10% tier: KES 15,000.00), closed and claimed,
    with four tickets. Globex's October is not closed yet."""
    october_tickets(acme_contract, alice, sam)
    down(acme_contract, 500)
    close_month(month=OCT, now=NOW, contract_ids=[acme_contract.pk])
    claim_submit(contract=acme_contract, month=OCT, user=alice, note="October")
    return acme_contract


# --- The page -------------------------------------------------------------------------------------
def test_attainment_by_priority_uptime_credit_and_claim_per_contract(staff_client, october, globex_contract):
    response = staff_client.get(REPORT, {"month": "2026-10"})
    assert response.status_code == 200
    html = response.content.decode()
    rows = contract_rows(html)
    assert list(rows) == ["KAL-0001", "KLA-0001"]  # by organisation: Acme, Globex
    claim = october.claims.get()
    p1, p2, total = rows["KAL-0001"]
    satisfaction = "— 0 good · 0 bad of 1 resolved"  # none rated (tests/test_satisfaction.py rates)
    assert p1 == (
        f"KAL-0001 Acme Savings Kaluari Cloud Backup SLA 98.880% guarantee 99.8% 500 0 excluded KES 15,000.00 10.0% tier "
        f"#{claim.pk} Awaiting review eligible KES 15,000.00 P1 3 (1 excluded) 50.0% 1 met · 1 missed 50.0% 1 met · 1 missed "
        f"50.0% 1 met · 1 breached {satisfaction}"
    )
    assert p2 == f"P2 1 0.0% 0 met · 1 missed 100.0% 1 met · 0 missed 100.0% 1 met · 0 breached {satisfaction}"
    assert total == (
        "All 4 (1 excluded) 33.33% 1 met · 2 missed 66.67% 2 met · 1 missed 66.67% 2 met · 1 breached "
        "— 0 good · 0 bad of 2 resolved"
    )
    # Globex's October has not been closed: no figures are computed for the list; no tickets.
    (globex,) = rows["KLA-0001"]
    assert "Not closed yet" in globex and "All 0 — 0 met · 0 missed" in globex
    # Each contract links to its detail for that month.
    detail = reverse("admin:compliance_contract", args=[october.pk]) + "?month=2026-10"
    assert f'href="{detail}"' in html
    # The claim is named; a lead, who may not open claims, is not linked to it (an account manager is).
    assert f"#{claim.pk}" in html and reverse("admin:credits_claim_change", args=[claim.pk]) not in html


def test_last_month_by_default_and_the_live_month_is_not_closed_yet(staff_client, october):
    response = staff_client.get(REPORT)
    assert response.context["report"].month == OCT
    assert 'value="2026-10"' in response.content.decode()  # the month picker shows it
    live = staff_client.get(REPORT, {"month": "2026-11"}).content.decode()
    p1, total = contract_rows(live)["KAL-0001"]
    assert "Not closed yet (guarantee 99.8%)" in p1 and " P1 1 " in p1  # November's ticket
    assert total.startswith("All 1 ")
    assert 'type="month"' in live


def test_a_reopened_month_says_so(staff_client, october, sam):
    from credits.models import MonthlyUptime
    from credits.services import month_reopen

    month_reopen(monthly_uptime=MonthlyUptime.objects.get(contract=october), actor=sam, reason="Outage corrected")
    html = staff_client.get(REPORT, {"month": "2026-10"}).content.decode()
    assert "reopened" in contract_rows(html)["KAL-0001"][0]


def test_the_organisation_and_sla_filters(staff_client, october, globex_contract, acme, globex):
    html = staff_client.get(REPORT, {"month": "2026-10", "organisation": globex.pk}).content.decode()
    assert list(contract_rows(html)) == ["KLA-0001"]
    html = staff_client.get(REPORT, {"month": "2026-10", "organisation": acme.pk}).content.decode()
    assert list(contract_rows(html)) == ["KAL-0001"]
    klart = SLA.objects.get(template_key="klart-ai")
    html = staff_client.get(REPORT, {"month": "2026-10", "sla": klart.pk}).content.decode()
    assert list(contract_rows(html)) == []
    assert "No contract ran in October 2026 with these filters." in html
    kaluari = SLA.objects.get(template_key="kaluari-cloud-backup")
    html = staff_client.get(REPORT, {"month": "2026-10", "sla": kaluari.pk}).content.decode()
    assert list(contract_rows(html)) == ["KAL-0001", "KLA-0001"]


def test_contracts_that_did_not_run_in_the_month_are_left_out(staff_client, acme):
    ContractFactory(organisation=acme, reference="KAL-LATE", starts_on=date(2026, 11, 1))
    ContractFactory(organisation=acme, reference="KAL-DONE", starts_on=date(2026, 1, 1), ends_on=date(2026, 9, 30))
    ContractFactory(organisation=acme, reference="KAL-ON", starts_on=date(2026, 10, 31))
    html = staff_client.get(REPORT, {"month": "2026-10"}).content.decode()
    assert list(contract_rows(html)) == ["KAL-ON"]


def test_paginated_with_the_filters_kept(staff_client, monkeypatch, acme):
    monkeypatch.setattr(compliance, "PAGE_SIZE", 2)
    for i in range(5):
        ContractFactory(organisation=acme, reference=f"KAL-{i:04d}")
    first = staff_client.get(REPORT, {"month": "2026-10", "organisation": acme.pk}).content.decode()
    assert list(contract_rows(first)) == ["KAL-0000", "KAL-0001"]
    assert "Page 1 of 3 (5 contracts)" in text(first)
    assert f'href="?month=2026-10&amp;organisation={acme.pk}&amp;page=2"' in first
    last = staff_client.get(REPORT, {"month": "2026-10", "organisation": acme.pk, "page": "3"}).content.decode()
    assert list(contract_rows(last)) == ["KAL-0004"]
    # A page that is not there is the nearest one, never an error.
    assert list(contract_rows(staff_client.get(REPORT, {"month": "2026-10", "page": "x"}).content.decode())) == [
        "KAL-0000", "KAL-0001",
    ]  # fmt: skip


# --- CSV --------------------------------------------------------------------------------------------
def test_the_csv_rows_are_the_pages_rows(staff_client, october, globex_contract):
    page = staff_client.get(REPORT, {"month": "2026-10"})
    link = unescape(re.search(r'<a href="([^"]+)" class="compliance-export">', page.content.decode())[1])
    assert link == f"{EXPORT}?month=2026-10"
    response = staff_client.get(link)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="sla-compliance-2026-10-' in response["Content-Disposition"]
    header, *lines = parse_csv(response)
    assert header == COLUMNS
    # Exactly the rows on the page, line for line (one per attainment row shown).
    shown = [
        [("" if v is None else compliance_cell(v)) for v in line] for line in csv_lines(page.context["report"].rows)
    ]
    assert lines == shown
    by = [dict(zip(header, line, strict=True)) for line in lines]
    assert [(r["contract_reference"], r["priority"]) for r in by] == [
        ("KAL-0001", "P1"), ("KAL-0001", "P2"), ("KAL-0001", "all"), ("KLA-0001", "all"),
    ]  # fmt: skip
    p1 = by[0]
    assert (p1["organisation"], p1["month"], p1["month_state"], p1["uptime_percent"]) == (
        "Acme Savings", "2026-10", "closed", "98.87992832",
    )  # fmt: skip
    assert (p1["down_minutes"], p1["tier_percent"], p1["credit_amount"], p1["currency"]) == (
        "500",
        "10",
        "15000.00",
        "KES",
    )
    # Nobody decided the claim yet: its eligible figure, no amount (a sum of claim_amount is money approved).
    assert (p1["claim_status"], p1["claim_eligible_amount"], p1["claim_amount"]) == ("submitted", "15000.00", "")
    assert (p1["tickets_filed"], p1["tickets_excluded"], p1["response_met"], p1["response_missed"]) == (
        "3",
        "1",
        "1",
        "1",
    )
    assert (p1["response_rate"], p1["resolution_rate"], p1["limit_rate"]) == ("50", "50", "50")
    assert (by[2]["response_rate"], by[2]["resolution_rate"]) == ("33.33", "66.67")
    globex = by[3]
    assert (globex["month_state"], globex["uptime_percent"], globex["tickets_filed"], globex["response_rate"]) == (
        "not_closed", "", "0", "",
    )  # fmt: skip


def compliance_cell(value):
    from credits.exports import cell

    return cell(value)


def test_the_csv_holds_every_contract_a_chunk_at_a_time(staff_client, monkeypatch, acme, globex):
    monkeypatch.setattr(compliance, "CSV_CHUNK", 2)
    for i in range(3):
        ContractFactory(organisation=acme, reference=f"KAL-{i:04d}")
        ContractFactory(organisation=globex, reference=f"KLA-{i:04d}")
    lines = parse_csv(staff_client.get(EXPORT, {"month": "2026-10"}))[1:]
    assert [line[1] for line in lines] == [f"KAL-{i:04d}" for i in range(3)] + [f"KLA-{i:04d}" for i in range(3)]


def test_the_csv_follows_the_filters(staff_client, october, globex_contract, globex):
    lines = parse_csv(staff_client.get(EXPORT, {"month": "2026-10", "organisation": globex.pk}))[1:]
    assert [line[1] for line in lines] == ["KLA-0001"]


def test_the_csv_is_guarded_against_formula_injection(staff_client, sam):
    org = OrganisationFactory(name='=HYPERLINK("http://evil.example")', slug="evil")
    user = UserFactory(email="eve@evil.example", organisation=org)
    ContractFactory(organisation=org, reference="+EVIL", name="@SUM(A1)", contacts=[user])
    header, line = parse_csv(staff_client.get(EXPORT, {"month": "2026-10"}))
    row = dict(zip(header, line, strict=True))
    assert row["organisation"] == '\'=HYPERLINK("http://evil.example")'
    assert (row["contract_reference"], row["contract_name"]) == ("'+EVIL", "'@SUM(A1)")


# --- Bad input --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "query, error",
    [
        ({"month": "2026-13"}, "Enter the month as YYYY-MM, e.g. 2026-10."),
        ({"month": "October"}, "Enter the month as YYYY-MM, e.g. 2026-10."),
        ({"month": "0000-01"}, "Enter the month as YYYY-MM, e.g. 2026-10."),
        ({"month": "2027-03"}, "March 2027 has not started yet: choose 2026-11 or an earlier month."),
        ({"month": "2026-10", "organisation": "abc"}, "Select a valid choice."),
        ({"month": "2026-10", "organisation": "99999999999999999999999"}, "Select a valid choice."),
        ({"month": "2026-10", "sla": "-1"}, "Select a valid choice."),
    ],
)
@pytest.mark.parametrize("url", [REPORT, EXPORT])
def test_bad_input_is_a_clear_form_error_never_a_500(staff_client, acme_contract, url, query, error):
    response = staff_client.get(url, query)
    assert response.status_code == 400
    html = response.content.decode()
    assert error in text(html)
    assert 'class="errorlist"' in html and "compliance-table" not in html


def test_bad_input_on_a_contracts_detail_is_a_form_error_too(staff_client, acme_contract):
    url = reverse("admin:compliance_contract", args=[acme_contract.pk])
    response = staff_client.get(url, {"month": "2026-1"})
    assert response.status_code == 400 and "Enter the month as YYYY-MM" in response.content.decode()
    assert staff_client.get(reverse("admin:compliance_contract", args=[987654])).status_code == 404
    # A month the contract did not run in: said so, not an error.
    response = staff_client.get(url, {"month": "2025-06"})
    assert response.status_code == 200 and "The contract had not started in June 2025." in response.content.decode()


# --- One contract's detail ---------------------------------------------------------------------------
def test_a_contracts_detail_has_the_closed_month_with_its_breakdown(staff_client, october):
    url = reverse("admin:compliance_contract", args=[october.pk])
    html = text(staff_client.get(url, {"month": "2026-10"}).content.decode())
    assert "Uptime 98.880% against 99.8%" in html and "Downtime 500 minutes" in html
    assert "Credit 10.0% tier: KES 15,000.00" in html
    assert "Storage down 2026-10-10 05:00 (UTC+03:00) – 2026-10-10 13:20 (UTC+03:00) Unplanned outage 500 0" in html
    assert "P1 3 (1 excluded) 50.0% 1 met · 1 missed" in html


def test_a_contracts_detail_computes_the_live_month(staff_client, acme_contract):
    start = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)
    outage = Outage.objects.create(title="Agent crash", starts_at=start, ends_at=start + 30 * MIN)
    outage.services.set([acme_contract.services.get()])
    url = reverse("admin:compliance_contract", args=[acme_contract.pk])
    html = text(staff_client.get(url, {"month": "2026-11"}).content.decode())
    assert "This month so far (as of 2026-11-18 13:00 (UTC+03:00)): not closed yet" in html
    assert "Downtime 30 minutes" in html and "Agent crash" in html


# --- Who sees it --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["admin:compliance", "admin:compliance_export"])
def test_staff_only_a_customer_is_refused_as_every_admin_page_refuses(client, alice, name):
    client.force_login(alice)
    response = client.get(reverse(name), {"month": "2026-10"})
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


# --- A fixed number of queries ---------------------------------------------------------------------
def contracts(n, sam):
    for i in range(n):
        org = OrganisationFactory(name=f"Org {i:02d}", slug=f"org-{i}")
        user = UserFactory(email=f"u{i}@org{i}.example", organisation=org)
        contract = ContractFactory(
            organisation=org, reference=f"K-{i:02d}", services=[ServiceFactory(name=f"S {i}", slug=f"s-{i}")]
        )
        october_tickets(contract, user, sam)
        down(contract, 100 + i)
        if i % 2 == 0:
            close_month(month=OCT, now=NOW, contract_ids=[contract.pk])
            claim_submit(contract=contract, month=OCT, user=user)


@pytest.mark.parametrize("n", [1, 7])
def test_a_fixed_number_of_queries_whatever_the_number_of_contracts(staff_client, sam, django_assert_num_queries, n):
    contracts(n, sam)
    # session and user; her permissions (her own and her role's, one query); whether Lena has a second-factor device
    # (portal.core.staff_otp); organisations and SLAs of the filters; count and page of contracts;
    # attainment 3; SLA versions 2; months 1; claims 1
    with django_assert_num_queries(15):
        page = staff_client.get(REPORT, {"month": "2026-10"})
    assert len(contract_rows(page.content.decode())) == n
    with django_assert_num_queries(12):
        lines = parse_csv(staff_client.get(EXPORT, {"month": "2026-10"}))
    assert len(lines) == 1 + 3 * n
