"""The public status page (/status/): each service's state now, active incidents, upcoming
maintenance, and 90 UTC days of uptime as SVG bars; public, cacheable, customer-free, and in a
fixed number of queries whatever the history's size."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from contracts.choices import Cause
from contracts.models import MaintenanceWindow, Outage, OutageUpdate
from contracts.outages.status import bar_level, percent_text
from portal.domain.uptime import period_uptime

from .factories import ServiceFactory
from .status_helpers import publish_incident

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def backup():
    return ServiceFactory(name="Cloud Backup", slug="cloud-backup")


@pytest.fixture
def assistant():
    return ServiceFactory(name="AI Assistant", slug="ai-assistant")


def outage(services, start, end=None, *, title="Backups failing", cause=Cause.UNPLANNED, **fields):
    row = Outage.objects.create(title=title, starts_at=start, ends_at=end, cause=cause, **fields)
    row.services.set(services)
    return row


def window(services, start, end, *, impact=MaintenanceWindow.Impact.DOWNTIME, title="Storage upgrade", **fields):
    row = MaintenanceWindow.objects.create(
        title=title, description="We upgrade the storage cluster.", starts_at=start, ends_at=end, impact=impact,
        published_at=start - timedelta(days=3), **fields,
    )  # fmt: skip
    row.services.set(services)
    return row


def page(client) -> str:
    response = client.get(reverse("status"))
    assert response.status_code == 200
    return response.content.decode()


def service_block(html: str, slug: str) -> str:
    match = re.search(
        rf'<li class="service" aria-labelledby="service-{slug}-h">(.*?)</li>\s*(?=<li class="service"|</ul>)',
        html,
        re.S,
    )
    assert match, f"no block for {slug}"
    return match.group(1)


def bar_titles(block: str) -> list[str]:
    svg = re.search(r"<svg class=\"bars\".*?</svg>", block, re.S).group(0)
    return re.findall(r"<rect [^>]*><title>(.*?)</title></rect>", svg)


def bar_for(block: str, day: str) -> str:
    svg = re.search(r"<svg class=\"bars\".*?</svg>", block, re.S).group(0)
    (rect,) = [r for r in re.findall(r"<rect [^>]*><title>[^<]*</title></rect>", svg) if f"<title>{day}:" in r]
    return rect


def state_of(block: str) -> str:
    return re.search(r'<span class="state state-(\w+)">.*?</span> ([^<]+)</span>', block, re.S).groups()


# --- The page ----------------------------------------------------------------------------------
def test_anyone_can_read_it_and_caches_may_keep_it_30_seconds(client, backup):
    response = client.get(reverse("status"))
    assert response.status_code == 200
    assert response["Cache-Control"] in ("public, max-age=30", "max-age=30, public")
    assert "Cookie" not in response.get("Vary", "")


def test_it_rejects_post(client, backup):
    assert client.post(reverse("status")).status_code == 405


def test_no_inline_script_or_style(client, backup, assistant):
    outage([backup], NOW - timedelta(hours=1))
    window([assistant], NOW - timedelta(minutes=10), NOW + timedelta(hours=1))
    html = page(client)
    assert "<script" not in html
    assert "<style" not in html
    assert not re.search(r"\sstyle=", html)
    assert not re.search(r"\son\w+=", html)  # no event handler attributes
    assert 'href="/static/css/status.css"' in html


def test_ninety_bars_per_service_oldest_first(client, backup, assistant):
    html = page(client)
    for slug in ("cloud-backup", "ai-assistant"):
        titles = bar_titles(service_block(html, slug))
        assert len(titles) == 90
        assert titles[0] == "2026-08-05: 100% up, no outages"
        assert titles[-1] == "2026-11-02: 100% up, no outages"
    assert html.count("<rect ") == 180


def test_a_day_with_a_30_minute_outage(client, backup, assistant):
    outage([backup], datetime(2026, 11, 1, 10, 0, tzinfo=UTC), datetime(2026, 11, 1, 10, 30, tzinfo=UTC))
    block = service_block(page(client), "cloud-backup")
    rect = bar_for(block, "2026-11-01")
    assert "<title>2026-11-01: 97.92% up, 1 outage</title>" in rect  # 1410/1440
    assert 'class="bar level-partial"' in rect and 'fill="#e16f24"' in rect  # >= 95%: orange
    assert "<title>2026-10-31: 100% up, no outages</title>" in bar_for(block, "2026-10-31")
    assert "1 day with downtime" in block
    # The other service was not affected.
    assert "<title>2026-11-01: 100% up, no outages</title>" in bar_for(
        service_block(page(client), "ai-assistant"), "2026-11-01"
    )


def test_one_touched_minute_is_a_down_minute(client, backup):
    outage([backup], datetime(2026, 11, 1, 10, 0, 10, tzinfo=UTC), datetime(2026, 11, 1, 10, 0, 50, tzinfo=UTC))
    rect = bar_for(service_block(page(client), "cloud-backup"), "2026-11-01")
    assert "<title>2026-11-01: 99.93% up, 1 outage</title>" in rect
    assert "level-minor" in rect  # >= 99%: yellow


def test_an_outage_across_midnight_counts_on_both_days_and_overlaps_once(client, backup):
    outage([backup], datetime(2026, 10, 30, 23, 0, tzinfo=UTC), datetime(2026, 10, 31, 1, 0, tzinfo=UTC))
    outage([backup], datetime(2026, 10, 30, 23, 30, tzinfo=UTC), datetime(2026, 10, 30, 23, 45, tzinfo=UTC))
    block = service_block(page(client), "cloud-backup")
    assert "<title>2026-10-30: 95.83% up, 2 outages</title>" in bar_for(block, "2026-10-30")  # 60 min, merged
    assert "<title>2026-10-31: 95.83% up, 1 outage</title>" in bar_for(block, "2026-10-31")


def test_downtime_maintenance_counts_and_is_named(client, backup):
    window([backup], datetime(2026, 10, 20, 22, 0, tzinfo=UTC), datetime(2026, 10, 21, 0, 0, tzinfo=UTC))
    window(
        [backup], datetime(2026, 10, 22, 22, 0, tzinfo=UTC), datetime(2026, 10, 22, 23, 0, tzinfo=UTC),
        status=MaintenanceWindow.Status.CANCELLED,
    )  # fmt: skip
    window(
        [backup], datetime(2026, 10, 23, 22, 0, tzinfo=UTC), datetime(2026, 10, 23, 23, 0, tzinfo=UTC),
        impact=MaintenanceWindow.Impact.DEGRADED,
    )  # fmt: skip
    block = service_block(page(client), "cloud-backup")
    rect = bar_for(block, "2026-10-20")
    assert "<title>2026-10-20: 91.67% up, 1 maintenance window</title>" in rect
    assert "level-major" in rect  # below 95%: red
    assert "<title>2026-10-22: 100% up, no outages</title>" in bar_for(block, "2026-10-22")  # cancelled
    assert "<title>2026-10-23: 100% up, no outages</title>" in bar_for(block, "2026-10-23")  # degraded only


def test_every_cause_counts_on_the_status_page(client, backup):
    outage(
        [backup], datetime(2026, 11, 1, 10, 0, tzinfo=UTC), datetime(2026, 11, 1, 10, 30, tzinfo=UTC), cause=Cause.DDOS
    )
    assert "97.92% up, 1 outage" in bar_for(service_block(page(client), "cloud-backup"), "2026-11-01")


def test_only_a_major_impact_is_down_on_the_bars_as_in_the_uptime(client, backup, assistant):
    """Degraded is down for no one and partial only for the contracts staff scope it to (which the
    public page does not know): neither takes minutes off a bar, though the day names the outage.
    credits.closing.outage_spans counts the same way (tests/test_incidents.py)."""
    day = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    for sid, impact in ((backup.pk, "degraded"), (assistant.pk, "partial")):
        outage([backup, assistant], day, day + timedelta(minutes=30), impacts={str(sid): impact})
    html = page(client)
    backup_day = bar_for(service_block(html, "cloud-backup"), "2026-11-01")
    assistant_day = bar_for(service_block(html, "ai-assistant"), "2026-11-01")
    # Each service is major in one of the two outages (the other's impact), degraded/partial in the other.
    assert "<title>2026-11-01: 97.92% up, 2 outages</title>" in backup_day
    assert "<title>2026-11-01: 97.92% up, 2 outages</title>" in assistant_day
    outage([backup], day + timedelta(hours=2), day + timedelta(hours=3), impacts={str(backup.pk): "degraded"})
    outage([assistant], day - timedelta(days=1), day - timedelta(days=1, minutes=-30),
           impacts={str(assistant.pk): "partial"})  # fmt: skip
    html = page(client)
    block = service_block(html, "cloud-backup")
    assert "<title>2026-11-01: 97.92% up, 3 outages</title>" in bar_for(block, "2026-11-01")  # the hour is not down
    block = service_block(html, "ai-assistant")
    rect = bar_for(block, "2026-10-31")
    assert "<title>2026-10-31: 100% up, 1 outage</title>" in rect and "level-full" in rect
    assert "1 day with downtime" in block


def test_history_older_than_90_days_is_not_shown(client, backup):
    outage([backup], datetime(2026, 8, 4, 10, 0, tzinfo=UTC), datetime(2026, 8, 4, 11, 0, tzinfo=UTC))
    block = service_block(page(client), "cloud-backup")
    assert "<details" not in block
    assert "0 days with downtime" in block and "100% uptime" in block


# --- State now -----------------------------------------------------------------------------------
def test_all_operational(client, backup, assistant):
    html = page(client)
    assert "All systems operational" in html
    assert state_of(service_block(html, "cloud-backup")) == ("operational", "Operational")


def test_an_ongoing_outage(client, backup, assistant):
    publish_incident(
        [backup], NOW - timedelta(hours=1), title="Backups are failing",
        updates=[(NOW - timedelta(minutes=50), "investigating", "We are investigating."),
                 (NOW - timedelta(minutes=10), "identified", "A fix is being deployed.")],
    )  # fmt: skip
    html = page(client)
    assert state_of(service_block(html, "cloud-backup")) == ("outage", "Outage")
    assert state_of(service_block(html, "ai-assistant")) == ("operational", "Operational")
    assert "Some services are having an outage" in html
    incidents = re.search(r'<section aria-labelledby="incidents-h">(.*?)</section>', html, re.S).group(1)
    assert "Backups are failing" in incidents and "<strong>Cloud Backup</strong>" in incidents
    # Updates newest first.
    assert incidents.index("A fix is being deployed.") < incidents.index("We are investigating.")
    # Down until now, not to the end of the day: 60 of 1440 minutes today.
    assert "<title>2026-11-02: 95.83% up, 1 outage</title>" in bar_for(
        service_block(html, "cloud-backup"), "2026-11-02"
    )


def test_an_ended_outage_is_not_an_incident(client, backup):
    outage([backup], NOW - timedelta(hours=2), NOW - timedelta(hours=1))
    html = page(client)
    assert 'id="incidents-h"' not in html
    assert state_of(service_block(html, "cloud-backup"))[0] == "operational"


def test_a_downtime_window_in_progress_is_maintenance(client, backup, assistant):
    window([backup], NOW - timedelta(minutes=30), NOW + timedelta(minutes=30))
    html = page(client)
    assert state_of(service_block(html, "cloud-backup")) == ("maintenance", "Under maintenance")
    assert "Maintenance in progress" in html
    assert "In progress" in html
    assert "<title>2026-11-02: 97.92% up, 1 maintenance window</title>" in bar_for(
        service_block(html, "cloud-backup"), "2026-11-02"
    )


def test_a_degraded_window_in_progress_is_degraded(client, backup):
    window([backup], NOW - timedelta(minutes=30), NOW + timedelta(minutes=30), impact=MaintenanceWindow.Impact.DEGRADED)
    html = page(client)
    assert state_of(service_block(html, "cloud-backup")) == ("degraded", "Degraded performance")
    assert "<title>2026-11-02: 100% up, no outages</title>" in bar_for(
        service_block(html, "cloud-backup"), "2026-11-02"
    )


def test_an_outage_outranks_maintenance(client, backup):
    window([backup], NOW - timedelta(minutes=30), NOW + timedelta(minutes=30))
    outage([backup], NOW - timedelta(minutes=5))
    assert state_of(service_block(page(client), "cloud-backup"))[0] == "outage"


def test_a_cancelled_window_is_not_maintenance(client, backup):
    window(
        [backup], NOW - timedelta(minutes=30), NOW + timedelta(minutes=30), status=MaintenanceWindow.Status.CANCELLED
    )
    html = page(client)
    assert state_of(service_block(html, "cloud-backup"))[0] == "operational"
    assert "Storage upgrade" not in html


def test_upcoming_maintenance_is_the_next_14_days(client, backup):
    window([backup], NOW + timedelta(days=3), NOW + timedelta(days=3, hours=2), title="Within two weeks")
    window([backup], NOW + timedelta(days=15), NOW + timedelta(days=15, hours=2), title="Too far ahead")
    window(
        [backup], NOW + timedelta(days=2), NOW + timedelta(days=2, hours=1), title="Called off",
        status=MaintenanceWindow.Status.CANCELLED,
    )  # fmt: skip
    window([backup], NOW - timedelta(days=2), NOW - timedelta(days=2) + timedelta(hours=1), title="Already over")
    html = page(client)
    section = re.search(r'<section aria-labelledby="maintenance-h">(.*?)</section>', html, re.S).group(1)
    assert "Within two weeks" in section
    assert "Thu 5 Nov 2026, 12:00" in section and "Scheduled" in section
    assert "Too far ahead" not in section and "Called off" not in section and "Already over" not in section
    assert state_of(service_block(html, "cloud-backup"))[0] == "operational"


def test_a_window_within_one_day_names_the_day_once(client, backup):
    window([backup], NOW + timedelta(days=3), NOW + timedelta(days=3, hours=2), title="Same day")
    window([backup], NOW + timedelta(days=4, hours=11), NOW + timedelta(days=4, hours=13), title="Past midnight")
    text = " ".join(re.sub(r"<[^>]+>", " ", page(client)).split())
    assert "Thu 5 Nov 2026, 12:00 – 14:00 UTC" in text
    assert "Fri 6 Nov 2026, 23:00 – Sat 7 Nov 2026, 01:00 UTC" in text
    feed = client.get(reverse("status-feed")).content.decode()
    assert "Thu 5 Nov 2026, 12:00 – 14:00 UTC" in feed and "Fri 6 Nov 2026, 23:00 – Sat 7 Nov 2026, 01:00 UTC" in feed


# --- Nothing about customers ---------------------------------------------------------------------
def test_no_customer_names_even_for_a_logged_in_customer(client, acme_contract, globex_contract, alice):
    backup = acme_contract.services.get()
    outage([backup], NOW - timedelta(minutes=20), title="Backups are failing")
    window([backup], NOW + timedelta(days=1), NOW + timedelta(days=1, hours=1))
    anonymous = page(client)
    client.force_login(alice)
    response = client.get(reverse("status"))
    html = response.content.decode()
    assert "Cloud Backup" in html
    for text in ("Acme Savings", "Globex Retail", "KAL-0001", "KLA-0001", "Cloud Backup for Acme", "Alice", "alice@"):
        assert text not in html
    assert html == anonymous  # the same page for everyone: safe for a shared cache
    assert "Cookie" not in response.get("Vary", "")


# --- A fixed number of queries ---------------------------------------------------------------------
@pytest.mark.parametrize("history", [5, 200])
def test_a_fixed_number_of_queries_whatever_the_history(client, backup, assistant, django_assert_num_queries, history):
    services = [backup, assistant]
    for i in range(history):
        start = NOW - timedelta(days=89) + timedelta(hours=10 * i % (89 * 24))
        incident = outage([services[i % 2]], start, start + timedelta(minutes=5 + i % 50), title=f"Outage {i}")
        OutageUpdate.objects.create(outage=incident, at=start, body="Resolved.")
    publish_incident(services, NOW - timedelta(minutes=10), title="Ongoing",
                     updates=[(NOW, "investigating", "Investigating.")])  # fmt: skip
    for i in range(max(1, history // 20)):
        start = NOW - timedelta(days=80) + timedelta(days=i % 90)
        window(services, start, start + timedelta(hours=1))
    window([backup], NOW + timedelta(days=2), NOW + timedelta(days=2, hours=1))
    # Services; outages and their services; windows and their services; the incidents (open and of
    # the last 90 days), their services and their updates.
    with django_assert_num_queries(8):
        html = page(client)
    assert html.count("<rect ") == 180
    assert "Ongoing" in html and "Investigating." in html


# --- The colour bands and the displayed percentage (pure) ------------------------------------------
DAY = (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC))


def day_with(down_minutes: int):
    start = DAY[0]
    return period_uptime(*DAY, down=[(start, start + timedelta(minutes=down_minutes))] if down_minutes else [])


@pytest.mark.parametrize(
    ("down", "level", "text"),
    [
        (0, "full", "100"),
        (1, "minor", "99.93"),
        (14, "minor", "99.03"),  # 99.03% >= 99
        (15, "partial", "98.96"),
        (72, "partial", "95.00"),  # exactly 95%: orange, not red
        (73, "major", "94.93"),
        (1440, "major", "0.00"),
    ],
)
def test_bands_and_display(down, level, text):
    uptime = day_with(down)
    assert bar_level(uptime) == level
    assert percent_text(uptime) == text
    assert uptime.percent >= Decimal(text) - Decimal("0.005")
