"""A contract's uptime page: this month so far (live, from the same arithmetic as the month-end
run), the last 12 months as a server-rendered SVG chart from the closed months, and what each
closed month counted, in the contract's timezone. Alice and Bob at Acme, Charlie at Globex; clocks
frozen (and every login inside the frozen block: sessions expire after 12 hours)."""

import re
from datetime import date, datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from contracts.maintenance.services import window_publish
from contracts.maintenance.sweep import maintenance_notices_send_due
from contracts.models import SLA, Outage
from credits.closing import close_month
from credits.services import claim_submit
from portal.domain.dates import add_months

from .factories import ContractFactory

NBO = ZoneInfo("Africa/Nairobi")
OCT = date(2026, 10, 1)
NOV_3 = datetime(2026, 11, 3, 10, 0, tzinfo=NBO)
pytestmark = pytest.mark.django_db


def outage(contract, start, minutes, cause="unplanned", title="Storage down"):
    o = Outage.objects.create(
        title=title, starts_at=start, ends_at=start + timedelta(minutes=minutes) if minutes else None, cause=cause
    )
    o.services.set(contract.services.all())
    return o


@pytest.fixture
def bad_october(acme_contract):
    """500 minutes down on the 10th: 98.880% of October's 44,640 minutes, the 10% tier."""
    outage(acme_contract, datetime(2026, 10, 10, 2, 0, tzinfo=NBO), 500)
    close_month(month=OCT, now=datetime(2026, 11, 1, 1, 0, tzinfo=NBO))
    return acme_contract


def get(client, user, url, at=NOV_3):
    with time_machine.travel(at, tick=False):
        client.force_login(user)
        return client.get(url)


def text_of(response) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def section(response, element_id) -> str:
    html = response.content.decode()
    found = re.search(rf'<section[^>]*id="{element_id}"[^>]*>(.*?)</section>', html, re.S)
    assert found, element_id
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", found.group(1))).split())


def url(contract):
    return reverse("contract-uptime", args=[contract.pk])


# --- The closed months --------------------------------------------------------------------------
def test_a_closed_month_nothing_touched_is_one_line_to_open(client, alice, acme_contract):
    close_month(month=OCT, now=datetime(2026, 11, 1, 1, 0, tzinfo=NBO))
    html = get(client, alice, url(acme_contract)).content.decode()
    found = re.search(r'id="month-2026-10"[^>]*>\s*<details>\s*<summary>(.*?)</summary>', html, re.S)
    assert found and " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split()) == (
        "October 2026: 100.000% nothing went down"
    )


def test_october_shows_its_uptime_tier_credit_and_the_outage_that_cost_it(client, alice, bad_october):
    response = get(client, alice, url(bad_october))
    assert response.status_code == 200
    october = section(response, "month-2026-10")
    assert "October 2026: 98.880%" in october and "nothing went down" not in october
    # A month with downtime is open; one nothing touched is a line to open (the page was 5,000 px).
    assert re.search(r'id="month-2026-10"[^>]*>\s*<details open>', response.content.decode())
    assert "98.880% against a guarantee of 99.8% Below the guarantee" in october
    assert "Credit tier 10.0% of the month's invoice" in october
    assert "Credit KES 15,000.00 (refund of the month's invoice)" in october
    assert "Downtime 500 min of the month's 44,640 min" in october
    # The breakdown line: what, its cause, when (Nairobi time, with the offset), minutes, why.
    assert (
        "Storage down Unplanned outage 2026-10-10 02:00 (UTC+03:00) 2026-10-10 10:20 (UTC+03:00) 500 min 0 min "
        "Counted as downtime"
    ) in october
    assert "Closed at 2026-11-01 01:00 (UTC+03:00)." in october


def test_the_chart_has_a_bar_per_month_with_its_percent_as_the_table_writes_it_and_the_guarantee_line(
    client, alice, bad_october
):
    html = get(client, alice, url(bad_october)).content.decode()
    svg = html[html.index("<svg") : html.index("</svg>")]
    bars = re.findall(r'<rect class="bar bar-(\w+)"[^>]*><title>([^<]*)</title></rect>', svg)
    assert len(bars) == 12
    # November 2025 to October 2026, oldest first; the contract started in January.
    assert bars[0] == ("none", "November 2025: The contract had not started in November 2025.")
    assert bars[2] == ("none", "January 2026: Not closed yet")
    assert unescape(bars[-1][1]) == "October 2026: 98.880% uptime, 10% credit tier"
    assert bars[-1][0] == "below"
    assert '<line class="guarantee"' in svg and re.search(r'<text class="guarantee-label"[^>]*>99.8%</text>', svg)
    # Styled from portal.css only: no style attribute, no inline script (the CSP forbids them).
    assert "style=" not in html and "<script" not in html


