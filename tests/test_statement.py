"""The SLA statement per contract and month (a page and a PDF), the "Tickets within SLA" chart of the
contract page, and the links to the statement (the contract page's month picker, the claim page).

Clocks are frozen on Tuesday 3 November 2026, 10:00 in Nairobi: October has ended and is closed,
November is the month so far. Acme's Kaluari contract (KAL-0001, 99.8% guarantee, KES 150,000 a
month) lost 500 minutes to an outage in October (98.880%: the 10% tier, KES 15,000.00) and had a
maintenance window that kept the rules (120 minutes excluded)."""

import io
import re
from datetime import date, datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse
from pypdf import PdfReader

from contracts.maintenance.services import window_publish
from contracts.maintenance.sweep import maintenance_notices_send_due
from contracts.models import SLA, Outage
from credits.closing import close_month
from credits.services import claim_submit
from credits.statement import contract_statement, static_file, static_prefix
from tickets.models import Ticket
from tickets.satisfaction import ticket_rate
from tickets.services import ticket_exclude, ticket_open, ticket_reply, ticket_set_status

from .factories import ContractFactory

NBO = ZoneInfo("Africa/Nairobi")
OCT = date(2026, 10, 1)
NOV_3 = datetime(2026, 11, 3, 10, 0, tzinfo=NBO)
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOV_3, tick=False) as traveller:
        yield traveller


def _outage(contract, start, minutes, title="Storage down"):
    o = Outage.objects.create(title=title, starts_at=start, ends_at=start + timedelta(minutes=minutes))
    o.services.set(contract.services.all())
    return o


def _window(contract, start, hours=2, title="Backup storage upgrade"):
    with time_machine.travel(start - timedelta(days=10), tick=False):
        window = window_publish(
            title=title, description="Disks are swapped.", services=contract.services.all(),
            starts_at=start, ends_at=start + timedelta(hours=hours),
        )  # fmt: skip
    maintenance_notices_send_due(now=window.starts_at - timedelta(hours=48))
    return window


def _ticket(contract, user, at, priority="P1", subject="Backups fail"):
    with time_machine.travel(at, tick=False):
        return ticket_open(
            user=user, contract=contract, service=contract.services.get(), priority=priority,
            subject=subject, description="Nothing backs up.",
        )  # fmt: skip


def _at(moment, fn, **kwargs):
    with time_machine.travel(moment, tick=False):
        return fn(**kwargs, now=moment)


def _tickets(contract, alice, sam, start):
    """P1 answered and resolved in time; P1 answered late and never resolved; P3 excluded."""
    on_time = _ticket(contract, alice, start)
    _at(start + timedelta(minutes=10), ticket_reply, ticket=on_time, author=sam, body="On it.")
    _at(start + timedelta(minutes=40), ticket_set_status, ticket=on_time, actor=sam, status=Ticket.Status.RESOLVED)
    late = _ticket(contract, alice, start)
    _at(start + timedelta(minutes=20), ticket_reply, ticket=late, author=sam, body="Sorry for the wait.")
    excluded = _ticket(contract, alice, start, priority="P3")
    _at(
        start + timedelta(minutes=5), ticket_exclude, ticket=excluded, actor=sam,
        cause=contract.sla.versions.get().exclusion_causes[0], reason="Customer modified the agent.",
    )  # fmt: skip


@pytest.fixture
def october(acme_contract, alice, sam):
    _outage(acme_contract, datetime(2026, 10, 10, 2, 0, tzinfo=NBO), 500)
    _window(acme_contract, datetime(2026, 10, 11, 23, 0, tzinfo=NBO))
    _tickets(acme_contract, alice, sam, datetime(2026, 10, 5, 10, 0, tzinfo=NBO))
    assert close_month(month=OCT, now=datetime(2026, 11, 1, 1, 0, tzinfo=NBO)) == 1
    return acme_contract


def page_url(contract, month="2026-10"):
    return reverse("contract-statement", args=[contract.pk, month])


def pdf_url(contract, month="2026-10"):
    return reverse("contract-statement-pdf", args=[contract.pk, month])


