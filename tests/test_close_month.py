"""The month-end run: figures per contract-month from outages (by cause) and maintenance, once."""

import importlib
import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from hypothesis import given
from hypothesis import strategies as st

from contracts.models import Outage
from credits.closing import close_month, months_to_close, pack, unpack
from credits.figures import breakdown_lines
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
    o = outage(acme_contract, start, start + timedelta(minutes=500))
    assert close_month(month=OCT, now=AFTER) == 1
    m = MonthlyUptime.objects.get(contract=acme_contract, month=OCT)
    assert (m.total_minutes, m.down_minutes, m.excluded_minutes) == (44640, 500, 0)
    assert m.uptime_percent == Decimal("98.87992832")
    assert (m.tier_percent, m.credit_amount, m.currency) == (Decimal("10"), Decimal("15000.00"), "KES")
    assert not m.flagged and m.credit_kind == "refund"
    assert m.breakdown == {"outages": f"{o.pk},500,0", "maintenance": ""}  # id, minutes, excluded
    (line,) = breakdown_lines(row=m)
    assert (line.title, line.down_minutes, line.reason) == ("Storage down", 500, "Counted as downtime")
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
    reasons = {line.title: line.reason for line in breakdown_lines(row=m)}
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


def test_a_reopened_month_is_closed_again_when_another_month_of_the_contract_is_closed(acme_contract):
    sep = date(2026, 9, 1)
    close_month(month=sep, now=AFTER)
    close_month(month=OCT, now=AFTER)
    MonthlyUptime.objects.filter(month=OCT).update(status="reopened")
    assert close_month(month=OCT, now=AFTER) == 1
    assert set(MonthlyUptime.objects.values_list("month", "status")) == {(sep, "closed"), (OCT, "closed")}


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
    # 5 chunks of at most 10 contracts: a handful of queries each, not one per contract (each chunk
    # reads the month's outages and windows again, under the month's lock: credits.closing._close_chunk).
    with django_assert_max_num_queries(5 * 10 + 5):
        assert close_month(month=OCT, now=AFTER) == 45


def test_maintenance_keeping_the_rules_is_excluded_and_the_rest_is_downtime(acme_contract):
    from contracts.maintenance.services import window_publish
    from contracts.maintenance.sweep import maintenance_notices_send_due

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
    assert m.breakdown == {"outages": "", "maintenance": f"{w.pk},60,60"}  # id, minutes kept, minutes counted
    (line,) = breakdown_lines(row=m)
    assert (line.kind, line.title, line.start, line.end) == ("maintenance", "Storage upgrade", w.starts_at, w.ends_at)
    assert (line.excluded_minutes, line.down_minutes) == (60, 60)
    assert line.reason == "Partly within the maintenance rules: the rest counts as downtime"


# --- The stored breakdown: compact, read at display time -----------------------------------------
def many_outages(contract, n, cause="unplanned"):
    start = datetime(2026, 10, 3, 2, 0, tzinfo=NBO)
    return [
        outage(contract, start + timedelta(hours=2 * i), start + timedelta(hours=2 * i, minutes=10), cause, f"Disk {i}")
        for i in range(n)
    ]


def test_the_breakdown_stores_ids_and_minutes_only_and_is_shared_by_contracts_alike(acme, acme_contract):
    twin = ContractFactory(organisation=acme, services=list(acme_contract.services.all()))
    outages = many_outages(acme_contract, 250)
    close_month(month=OCT, now=AFTER)
    rows = list(MonthlyUptime.objects.order_by("contract_id"))
    assert [r.contract_id for r in rows] == [acme_contract.pk, twin.pk]
    assert (
        rows[0].breakdown
        == rows[1].breakdown
        == {"outages": ";".join(f"{o.pk},10,0" for o in outages), "maintenance": ""}
    )
    stored = json.dumps(rows[0].breakdown)
    assert "Disk" not in stored and "unplanned" not in stored and "2026-10" not in stored
    assert len(stored) < 250 * 12  # ~9 bytes a line, against ~250 with titles, causes, times and reasons