def test_a_month_not_closed_says_so_and_offers_a_claim_for_a_claimable_month(client, alice, acme_contract):
    response = get(client, alice, url(acme_contract))
    months = section(response, "history")
    assert "October 2026 Not closed yet File a claim for October 2026" in months
    assert "September 2026 Not closed yet —" in months  # its claim window closed on 31 October
    assert f'href="{reverse("claim-new")}?contract={acme_contract.pk}&amp;month=2026-10"' in response.content.decode()
    assert "No month of the last 12 is closed yet." in text_of(response)


def test_a_claimed_month_links_to_its_claim(client, alice, bad_october):
    with time_machine.travel(NOV_3, tick=False):
        claim = claim_submit(contract=bad_october, month=OCT, user=alice)
    response = get(client, alice, url(bad_october))
    assert f'<a href="{reverse("claim-detail", args=[claim.pk])}">Awaiting review</a>' in response.content.decode()


def test_excluded_minutes_and_maintenance_say_why(client, alice, acme_contract):
    outage(acme_contract, datetime(2026, 10, 5, 2, 0, tzinfo=NBO), 120, cause="ddos", title="Flood of requests")
    start = datetime(2026, 10, 11, 23, 0, tzinfo=NBO)
    with time_machine.travel(start - timedelta(days=10), tick=False):
        window = window_publish(
            title="Backup storage upgrade",
            description="Disks are swapped.",
            services=acme_contract.services.all(),
            starts_at=start,
            ends_at=start + timedelta(hours=2),
        )
    maintenance_notices_send_due(now=window.starts_at - timedelta(hours=48))
    close_month(month=OCT, now=datetime(2026, 11, 1, 1, 0, tzinfo=NBO))
    october = section(get(client, alice, url(acme_contract)), "month-2026-10")
    assert "Downtime 0 min of the month's 44,640 min; 240 min excluded" in october
    assert (
        "Flood of requests Distributed denial of service attack 2026-10-05 02:00 (UTC+03:00) "
        "2026-10-05 04:00 (UTC+03:00) 0 min 120 min Excluded: Distributed denial of service attack"
    ) in october
    assert (
        "Maintenance: Backup storage upgrade Scheduled maintenance 2026-10-11 23:00 (UTC+03:00) "
        "2026-10-12 01:00 (UTC+03:00) 0 min 120 min Within the maintenance rules: excluded"
    ) in october


def test_a_month_in_a_gap_of_the_credit_table_is_flagged(client, alice, acme_contract):
    # 224 minutes: 99.498%, below the 99.8% guarantee and above the 10% tier (<= 99.0).
    outage(acme_contract, datetime(2026, 10, 10, 2, 0, tzinfo=NBO), 224)
    close_month(month=OCT, now=datetime(2026, 11, 1, 1, 0, tzinfo=NBO))
    response = get(client, alice, url(acme_contract))
    october = section(response, "month-2026-10")
    assert "Flagged for review: below the guarantee, but in a gap of the credit table" in october
    assert (
        "Credit tier None: below the guarantee, but in a gap of the credit table. Staff review this month." in october
    )
    assert re.search(r'<rect class="bar bar-flagged"[^>]*><title>October 2026: 99.498', response.content.decode())


# --- This month so far --------------------------------------------------------------------------
def test_this_month_so_far_counts_an_ongoing_outage_up_to_now(client, alice, acme_contract):
    outage(acme_contract, datetime(2026, 11, 2, 0, 0, tzinfo=NBO), None, title="Agent cannot reach storage")
    so_far = section(get(client, alice, url(acme_contract)), "so-far")
    # 2 Nov 00:00 to 3 Nov 10:00: 2,040 minutes of November's 43,200 -> 95.278%: the 25% tier.
    assert "This month so far: November 2026" in so_far
    assert "As of 2026-11-03 10:00 (UTC+03:00): 3,480 of the month's 43,200 minutes have passed." in so_far
    assert "Uptime 95.278% against a guarantee of 99.8%" in so_far
    assert "Credit tier 25.0% of the month's invoice" in so_far and "KES 37,500.00" in so_far
    assert "Agent cannot reach storage Unplanned outage 2026-11-02 00:00 (UTC+03:00) ongoing 2,040 min" in so_far