def text_of(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def section(html: str, heading_id: str) -> str:
    found = re.search(rf'<section aria-labelledby="{heading_id}">(.*?)</section>', html, re.S)
    assert found, heading_id
    return text_of(found.group(1))


def get(client, user, url):
    client.force_login(user)
    return client.get(url)


# --- The page --------------------------------------------------------------------------------------
def test_a_closed_month_shows_its_uptime_lines_attainment_and_credit(client, alice, october):
    response = get(client, alice, page_url(october))
    assert response.status_code == 200
    html = response.content.decode()
    head = text_of(
        html[html.index('<header class="statement-head">') : html.index("</header>", html.index("statement-head"))]
    )
    assert "SLA statement KAL-0001 · October 2026 Closed" in head
    assert "Contract Cloud Backup for Acme (KAL-0001)" in head
    assert "Organisation Acme Savings" in head
    assert re.search(r"SLA Kaluari Cloud Backup[^,]*, version 1, in force since ", head)
    assert "Timezone Africa/Nairobi" in head
    assert "Period 2026-10-01 00:00 (UTC+03:00) to 2026-11-01 00:00 (UTC+03:00)" in head
    assert "Generated 2026-11-03 10:00 (UTC+03:00)" in head

    uptime = section(html, "uptime-h")
    assert "Closed on 2026-11-01 01:00 (UTC+03:00): these are the month's final figures." in uptime
    assert "Uptime 98.880% against a guarantee of 99.8% Below the guarantee" in uptime
    assert "Downtime 500 min of the month's 44,640 min" in uptime
    assert "Excluded 120 min" in uptime

    lines = section(html, "lines-h")
    assert (
        "Storage down Unplanned outage 2026-10-10 02:00 (UTC+03:00) 2026-10-10 10:20 (UTC+03:00) 500 min 0 min"
    ) in lines
    assert (
        "Maintenance: Backup storage upgrade Scheduled maintenance 2026-10-11 23:00 (UTC+03:00) "
        "2026-10-12 01:00 (UTC+03:00) 0 min 120 min Within the maintenance rules: excluded"
    ) in lines

    tickets = section(html, "tickets-h")
    # P1: one answered and resolved in time, one answered late and never resolved; P3 excluded.
    assert "P1 – production incident 2 0 1 of 2 (50%) 1 of 2 (50%) 1 of 2 (50%)" in tickets
    assert "P2 – major incident 0 0 — — —" in tickets
    assert "P3 – medium-to-low impact 1 1 — — —" in tickets
    assert "All priorities 3 1 1 of 2 (50%) 1 of 2 (50%) 1 of 2 (50%)" in tickets

    credit = section(html, "credit-h")
    assert "Credit tier 10.0% of the month's invoice" in credit
    assert "Credit KES 15,000.00 (refund of the month's invoice)" in credit
    assert "None yet: claims for this month can be filed until 2026-12-01 00:00 (UTC+03:00). File a claim" in credit
    assert f'href="{reverse("claim-new")}?contract={october.pk}&amp;month=2026-10"' in html
    assert f'href="{pdf_url(october)}"' in html
    # The CSP: no inline style or script.
    assert "style=" not in html and "<script" not in html


def test_the_claim_for_the_month_is_shown_with_its_status(client, alice, october):
    claim = claim_submit(contract=october, month=OCT, user=alice)
    html = get(client, alice, page_url(october)).content.decode()
    assert "Claim Claim " + str(claim.pk) + ", filed 2026-11-03 10:00 (UTC+03:00): Awaiting review" in section(
        html, "credit-h"
    )
    assert f'href="{reverse("claim-detail", args=[claim.pk])}"' in html
    # ... and the claim's page links back to the month's statement and its PDF.
    claim_page = get(client, alice, reverse("claim-detail", args=[claim.pk])).content.decode()
    assert f'href="{page_url(october)}"' in claim_page and f'href="{pdf_url(october)}"' in claim_page


def test_months_that_are_not_final_say_so(client, alice, acme_contract):
    _outage(acme_contract, datetime(2026, 11, 2, 0, 0, tzinfo=NBO), 60)
    so_far = get(client, alice, page_url(acme_contract, "2026-11")).content.decode()
    assert "SLA statement KAL-0001 · November 2026 This month so far (not final)" in text_of(so_far)
    assert "This month so far, not final. As of 2026-11-03 10:00 (UTC+03:00), 3,480 of the month's 43,200 minutes" in (
        section(so_far, "uptime-h")
    )
    assert "None: a claim can be filed once the month has ended, until 2026-12-31 00:00 (UTC+03:00)." in section(
        so_far, "credit-h"
    )
    # October has ended but the hourly run has not closed it: computed as it would close it.
    ended = get(client, alice, page_url(acme_contract, "2026-10")).content.decode()
    assert "Ended, not closed yet (not final)" in text_of(ended)
    assert "Not closed yet, not final. The month has ended" in section(ended, "uptime-h")
    assert "Uptime 100.000%" in section(ended, "uptime-h")
    # September's claim window closed on 31 October.
    september = get(client, alice, page_url(acme_contract, "2026-09")).content.decode()
    assert "None: claims for this month closed at 2026-10-31 00:00 (UTC+03:00)." in section(september, "credit-h")


# --- Bad months, other organisations, anonymous visitors -----------------------------------------------
@pytest.mark.parametrize(
    ("month", "status", "message"),
    [
        ("2026-13", 400, "Enter the month as YYYY-MM, e.g. 2026-10."),
        ("october", 400, "Enter the month as YYYY-MM, e.g. 2026-10."),
        ("2026-1", 400, "Enter the month as YYYY-MM, e.g. 2026-10."),
        ("0000-01", 400, "Enter the month as YYYY-MM, e.g. 2026-10."),
        ("2026-12", 404, "December 2026 has not started yet"),
        ("2025-06", 404, "The contract had not started in June 2025."),
    ],
)
def test_a_bad_month_is_a_clear_400_or_404(client, alice, acme_contract, month, status, message):
    for url in (page_url(acme_contract, month), pdf_url(acme_contract, month)):
        response = get(client, alice, url)
        assert response.status_code == status, url
        assert response["Content-Type"].startswith("text/html")
        assert message in text_of(response.content.decode())


def test_the_month_picker_redirects_to_the_statement(client, alice, acme_contract):
    picker = reverse("contract-statement-pick", args=[acme_contract.pk])
    response = get(client, alice, f"{picker}?month=2026-10")
    assert response.status_code == 302 and response["Location"] == page_url(acme_contract, "2026-10")
    for bad in ("?month=10/2026", "?month=", ""):
        response = get(client, alice, picker + bad)
        assert response.status_code == 400
        assert "Enter the month as YYYY-MM, e.g. 2026-10." in text_of(response.content.decode())


def test_another_organisations_contract_is_a_404_like_a_missing_one(client, alice, charlie, globex_contract):
    for name, args in (
        ("contract-statement", [globex_contract.pk, "2026-10"]),
        ("contract-statement-pdf", [globex_contract.pk, "2026-10"]),
        ("contract-statement", [globex_contract.pk, "bogus"]),  # scoped before the month is read
        ("contract-statement-pick", [globex_contract.pk]),
    ):
        theirs = get(client, alice, reverse(name, args=args) + "?month=2026-10")
        missing = get(client, alice, reverse(name, args=[987654, *args[1:]]) + "?month=2026-10")
        assert theirs.status_code == missing.status_code == 404
        assert theirs.content == missing.content
        assert b"Globex" not in theirs.content and b"KLA-0001" not in theirs.content
    assert get(client, charlie, page_url(globex_contract)).status_code == 200


def test_anonymous_visitors_are_sent_to_login(client, acme_contract):
    for url in (
        page_url(acme_contract),
        pdf_url(acme_contract),
        reverse("contract-statement-pick", args=[acme_contract.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


# --- The PDF -------------------------------------------------------------------------------------------
def test_the_pdf_is_the_statement_as_a_downloadable_document(client, alice, october):
    response = get(client, alice, pdf_url(october))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="sla-statement-KAL-0001-2026-10.pdf"'
    assert response["Cache-Control"] == "private, no-store"
    assert response.content.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(response.content))
    assert len(reader.pages) in (1, 2)  # A4: the statement of a month with a few lines fits on one or two
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    assert "KAL-0001" in text and "October 2026" in text
    assert "98.880%" in text and "KES 15,000.00" in text
    assert "Storage down" in text and "Backup storage upgrade" in text
    assert "Generated 2026-11-03 10:00 (UTC+03:00)" in text
    assert "Page 1 of" in text  # the print stylesheet's page footer: statement.css was loaded
    # The page's navigation and buttons are not printed.
    assert "Log out" not in text and "Download the PDF" not in text


def test_the_pdf_loads_only_our_own_static_files_from_disk():
    prefix = static_prefix("http://testserver/")
    assert prefix == "http://testserver/static/"
    body, content_type = static_file(prefix + "css/statement.css", prefix=prefix)
    assert content_type == "text/css" and b"@page" in body
    for url in (
        "https://cdn.example.com/static/css/statement.css",  # another host
        "http://testserver/media/evidence.txt",  # not a static file
        "file:///etc/passwd",
        prefix + "css/missing.css",
    ):
        with pytest.raises(ValueError):
            static_file(url, prefix=prefix)
    with pytest.raises(Exception):  # noqa: B017 - SuspiciousFileOperation or ValueError: never read
        static_file(prefix + "../../portal/settings.py", prefix=prefix)


# --- The contract page: the chart and the month picker ---------------------------------------------------
def test_the_contract_page_charts_tickets_within_sla_and_offers_the_statement(client, alice, october):
    html = get(client, alice, reverse("contract-detail", args=[october.pk])).content.decode()
    found = re.search(r'<section id="attainment"[^>]*>(.*?)</section>', html, re.S)
    assert found
    part = found.group(1)
    assert "Tickets within SLA, last 11 months" in text_of(part)  # the contract started in January
    svgs = re.findall(r"<svg[^>]*role=\"img\"[^>]*>(.*?)</svg>", part, re.S)
    assert len(svgs) == 4  # P1-P4
    p1 = svgs[0]
    titles = re.findall(r"<title[^>]*>([^<]*)</title>", p1)
    assert unescape(titles[0]) == "P1 – production incident: tickets within SLA, January 2026 to November 2026"
    assert "October 2026, P1 – production incident: 1 of 2 answered in time (50%)" in map(unescape, titles)
    assert "September 2026, P1 – production incident: no tickets" in map(unescape, titles)
    # A month without tickets is an outline, not a 0% bar.
    assert len(re.findall(r'class="att-bar att-response att-none"', p1)) == 10
    table = text_of(part[part.index("<table") :])
    assert (
        "October 2026 (1 excluded) 1 of 2 (50%) 1 of 2 (50%) no tickets no tickets excluded only excluded only" in table
    )
    assert "November 2026 (so far) no tickets" in table
    picker = re.search(r'<form method="get" action="([^"]+)"', html)
    assert picker and picker.group(1) == reverse("contract-statement-pick", args=[october.pk])
    assert 'value="2026-10"' in html and 'min="2026-01"' in html and 'max="2026-11"' in html
    assert "style=" not in html and "<script" not in html


# --- Cost -----------------------------------------------------------------------------------------------
def _grow(contract, alice, sam, n):
    for i in range(n):
        _outage(contract, datetime(2026, 10, 15 + i, 3, 0, tzinfo=NBO), 10, title=f"Blip {i}")
        _window(contract, datetime(2026, 10, 20 + i, 23, 0, tzinfo=NBO), hours=1, title=f"Patch {i}")
        _tickets(contract, alice, sam, datetime(2026, 10, 6 + i, 10, 0, tzinfo=NBO))
        _tickets(contract, alice, sam, datetime(2026, 6 + i, 6, 10, 0, tzinfo=NBO))
    for ticket in Ticket.objects.filter(contract=contract, resolved_at__isnull=False):  # satisfaction: no query more
        ticket_rate(ticket=ticket, user=alice, rating="good", now=NOV_3)


@pytest.mark.parametrize("n", [1, 6])
def test_the_statement_and_the_contract_page_are_a_fixed_number_of_queries(
    client, alice, sam, acme_contract, django_assert_num_queries, n
):
    _grow(acme_contract, alice, sam, n)
    close_month(month=OCT, now=datetime(2026, 11, 1, 1, 0, tzinfo=NBO))
    client.force_login(alice)
    with django_assert_num_queries(STATEMENT_QUERIES):
        assert client.get(page_url(acme_contract)).status_code == 200
    with django_assert_num_queries(CONTRACT_PAGE_QUERIES):
        assert client.get(reverse("contract-detail", args=[acme_contract.pk])).status_code == 200


def test_the_selector_reads_a_month_in_a_fixed_number_of_queries(acme_contract, alice, sam, django_assert_num_queries):
    _grow(acme_contract, alice, sam, 2)
    close_month(month=OCT, now=datetime(2026, 11, 1, 1, 0, tzinfo=NBO))
    with django_assert_num_queries(SELECTOR_QUERIES):
        s = contract_statement(contract=acme_contract, month=OCT, now=NOV_3)
    assert s.total.filed == 6 and len(s.figures.lines) == 4


STATEMENT_QUERIES = 16
CONTRACT_PAGE_QUERIES = 14  # after the statement: the SLA terms are loaded (tickets.terms_cache)
SELECTOR_QUERIES = 12


def test_a_klart_contract_has_one_chart_for_its_priority_free_targets(client, charlie, globex):
    klart = ContractFactory(organisation=globex, sla=SLA.objects.get(template_key="klart-ai"), reference="KLA-0002")
    html = get(client, charlie, reverse("contract-detail", args=[klart.pk])).content.decode()
    part = re.search(r'<section id="attainment"[^>]*>(.*?)</section>', html, re.S).group(1)
    assert len(re.findall(r'role="img"', part)) == 1 and "Standard" in part
    statement = get(client, charlie, page_url(klart)).content.decode()
    assert "Timezone Europe/Stockholm" in text_of(statement)
    assert "Standard 0 0 — — — All priorities 0 0 — — —" in section(statement, "tickets-h")