def test_a_breakdown_reads_titles_causes_and_times_in_a_fixed_number_of_queries(
    acme_contract, django_assert_num_queries
):
    from contracts.maintenance.services import window_publish
    from contracts.maintenance.sweep import maintenance_notices_send_due

    start = datetime(2026, 10, 20, 23, 0, tzinfo=NBO)
    w = window_publish(
        title="Storage upgrade", description="x", services=acme_contract.services.all(),
        starts_at=start, ends_at=start + timedelta(hours=1), now=datetime(2026, 10, 1, 9, 0, tzinfo=NBO),
    )  # fmt: skip
    maintenance_notices_send_due(now=w.notice_due_at)
    many_outages(acme_contract, 3, cause="ddos")
    close_month(month=OCT, now=AFTER)
    small = MonthlyUptime.objects.get()
    with django_assert_num_queries(2):  # the outages, the windows
        lines = breakdown_lines(row=small)
    assert [(line.kind, line.title) for line in lines] == [
        ("outage", "Disk 0"), ("outage", "Disk 1"), ("outage", "Disk 2"), ("maintenance", "Storage upgrade"),
    ]  # fmt: skip
    assert (lines[0].cause_label, lines[0].excluded_minutes, lines[0].down_minutes) == (
        "Distributed denial of service attack", 10, 0,
    )  # fmt: skip
    assert lines[0].reason == "Excluded: Distributed denial of service attack"
    assert lines[0].start == datetime(2026, 10, 3, 2, 0, tzinfo=NBO) and not lines[0].ongoing
    assert lines[3].reason == "Within the maintenance rules: excluded" and lines[3].excluded_minutes == 60

    MonthlyUptime.objects.all().delete()
    many_outages(acme_contract, 60, cause="ddos")
    close_month(month=OCT, now=AFTER)
    large = MonthlyUptime.objects.get()
    with django_assert_num_queries(2):
        assert len(breakdown_lines(row=large)) == 3 + 60 + 1


def test_a_month_without_outages_or_windows_reads_nothing_more(acme_contract, django_assert_num_queries):
    close_month(month=OCT, now=AFTER)
    m = MonthlyUptime.objects.get()
    with django_assert_num_queries(0):
        assert breakdown_lines(row=m) == ()


def test_lines_show_the_outage_as_it_stands_and_the_minutes_as_closed(acme_contract):
    start = datetime(2026, 10, 10, 2, 0, tzinfo=NBO)
    kept, gone = (
        outage(acme_contract, start, start + timedelta(minutes=30)),
        outage(acme_contract, start + timedelta(days=1), start + timedelta(days=1, minutes=20), title="Gone"),
    )
    close_month(month=OCT, now=AFTER)
    Outage.objects.filter(pk=kept.pk).update(title="Storage down (corrected title)", ends_at=None)
    gone_pk = gone.pk
    gone.delete()
    lines = breakdown_lines(row=MonthlyUptime.objects.get())
    assert [(line.title, line.down_minutes, line.end, line.ongoing) for line in lines] == [
        ("Storage down (corrected title)", 30, None, True),  # still to be reopened: the minutes are as closed
        (f"Outage {gone_pk} (deleted)", 20, None, False),
    ]


@given(st.lists(st.tuples(*[st.integers(min_value=0, max_value=2**63 - 1)] * 3), max_size=300))
def test_pack_and_unpack_are_inverses(lines):
    assert unpack(pack(lines)) == lines


def _migration():
    return importlib.import_module("credits.migrations.0002_compact_breakdown")