def test_a_maintenance_window_still_to_come_is_not_downtime_yet(client, alice, acme_contract):
    start = datetime(2026, 11, 20, 14, 0, tzinfo=NBO)  # daytime: it will count, but not before it happens
    with time_machine.travel(NOV_3 - timedelta(days=1), tick=False):
        window_publish(
            title="Daytime patch",
            description="Patching.",
            services=acme_contract.services.all(),
            starts_at=start,
            ends_at=start + timedelta(hours=2),
        )
    so_far = section(get(client, alice, url(acme_contract)), "so-far")
    assert "Uptime 100.000%" in so_far and "No outage or maintenance window so far this month." in so_far


def test_a_contract_that_starts_later_has_no_figures_yet(client, alice, acme):
    later = ContractFactory(organisation=acme, reference="KAL-0009", starts_on=date(2026, 12, 1))
    response = get(client, alice, url(later))
    assert "No figures for this month. The contract had not started in November 2026." in section(response, "so-far")
    assert "Not closed yet" not in section(response, "history")


def test_a_klart_contract_shows_stockholm_time_and_its_guarantee(client, charlie, globex):
    klart = ContractFactory(
        organisation=globex, sla=SLA.objects.get(template_key="klart-ai"), reference="KLA-0002", currency="SEK"
    )
    outage(klart, datetime(2026, 11, 2, 9, 0, tzinfo=NBO), 60)
    response = get(client, charlie, url(klart))
    assert response.status_code == 200
    so_far = section(response, "so-far")
    assert "against a guarantee of 99.9%" in so_far
    assert "2026-11-02 07:00 (UTC+01:00)" in so_far  # 09:00 in Nairobi


# --- Scoping and cost ---------------------------------------------------------------------------
def test_charlie_gets_404_for_acmes_contract(client, charlie, bad_october, globex_contract):
    assert get(client, charlie, url(bad_october)).status_code == 404
    assert get(client, charlie, url(globex_contract)).status_code == 200


def test_anonymous_is_sent_to_login(client, acme_contract):
    response = client.get(url(acme_contract))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_it_rejects_post(client, alice, acme_contract):
    with time_machine.travel(NOV_3, tick=False):
        client.force_login(alice)
        assert client.post(url(acme_contract)).status_code == 405


def test_the_contract_page_and_the_navigation_link_here(client, alice, acme_contract):
    html = get(client, alice, reverse("contract-detail", args=[acme_contract.pk])).content.decode()
    assert f'href="{url(acme_contract)}"' in html
    assert f'<a href="{reverse("claim-list")}">Uptime and credits</a>' in html
    html = get(client, alice, url(acme_contract)).content.decode()
    assert f'<a href="{reverse("claim-list")}" aria-current="page">Uptime and credits</a>' in html


def _queries(client, user, contract, at) -> int:
    with time_machine.travel(at, tick=False):
        client.force_login(user)
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url(contract)).status_code == 200
    return len(ctx.captured_queries)


def test_the_page_does_a_fixed_number_of_queries_whatever_the_history(client, alice, acme_contract):
    at = datetime(2027, 1, 5, 10, 0, tzinfo=NBO)  # the last 12 months: January to December 2026
    months = [add_months(date(2026, 1, 1), i) for i in range(12)]
    for i, month in enumerate(months):
        outage(acme_contract, datetime(month.year, month.month, 10, 2, 0, tzinfo=NBO), 30 + i, title=f"Outage {i}")
    for month in months[-2:]:
        close_month(month=month, now=at)
    two = _queries(client, alice, acme_contract, at)
    for month in months[:-2]:
        close_month(month=month, now=at)
    response = get(client, alice, url(acme_contract), at=at)
    assert len(re.findall(r'<section class="card month"', response.content.decode())) == 12
    assert _queries(client, alice, acme_contract, at) == two
