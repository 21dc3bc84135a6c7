"""SLA attainment per priority and month: the pure rules (tickets.attainment), a property that
every counted ticket lands in exactly one outcome per clock, agreement with the crossings the
sweeps record, and the selector's fixed query count. Frozen clocks throughout."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from hypothesis import given
from hypothesis import strategies as st

from tickets.attainment import ALL, Attainment, Outcome, TicketTimes, attainment, outcome, totals
from tickets.models import SLACrossing, Ticket
from tickets.selectors import contract_attainment
from tickets.services import ticket_exclude, ticket_open, ticket_reply, ticket_set_status
from tickets.sweeps import check_sla_deadlines

from .factories import ContractFactory

NBO = ZoneInfo("Africa/Nairobi")
T0 = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)


def times(filed=T0, priority="P1", excluded=False, replied=None, resolved=None, due=H / 4, target=H, limit=H):
    return TicketTimes(
        filed_at=filed, priority=priority, excluded=excluded,
        first_response_at=replied, first_response_due=filed + due if due is not None else None,
        resolved_at=resolved, resolution_target_at=filed + target if target is not None else None,
        resolution_due=filed + limit if limit is not None else None,
    )  # fmt: skip


# --- One clock ------------------------------------------------------------------------------------
def test_a_clock_is_missed_once_its_deadline_passes_undone_and_met_once_done_in_time():
    deadline = T0 + H
    assert outcome(deadline, None, now=T0) is Outcome.PENDING
    assert outcome(deadline, None, now=deadline) is Outcome.MISSED  # the deadline itself is too late
    assert outcome(deadline, deadline, now=deadline) is Outcome.MET  # done at the deadline: in time
    assert outcome(deadline, deadline + timedelta(seconds=1), now=T0 + 2 * H) is Outcome.MISSED
    assert outcome(deadline, T0, now=T0 + 2 * H) is Outcome.MET
    # None: paused with no end in sight (resolved before the deadline came): never missed.
    assert outcome(None, None, now=T0 + 99 * H) is Outcome.PENDING
    assert outcome(None, T0, now=T0 + 99 * H) is Outcome.MET


def test_a_ticket_resolved_before_anyone_replied_in_time_needed_no_reply():
    quick = times(resolved=T0 + timedelta(minutes=10))
    slow = times(resolved=T0 + timedelta(minutes=50))
    rows = attainment([quick, slow], tz="UTC", now=T0 + 2 * H)
    a = rows[date(2026, 10, 1), "P1"]
    assert (a.response_met, a.response_missed) == (1, 1)
    assert (a.resolution_met, a.resolution_missed, a.within_limit, a.breached) == (2, 0, 2, 0)


def test_target_and_limit_are_judged_apart():
    # Kaluari P3: target 12 h, limit 24 h. Resolved after 18 h: target missed, limit kept.
    t = times(priority="P3", due=4 * H, target=12 * H, limit=24 * H, replied=T0 + H, resolved=T0 + 18 * H)
    a = attainment([t], tz="UTC", now=T0 + 30 * H)[date(2026, 10, 1), "P3"]
    assert (a.response_met, a.resolution_met, a.resolution_missed, a.within_limit, a.breached) == (1, 0, 1, 1, 0)
    assert (a.response_rate, a.resolution_rate, a.limit_rate) == (Decimal("100.00"), Decimal("0.00"), Decimal("100.00"))


def test_a_recorded_crossing_stands_where_the_columns_moved_since():
    # Kaluari P3 answered and resolved in time by its columns now, after a recompute moved its
    # deadlines (a closed day added): the sweep had recorded each crossing, and they stand.
    kw = {"priority": "P3", "due": 4 * H, "target": 12 * H, "limit": 24 * H, "replied": T0 + H, "resolved": T0 + 6 * H}
    stood = [
        TicketTimes(**{**vars(times(**kw)), "response_breached": True}),
        TicketTimes(**{**vars(times(**kw)), "target_passed": True}),
        TicketTimes(**{**vars(times(**kw)), "resolution_breached": True}),
    ]
    a = attainment(stood, tz="UTC", now=T0 + 30 * H)[date(2026, 10, 1), "P3"]
    assert (a.response_met, a.response_missed) == (2, 1)
    assert (a.resolution_met, a.resolution_missed) == (1, 2)  # a limit breached passed its target too
    assert (a.within_limit, a.breached) == (2, 1)


def test_excluded_tickets_are_counted_apart_and_in_no_rate():
    rows = attainment([times(excluded=True), times(replied=T0 + H)], tz="UTC", now=T0 + 2 * H)
    a = rows[date(2026, 10, 1), "P1"]
    assert (a.filed, a.excluded, a.counted) == (2, 1, 1)
    assert (a.response_met, a.response_missed, a.response_rate) == (0, 1, Decimal("0.00"))


def test_months_are_the_contract_timezone_s_and_nothing_decided_has_no_rate():
    late_utc = datetime(2026, 9, 30, 22, 30, tzinfo=UTC)  # 01:30 on 1 October in Nairobi
    rows = attainment([times(filed=late_utc)], tz="Africa/Nairobi", now=late_utc + timedelta(minutes=5))
    assert list(rows) == [(date(2026, 10, 1), "P1")]
    a = rows[date(2026, 10, 1), "P1"]
    assert a.response_pending == 1 and a.response_rate is None and a.limit_rate is None
    assert attainment([times(filed=late_utc)], tz="UTC", now=late_utc).keys() == {(date(2026, 9, 1), "P1")}


def test_totals_sum_every_priority():
    rows = attainment(
        [times(replied=T0), times(priority="P2", due=H, target=4 * H, limit=4 * H)], tz="UTC", now=T0 + 5 * H
    )
    total = totals(rows.values(), month=date(2026, 10, 1))
    assert total.priority == ALL and total.filed == 2
    assert (total.response_met, total.response_missed, total.response_rate) == (1, 1, Decimal("50.00"))


moments = st.integers(min_value=0, max_value=48 * 60).map(lambda m: T0 + timedelta(minutes=m))
optional = st.one_of(st.none(), moments)


@given(st.lists(st.tuples(st.booleans(), optional, optional, optional, optional, optional), max_size=30), moments)
def test_every_counted_ticket_lands_in_exactly_one_outcome_per_clock(specs, now):
    tickets = [
        TicketTimes(T0, "P1", excluded, replied, due, resolved, target, limit)
        for excluded, replied, due, resolved, target, limit in specs
    ]
    rows = attainment(tickets, tz="UTC", now=now)
    for a in rows.values():
        assert a.response_met + a.response_missed + a.response_pending == a.counted
        assert a.resolution_met + a.resolution_missed + a.resolution_pending == a.counted
        assert a.within_limit + a.breached <= a.counted
        for rate in (a.response_rate, a.resolution_rate, a.limit_rate):
            assert rate is None or Decimal(0) <= rate <= Decimal(100)
    assert sum(a.filed for a in rows.values()) == len([t for t in tickets if t.filed_at <= now])


def test_an_empty_row_has_no_rates():
    assert Attainment(None, ALL).response_rate is None


# --- From stored tickets --------------------------------------------------------------------------
def _file(contract, user, at, priority="P1"):
    with time_machine.travel(at, tick=False):
        return ticket_open(
            user=user, contract=contract, service=contract.services.get(), priority=priority,
            subject="Backups fail", description="Nothing backs up.",
        )  # fmt: skip


def _at(moment, fn, **kwargs):
    with time_machine.travel(moment, tick=False):
        return fn(**kwargs, now=moment)


@pytest.mark.django_db
def test_stored_tickets_agree_with_the_crossings_the_sweep_records(acme_contract, alice, sam):
    start = datetime(2026, 10, 5, 10, 0, tzinfo=NBO)
    on_time = _file(acme_contract, alice, start)  # P1: reply within 15 min, resolve within 1 h
    _at(start + timedelta(minutes=10), ticket_reply, ticket=on_time, author=sam, body="On it.")
    _at(start + timedelta(minutes=40), ticket_set_status, ticket=on_time, actor=sam, status=Ticket.Status.RESOLVED)
    late = _file(acme_contract, alice, start)
    _at(start + timedelta(minutes=20), ticket_reply, ticket=late, author=sam, body="Sorry for the wait.")
    forgotten = _file(acme_contract, alice, start)
    excluded = _file(acme_contract, alice, start)
    _at(
        start + timedelta(minutes=5), ticket_exclude, ticket=excluded, actor=sam,
        cause=acme_contract.sla.versions.get().exclusion_causes[0], reason="Customer modified the agent.",
    )  # fmt: skip
    now = start + 2 * H
    with time_machine.travel(now, tick=False):
        check_sla_deadlines()

    a = contract_attainment(contracts=[acme_contract], first=date(2026, 10, 1), last=date(2026, 10, 1), now=now)[
        acme_contract.pk
    ][date(2026, 10, 1), "P1"]
    assert (a.filed, a.excluded) == (4, 1)
    assert (a.response_met, a.response_missed, a.response_pending) == (1, 2, 0)
    assert (a.resolution_met, a.resolution_missed, a.within_limit, a.breached) == (1, 2, 1, 2)
    assert a.response_rate == Decimal("33.33")
    # A breach the sweep recorded stands when a recompute moves the deadline past the reply (a
    # closed day added to the calendar): the statement agrees with the ticket's page.
    Ticket.objects.filter(pk=late.pk).update(first_response_due=start + timedelta(minutes=30))
    b = contract_attainment(contracts=[acme_contract], first=date(2026, 10, 1), last=date(2026, 10, 1), now=now)[
        acme_contract.pk
    ][date(2026, 10, 1), "P1"]
    assert (b.response_met, b.response_missed) == (1, 2)
    # The same verdicts as the breaches the sweep recorded, ticket by ticket.
    breached = set(SLACrossing.objects.filter(kind="breach").values_list("ticket_id", "clock"))
    assert breached == {
        (late.pk, "first_response"), (late.pk, "resolution"),
        (forgotten.pk, "first_response"), (forgotten.pk, "resolution"),
    }  # fmt: skip


@pytest.mark.django_db
def test_the_selector_reads_months_in_range_in_a_fixed_number_of_queries(acme, alice, django_assert_num_queries):
    contracts = [ContractFactory(organisation=acme, contacts=[alice])]
    september = datetime(2026, 9, 10, 10, 0, tzinfo=NBO)
    october = datetime(2026, 10, 10, 10, 0, tzinfo=NBO)
    _file(contracts[0], alice, september)
    _file(contracts[0], alice, october, priority="P2")
    now = october + 3 * H
    with django_assert_num_queries(3):
        small = contract_attainment(contracts=contracts, first=date(2026, 10, 1), last=date(2026, 10, 1), now=now)
    assert list(small[contracts[0].pk]) == [(date(2026, 10, 1), "P2")]

    contracts += [ContractFactory(organisation=acme, contacts=[alice]) for _ in range(3)]
    for c in contracts:
        for i in range(4):
            _file(c, alice, october + i * H, priority="P3")
    with django_assert_num_queries(3):
        big = contract_attainment(contracts=contracts, first=date(2026, 9, 1), last=date(2026, 10, 1), now=now)
    assert big[contracts[0].pk][date(2026, 9, 1), "P1"].filed == 1
    assert all(big[c.pk][date(2026, 10, 1), "P3"].filed == 4 for c in contracts)