def test_the_migration_converts_verbose_breakdowns_and_back(acme_contract):
    from django.apps import apps

    from contracts.maintenance.services import window_publish
    from contracts.maintenance.sweep import maintenance_notices_send_due

    start = datetime(2026, 10, 10, 2, 0, tzinfo=NBO)
    o = outage(acme_contract, start, start + timedelta(minutes=120), cause="ddos", title="DDoS")
    w = window_publish(
        title="Storage upgrade", description="x", services=acme_contract.services.all(),
        starts_at=datetime(2026, 10, 20, 5, 0, tzinfo=NBO), ends_at=datetime(2026, 10, 20, 7, 0, tzinfo=NBO),
        now=datetime(2026, 10, 1, 9, 0, tzinfo=NBO),
    )  # fmt: skip
    maintenance_notices_send_due(now=w.notice_due_at)
    close_month(month=OCT, now=AFTER)
    o.refresh_from_db()  # its times in UTC, as the database gives them
    compact = MonthlyUptime.objects.get().breakdown
    assert compact == {"outages": f"{o.pk},120,1", "maintenance": f"{w.pk},60,60"}
    close_month(month=date(2026, 9, 1), now=AFTER)  # nothing happened in September
    empty = MonthlyUptime.objects.get(month=date(2026, 9, 1))
    assert empty.breakdown == {"outages": "", "maintenance": ""}

    _migration().verbose(apps, None)  # backwards: the list the month-end run used to write
    assert MonthlyUptime.objects.get(pk=empty.pk).breakdown == []
    assert MonthlyUptime.objects.exclude(pk=empty.pk).get().breakdown == [
        {
            "kind": "outage", "id": o.pk, "title": "DDoS", "cause": "ddos",
            "cause_label": "Distributed denial of service attack", "start": o.starts_at.isoformat(),
            "end": o.ends_at.isoformat(), "minutes": 120, "excluded": True,
            "reason": "Excluded: Distributed denial of service attack",
        },
        {
            "kind": "maintenance", "id": w.pk, "title": "Storage upgrade", "minutes_kept": 60, "minutes_counted": 60,
            "reason": "Partly within the maintenance rules: the rest counts as downtime",
        },
    ]  # fmt: skip
    MonthlyUptime.objects.filter(pk=empty.pk).update(breakdown=[])
    _migration().compact(apps, None)
    assert MonthlyUptime.objects.exclude(pk=empty.pk).get().breakdown == compact
    assert MonthlyUptime.objects.get(pk=empty.pk).breakdown == {"outages": "", "maintenance": ""}
    _migration().compact(apps, None)  # again: nothing left to convert
    assert MonthlyUptime.objects.exclude(pk=empty.pk).get().breakdown == compact


@pytest.mark.parametrize("month", ["0001-01", "9999-12", "2026-13", "October"])
def test_the_command_refuses_a_month_it_cannot_close_with_a_clear_error(month):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="--month must be YYYY-MM between 1970-01 and 9998-12"):
        call_command("close_month", "--month", month, verbosity=0)


# --- A contract that starts or ends within the month is judged on its own part of it ------------
def test_an_outage_before_the_contract_started_earns_no_credit(acme):
    contract = ContractFactory(organisation=acme, reference="KAL-0100", starts_on=date(2026, 10, 20))
    # 1,000 minutes down on 5 October, two weeks before the contract began.
    outage(
        contract,
        datetime(2026, 10, 5, 2, 0, tzinfo=NBO),
        datetime(2026, 10, 5, 2, 0, tzinfo=NBO) + timedelta(minutes=1000),
    )
    assert close_month(month=OCT, now=AFTER) == 1
    m = MonthlyUptime.objects.get(contract=contract, month=OCT)
    # 20 October 00:00 to 1 November 00:00 Nairobi: 12 days.
    assert (m.period_start, m.period_end) == (datetime(2026, 10, 20, tzinfo=NBO), datetime(2026, 11, 1, tzinfo=NBO))
    assert (m.total_minutes, m.down_minutes, m.excluded_minutes) == (12 * 24 * 60, 0, 0)
    assert (m.uptime_percent, m.tier_percent, m.credit_amount) == (Decimal(100), None, None)
    assert m.breakdown == {"outages": "", "maintenance": ""}  # the outage is no line of the contract's month


