"""An uptime is rounded for display only, the same way on every surface, and never to 100 where
something went down: the status page's 90-day figure read "100.00% uptime" for 3 minutes down
(99.9977%) beside a bar "99.79% up, 1 outage"; the contract's uptime chart wrote October as
"98.87768817%" beside the table's 98.878%."""

import re
from datetime import date, datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from contracts.models import Outage
from credits.closing import close_month

NBO = ZoneInfo("Africa/Nairobi")
pytestmark = pytest.mark.django_db


def text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _outage(services, start, end, title="Storage down"):
    o = Outage.objects.create(title=title, starts_at=start, ends_at=end)
    o.services.set(services)
    return o


def test_status_page_never_rounds_a_period_with_downtime_up_to_100_percent(client, backup):
    """Three minutes down in the last 90 days: the day's bar says 99.79% and "1 day with downtime",
    but the service's 90-day figure is rounded half-up to "100.00% uptime" (129,597 of 129,600
    minutes = 99.9977%): the page contradicts itself, and reads as if nothing went down."""
    now = datetime(2026, 11, 3, 12, 0, tzinfo=ZoneInfo("UTC"))
    _outage([backup], now - timedelta(days=10), now - timedelta(days=10) + timedelta(minutes=3))
    with time_machine.travel(now, tick=False):
        page = text(client.get(reverse("status")).content.decode())
    assert "1 day with downtime" in page
    assert "99.79% up, 1 outage" in page
    overall = re.search(r"(\d+(?:\.\d+)?)% uptime Today", page).group(1)
    assert overall != "100.00", f"the 90-day figure shows {overall}% with a day of downtime on the same bar chart"


def test_uptime_chart_writes_the_month_as_the_table_beside_it_does(client, alice, acme_contract):
    """The contract's uptime page: the table (and every other page, email and the PDF) writes
    October (501 of 44,640 minutes down) as 98.878%; the chart's bar for the same month says
    "98.87768817% uptime"."""
    start = datetime(2026, 10, 10, 2, 0, 20, tzinfo=NBO)
    _outage(acme_contract.services.all(), start, datetime(2026, 10, 10, 10, 20, 10, tzinfo=NBO))
    closing = datetime(2026, 11, 1, 1, 0, tzinfo=NBO)
    with time_machine.travel(closing, tick=False):
        assert close_month(month=date(2026, 10, 1), now=closing) == 1
    with time_machine.travel(datetime(2026, 11, 3, 10, 0, tzinfo=NBO), tick=False):
        client.force_login(alice)
        html = client.get(reverse("contract-uptime", args=[acme_contract.pk])).content.decode()
    page = text(html)
    assert "October 2026: 98.878%" in page  # the breakdown (and the table: 98.878%)
    titles = re.findall(r"<title[^>]*>(October 2026:[^<]*)</title>", html)
    assert titles, "the chart's bar for October"
    assert all("98.878%" in t for t in titles), titles
