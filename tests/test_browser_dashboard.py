"""The customer dashboard in a real browser (Playwright driving Debian's Chromium against the live
server), at a desktop's and a phone's width: each contract's card says in words whether it meets its
guarantee and what credit the month would earn; the open tickets' countdowns tick without a reload;
upcoming maintenance and claims are there with their links. axe-core finds no serious or critical
violation, the Content-Security-Policy refuses nothing, nothing scrolls sideways on a phone, and each
width leaves a screenshot in var/screenshots/. The live server runs on the real clock, so the data
is built relative to timezone.now()."""

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from contracts.maintenance.services import window_publish
from contracts.models import Outage
from credits.closing import close_month
from tickets.services import ticket_open

from .factories import ContractFactory, ServiceFactory
from .test_browser import PHONE, assert_accessible, month_start, scroll_width, text, today

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NBO = ZoneInfo("Africa/Nairobi")
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture
def acme_board(acme, alice, bob):
    """Acme with two contracts: Cloud Backup 20 hours down this month (below its 99.8% guarantee,
    a credit due), Archive with nothing down; last month closed with an outage (a claim is due);
    open P1 and P3 tickets; a maintenance window in three days."""
    now = timezone.now()
    started = month_start(today(), 6)
    backup = ContractFactory(
        organisation=acme, reference="KAL-0001", name="Cloud Backup for Acme", contacts=[alice, bob],
        starts_on=started,
    )  # fmt: skip
    archive = ContractFactory(
        organisation=acme, reference="KAL-0002", name="Archive for Acme", contacts=[alice], starts_on=started,
        services=[ServiceFactory(name="Archive", slug="archive")],
    )  # fmt: skip
    this_month = datetime.combine(today().replace(day=1), datetime.min.time(), tzinfo=NBO)
    # Down from the first of the month (or for the last 20 hours, early on the 1st).
    start = min(this_month, now - timedelta(hours=20))
    Outage.objects.create(title="Storage down", starts_at=start, ends_at=start + timedelta(hours=20)).services.set(
        backup.services.all()
    )
    last = month_start(today(), 1)
    was = datetime(last.year, last.month, 10, 2, 0, tzinfo=NBO)
    Outage.objects.create(title="Network", starts_at=was, ends_at=was + timedelta(minutes=500)).services.set(
        backup.services.all()
    )
    close_month(month=last, now=now)
    for priority, subject in (("P1", "Backups fail on the Nairobi cluster"), ("P3", "Restores are slow")):
        ticket_open(
            user=alice, contract=backup, service=backup.services.get(), priority=priority, subject=subject,
            description="Since this morning.",
        )  # fmt: skip
    starts = (now.astimezone(NBO) + timedelta(days=3)).replace(hour=23, minute=0, second=0, microsecond=0)
    window_publish(
        title="Backup storage upgrade", description="New disks.", services=backup.services.all(),
        starts_at=starts, ends_at=starts + timedelta(hours=2),
    )  # fmt: skip
    return backup, archive


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_the_dashboard_at_a_glance(logged_in_page, screenshot, alice, acme_board, width):
    backup, archive = acme_board
    viewport = PHONE if width == "phone" else DESKTOP
    page = logged_in_page(alice, viewport=viewport)
    page.wait_for_load_state("load")
    assert page.get_by_role("heading", level=1).inner_text() == "Acme Savings"

    cards = page.locator("li.contract-card")
    assert cards.count() == 2
    below = cards.filter(has=page.get_by_role("heading", name="Cloud Backup for Acme"))
    assert "Below the guarantee" in text(below)
    assert re.search(r"If the month closed now: KES [\d,]+\.\d\d", text(below)), text(below)
    quiet = cards.filter(has=page.get_by_role("heading", name="Archive for Acme"))
    assert "Meets the guarantee" in text(quiet) and "No credit: above the guarantee." in text(quiet)
    assert quiet.get_by_role("link", name="Uptime and credits of Archive for Acme").get_attribute("href") == (
        f"/contracts/{archive.pk}/uptime/"
    )

    # The countdowns tick without a reload.
    countdown = page.locator("table.dash-tickets time[data-countdown]").first
    before = countdown.inner_text()
    page.wait_for_timeout(1500)
    after = countdown.inner_text()
    assert before != after and re.fullmatch(r"in (\d+ h )?\d+ min \d+ s", after), (before, after)
    assert "Level 1: Email support" in text(page.locator("table.dash-tickets"))

    maintenance = page.locator("section", has=page.get_by_role("heading", name="Upcoming maintenance"))
    assert "Backup storage upgrade" in text(maintenance)
    credits = page.locator("section", has=page.get_by_role("heading", name="Service credits"))
    last = month_start(today(), 1)
    assert f"Cloud Backup for Acme, {last:%B %Y} Credit due" in text(credits)

    screenshot(page, f"30-dashboard-{width}")
    assert_accessible(page, f"dashboard ({width})")
    if width == "phone":
        assert scroll_width(page) <= PHONE["width"], "the dashboard scrolls sideways on a phone"
        # The cards stack: one column, each as wide as the screen allows.
        boxes = [cards.nth(i).bounding_box() for i in range(cards.count())]
        assert boxes[0]["x"] == boxes[1]["x"] and boxes[1]["y"] > boxes[0]["y"] + boxes[0]["height"] - 1
        assert all(b["x"] >= 0 and b["x"] + b["width"] <= PHONE["width"] for b in boxes)
    else:
        boxes = [cards.nth(i).bounding_box() for i in range(cards.count())]
        assert boxes[0]["y"] == boxes[1]["y"], "on a desktop the cards sit side by side"

    # The claim call to action leads to the claim form for that month.
    credits.get_by_role("link", name=f"File a claim for {last:%B %Y} on Cloud Backup for Acme").click()
    page.wait_for_url(re.compile(r"/claims/new/"))
    assert page.get_by_label("Month").input_value() == f"{last:%Y-%m}"