def test_an_outage_after_the_contract_ended_earns_no_credit_and_one_within_counts_on_its_minutes(acme):
    contract = ContractFactory(
        organisation=acme, reference="KAL-0101", starts_on=date(2026, 1, 1), ends_on=date(2026, 10, 10)
    )
    outage(contract, datetime(2026, 10, 25, 2, 0, tzinfo=NBO), datetime(2026, 10, 25, 18, 40, tzinfo=NBO))
    # 300 minutes on its last day, 23:00 on the 10th to 04:00 on the 11th: 60 of them within its term.
    outage(contract, datetime(2026, 10, 10, 23, 0, tzinfo=NBO), datetime(2026, 10, 11, 4, 0, tzinfo=NBO))
    close_month(month=OCT, now=AFTER)
    m = MonthlyUptime.objects.get(contract=contract, month=OCT)
    assert (m.period_start, m.period_end) == (datetime(2026, 10, 1, tzinfo=NBO), datetime(2026, 10, 11, tzinfo=NBO))
    assert (m.total_minutes, m.down_minutes) == (10 * 24 * 60, 60)
    assert m.credit_amount is None  # 60 of 14,400 minutes: 99.58%, a gap of Kaluari's table
    (line,) = breakdown_lines(row=m)
    assert line.down_minutes == 60


def test_a_part_month_earns_the_tiers_percent_of_the_months_invoice_as_recorded(acme, acme_contract):
    # Two contracts on the same SLA and service: the one that started on the 20th is not given the
    # whole month's uptime the other computed (nor the other its part month's).
    late = ContractFactory(
        organisation=acme,
        reference="KAL-0102",
        starts_on=date(2026, 10, 20),
        services=list(acme_contract.services.all()),
    )
    # 500 minutes down on the 25th: 98.88% of October for the whole month, 97.11% of the 17,280 minutes from the 20th.
    start = datetime(2026, 10, 25, 2, 0, tzinfo=NBO)
    outage(acme_contract, start, start + timedelta(minutes=500))
    close_month(month=OCT, now=AFTER)
    whole = MonthlyUptime.objects.get(contract=acme_contract, month=OCT)
    part = MonthlyUptime.objects.get(contract=late, month=OCT)
    assert (whole.total_minutes, whole.tier_percent, whole.credit_amount) == (44640, Decimal(10), Decimal("15000.00"))
    assert (part.total_minutes, part.down_minutes) == (17280, 500)
    # 25% of the month's invoice as recorded (finance sets a part month's invoice; the product does not prorate).
    assert (part.tier_percent, part.invoice_amount, part.credit_amount) == (
        Decimal(25),
        Decimal(150000),
        Decimal("37500.00"),
    )


def test_live_figures_and_a_claims_preview_read_the_same_part_month(acme):
    from credits.figures import contract_month_figures, month_so_far

    contract = ContractFactory(organisation=acme, reference="KAL-0103", starts_on=date(2026, 10, 20))
    outage(contract, datetime(2026, 10, 5, 2, 0, tzinfo=NBO), datetime(2026, 10, 5, 18, 40, tzinfo=NBO))
    so_far = month_so_far(contract=contract, now=datetime(2026, 10, 21, 0, 0, tzinfo=NBO))
    assert (so_far.period_start, so_far.elapsed_minutes, so_far.down_minutes) == (
        datetime(2026, 10, 20, tzinfo=NBO),
        1440,
        0,
    )
    before_start = month_so_far(contract=contract, now=datetime(2026, 10, 6, 0, 0, tzinfo=NBO))
    assert (before_start.elapsed_minutes, before_start.down_minutes) == (0, 0)
    preview = contract_month_figures(contract=contract, month=OCT, now=AFTER)  # not closed yet
    assert preview.state == preview.NOT_CLOSED
    assert (preview.total_minutes, preview.down_minutes, preview.credit_amount) == (17280, 0, None)
