"""The month-end run: figures per contract-month from outages (by cause) and maintenance, once."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command

from contracts.models import Outage
from credits.closing import close_month, months_to_close
from credits.models import MonthlyUptime

from .factories import ContractFactory

NBO = ZoneInfo("Africa/Nairobi")
OCT = date(2026, 10, 1)
AFTER = datetime(2026, 11, 2, 9, 0, tzinfo=NBO)
pytestmark = pytest.mark.django_db


def outage(contract, start, end, cause="unplanned", title="Storage down"):
    o = Outage.objects.create(title=title, starts_at=start, ends_at=end, cause=cause)
    o.services.set(contract.services.all())
    return o


def test_a_month_is_closed_once_with_its_uptime_tier_and_credit(acme_contract):
    # 446.4 minutes is 1% of October (44640 min): 500 minutes down -> 98.88% -> the 10% tier.
    start = datetime(2026, 10, 10, 2, 0, tzinfo=NBO)
    outage(acme_contract, start, start + timedelta(minutes=500))
    assert close_month(month=OCT, now=AFTER) == 1
    m = MonthlyUptime.objects.get(contract=acme_contract, month=OCT)
    assert (m.total_minutes, m.down_minutes, m.excluded_minutes) == (44640, 500, 0)
    assert m.uptime_percent == Decimal("98.87992832")
    assert (m.tier_percent, m.credit_amount, m.currency) == (Decimal("10"), Decimal("15000.00"), "KES")
    assert not m.flagged and m.credit_kind == "refund"
    assert m.breakdown[0]["minutes"] == 500 and m.breakdown[0]["reason"] == "Counted as downtime"
    # Running again changes nothing.
    before = list(MonthlyUptime.objects.values())
    assert close_month(month=OCT, now=AFTER + timedelta(hours=1)) == 0
    assert list(MonthlyUptime.objects.values()) == before


def test_a_month_not_yet_ended_in_the_contracts_timezone_is_not_closed(acme_contract):
    # 2026-10-31 22:00 UTC is already November in Nairobi (UTC+3): closed. 20:30 UTC is not.
    assert close_month(month=OCT, now=datetime(2026, 10, 31, 20, 30, tzinfo=ZoneInfo("UTC"))) == 0
    assert close_month(month=OCT, now=datetime(2026, 10, 31, 21, 0, tzinfo=ZoneInfo("UTC"))) == 1


def test_excluded_causes_are_shown_not_counted(acme_contract):
    start = datetime(2026, 10, 10, 2, 0, tzinfo=NBO)
    outage(acme_contract, start, start + timedelta(hours=2), cause="ddos", title="DDoS")
    outage(acme_contract, start + timedelta(hours=1), start + timedelta(hours=3))  # overlaps the DDoS
    close_month(month=OCT, now=AFTER)
    m = MonthlyUptime.objects.get()
    assert (m.down_minutes, m.excluded_minutes) == (60, 120)
    reasons = {b["title"]: b["reason"] for b in m.breakdown}
    assert reasons == {"DDoS": "Excluded: Distributed denial of service attack", "Storage down": "Counted as downtime"}


def test_a_month_in_a_gap_of_the_credit_table_is_flagged(acme_contract):
    # 99.5%: below Kaluari's 99.8% guarantee, above the 10% tier (<= 99.0): a gap.
    start = datetime(2026, 10, 10, 2, 0, tzinfo=NBO)
    outage(acme_contract, start, start + timedelta(minutes=224))
    close_month(month=OCT, now=AFTER)
    m = MonthlyUptime.objects.get()
    assert m.tier_percent is None and m.credit_amount is None and m.flagged


def test_an_outage_of_another_service_does_not_count(acme_contract, globex_contract):
    from .factories import ServiceFactory

    other = ServiceFactory(name="AI Assistant", slug="ai-assistant")
    o = Outage.objects.create(
        title="AI down", starts_at=datetime(2026, 10, 5, tzinfo=NBO), ends_at=datetime(2026, 10, 6, tzinfo=NBO)
    )
    o.services.set([other])
    close_month(month=OCT, now=AFTER)
    assert MonthlyUptime.objects.get(contract=acme_contract).down_minutes == 0


def test_a_reopened_month_is_closed_again_with_fresh_figures(acme_contract):
    start = datetime(2026, 10, 10, 2, 0, tzinfo=NBO)
    o = outage(acme_contract, start, start + timedelta(minutes=500))
    close_month(month=OCT, now=AFTER)
    o.cause = "force_majeure"
    o.save()
    assert close_month(month=OCT, now=AFTER) == 0  # closed: a corrected outage changes nothing yet
    MonthlyUptime.objects.update(status="reopened")
    assert close_month(month=OCT, now=AFTER) == 1
    m = MonthlyUptime.objects.get()
    assert (m.status, m.down_minutes, m.excluded_minutes, m.tier_percent) == ("closed", 0, 500, None)


def test_months_to_close():
    utc = ZoneInfo("UTC")
    assert months_to_close(datetime(2026, 11, 2, tzinfo=utc)) == [date(2026, 10, 1)]
    # UTC+14 ends November at 10:00 UTC on the 30th.
    assert months_to_close(datetime(2026, 11, 30, 10, 0, tzinfo=utc)) == [date(2026, 10, 1), date(2026, 11, 1)]


def test_contracts_that_had_not_started_are_left_alone(acme):
    ContractFactory(organisation=acme, starts_on=date(2026, 11, 1))
    assert close_month(month=OCT, now=AFTER) == 0


def test_the_command_closes_a_month_by_hand(acme_contract, capsys):
    call_command("close_month", "--month", "2026-10", "--contract", str(acme_contract.pk), verbosity=0)
    assert MonthlyUptime.objects.filter(contract=acme_contract, month=OCT).exists()
    assert "2026-10: 1 contract-month(s) closed." in capsys.readouterr().out


def test_query_count_is_bounded_by_chunks(acme, django_assert_max_num_queries, monkeypatch):
    import credits.closing

    monkeypatch.setattr(credits.closing, "CHUNK", 10)
    for _ in range(45):
        ContractFactory(organisation=acme)
    # 5 chunks of at most 10 contracts: a handful of queries each, not one per contract.
    with django_assert_max_num_queries(5 * 8 + 5):
        assert close_month(month=OCT, now=AFTER) == 45


def test_maintenance_keeping_the_rules_is_excluded_and_the_rest_is_downtime(acme_contract):
    from contracts.maintenance import maintenance_notices_send_due, window_publish

    published = datetime(2026, 10, 1, 9, 0, tzinfo=NBO)
    start = datetime(2026, 10, 10, 5, 0, tzinfo=NBO)  # 05:00-07:00: one hour after off-peak ends
    w = window_publish(
        title="Storage upgrade", description="x", services=acme_contract.services.all(),
        starts_at=start, ends_at=start + timedelta(hours=2), now=published,
    )  # fmt: skip
    maintenance_notices_send_due(now=w.notice_due_at)
    close_month(month=OCT, now=AFTER)
    m = MonthlyUptime.objects.get()
    assert (m.down_minutes, m.excluded_minutes) == (60, 60)
    assert m.breakdown == [{
        "kind": "maintenance", "id": w.pk, "title": "Storage upgrade", "minutes_kept": 60, "minutes_counted": 60,
        "reason": "Partly within the maintenance rules: the rest counts as downtime",
    }]  # fmt: skip
