"""Drills 5 and 6: two beat schedulers at once; beat running for hours while no worker is up.

Beat runs the product's schedule with time compressed 20x (tests/drills/fastbeat.py): a one-minute
sweep every 3 s, its entries expiring after 2.75 s (the ratio of portal/celery.py, 55 s of 60).
Due times in the database are real: "two hours overdue" is a ticket filed, or a notice due, two
hours before the drill started (the services' `now` argument), never a faked clock, which could not
cross into the worker's process anyway.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import UTC, datetime

import pytest

from .conftest import wait_until
from .test_broker_and_database import assert_each_stored_message_arrived_once

pytestmark = [pytest.mark.drill, pytest.mark.servers]
PERIOD = 3.0  # a one-minute sweep under fastbeat's 0.05


def test_two_beats_at_once_send_no_duplicate_notice_escalation_or_month_close(drill):
    """Drill 5. Two beat processes (each with its own schedule file, as on two machines) run side
    by side (at least 10 s, and two sweeps past the last due item) against a prefork worker with 3 children, so that the duplicate sweeps run at
    the same moment. Meanwhile work keeps falling due: notices of 6 windows (3 due at once, 3 whose
    48-hour horizon passes during the drill), escalations of 12 P1 tickets whose 15-minute dwell
    ends one after another during the drill, and the month close of October for 20 contracts
    (both beats start it when they start). Afterwards: each notice once per window and contract,
    each escalation once per ticket and level, each contract-month closed once, every email once
    with its stored Message-ID, and no task failed. About 30 s."""
    worker = drill.worker(concurrency=3, wait=False)
    customers, _, _, tickets = drill.seed(
        ("customers", {"contracts": 20, "contacts": 2}),
        ("window", {"count": 3}),
        ("window", {"count": 3, "ahead_minutes": 48 * 60 + 5 + 0.13}),  # horizons pass ~8 s in
        ("tickets", {"count": 12, "filed_minutes_ago": 15 + 0.1, "spread_seconds": 12, "service": "drill-desk"}),
    )
    worker.wait_ready()
    beats = [drill.beat(wait=False), drill.beat(wait=False)]
    for b in beats:
        b.wait_ready()
    started = time.monotonic()
    wait_until(lambda: drill.db.value("SELECT count(*) FROM contracts_maintenancenotice") >= 6 * 20
               and drill.db.value("SELECT count(DISTINCT ticket_id) FROM tickets_ticketevent WHERE kind = 'escalated'")
               >= 12, 60, "every notice and escalation to fall due and be done")  # fmt: skip
    time.sleep(max(2 * PERIOD, 10 - (time.monotonic() - started)))  # and a few more sweeps from both
    for b in beats:
        b.stop()
    drill.wait_idle(90)
    wait_until(lambda: drill.db.value("SELECT count(*) FROM portal_outboxmessage WHERE status <> 'sent'") == 0, 60,
               "every email sent")  # fmt: skip

    for b in beats:  # both beats really ran the schedule
        assert b.text().count("Sending due task maintenance-notices") >= 2, b.text()
    log = worker.text()
    assert not re.search(r"raised unexpected|Traceback", log), log
    contracts = len(customers["contracts"]) + 1  # and the ticket customer's contract
    notices = drill.db.rows("SELECT window_id, contract_id, kind, count(*) FROM contracts_maintenancenotice "
                            "GROUP BY window_id, contract_id, kind")  # fmt: skip
    assert len(notices) == 6 * 20 and all(n == 1 for *_, n in notices)
    escalations = Counter(
        (t, data) for t, data in drill.db.rows(
            "SELECT ticket_id, data->>'to' FROM tickets_ticketevent WHERE kind = 'escalated'")
    )  # fmt: skip
    assert {t for t, _ in escalations} == set(tickets["tickets"])  # every ticket reached level 2 ...
    assert set(escalations.values()) == {1}  # ... once
    closes = drill.db.rows("SELECT contract_id, month, count(*) FROM credits_monthlyuptime GROUP BY 1, 2")
    assert len(closes) >= contracts and all(n == 1 for *_, n in closes)
    assert len(re.findall(r"credits\.tasks\.close_month\[[0-9a-f-]+\] succeeded", log)) >= 2  # ran twice at once
    assert_each_stored_message_arrived_once(drill)


LINE = re.compile(
    r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): INFO/MainProcess\] Task (\S+)\[([0-9a-f-]+)\] received$", re.M
)


def executed_before(log: str, task: str, moment: datetime) -> int:
    """How many `task` messages the worker received (and did not discard as expired) up to
    `moment`. The worker logs in UTC (the harness sets TZ=UTC)."""
    discarded = set(re.findall(r"Discarding revoked task: \S+\[([0-9a-f-]+)\]", log))
    return sum(
        1
        for stamp, name, task_id in LINE.findall(log)
        if name == task
        and task_id not in discarded
        and datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC) <= moment
    )


@pytest.mark.drill_long
def test_workers_down_for_two_hours_catch_up_within_two_sweeps_without_a_pile_of_duplicates(drill):
    """Drill 6. The simulation: 8 P1 tickets filed 2 h 5 min ago (never escalated: they are now
    due at level 3, the 15-minute and the 1-hour dwell both passed) and a maintenance window whose
    notice fell due 2 h ago, as after two hours without a worker; beat then runs for 20 s with no
    worker at all (about 35 sweep messages pile up in Redis, as 120 per sweep would in two hours),
    and only then does a worker come back, beat still running. The sweeps beat sent while nobody
    listened have expired: the worker discards them instead of running each. Every overdue
    escalation and notice is done within two sweeps of each kind, once: one escalation per ticket
    (one email naming both levels passed), one notice per contact. About a minute."""
    customers, window, tickets = drill.seed(
        ("customers", {"contracts": 5, "contacts": 3}),
        ("overdue_window", {"due_minutes_ago": 120}),
        ("tickets", {"count": 8, "filed_minutes_ago": 125, "service": "drill-desk"}),
    )
    beat = drill.beat()
    time.sleep(20)
    pile = drill.queued()
    print(f"drill 6: {pile} messages queued while no worker ran")
    assert pile >= 20
    worker = drill.worker(concurrency=2)  # beat still running

    wait_until(
        lambda: (
            drill.db.value("SELECT count(*) FROM tickets_ticket WHERE next_escalation_due <= now()") == 0
            and drill.db.value("SELECT count(*) FROM contracts_maintenancewindow WHERE notice_due_at <= now()") == 0
        ),
        60,
        "every overdue escalation and notice",
    )
    # Done within two sweeps of each kind: the work carries its sweep's moment (the event's `at`,
    # the notice's sent_at); at most two sweeps of that kind reached the worker (and were not
    # discarded) before it.
    escalated_at = drill.db.value("SELECT max(at) FROM tickets_ticketevent WHERE kind = 'escalated'")
    noticed_at = drill.db.value("SELECT max(sent_at) FROM contracts_maintenancenotice")
    log = worker.text()
    escalation_sweeps = executed_before(log, "tickets.tasks.escalate_due_tickets", escalated_at)
    notice_sweeps = executed_before(log, "contracts.tasks.send_maintenance_notices", noticed_at)
    print(f"drill 6: caught up by escalation sweep {escalation_sweeps} and notice sweep {notice_sweeps}")
    assert 1 <= escalation_sweeps <= 2 and 1 <= notice_sweeps <= 2
    time.sleep(2 * PERIOD)
    beat.stop()
    drill.wait_idle(60)
    wait_until(lambda: drill.db.value("SELECT count(*) FROM portal_outboxmessage WHERE status <> 'sent'") == 0, 60,
               "every email sent")  # fmt: skip

    log = worker.text()
    discarded = len(re.findall(r"Discarding revoked task", log))
    ran = len(re.findall(r"\] succeeded in", log))
    print(f"drill 6: the worker discarded {discarded} expired sweeps and ran {ran} tasks")
    assert discarded >= pile - 6  # all but the last tick's (not yet expired when the worker came back)
    escalations = drill.db.rows("SELECT ticket_id, data->>'to', data->>'passed' FROM tickets_ticketevent "
                                "WHERE kind = 'escalated' ORDER BY ticket_id")  # fmt: skip
    assert [(t, to, p) for t, to, p in escalations] == [(t, "3", "[2, 3]") for t in sorted(tickets["tickets"])]
    notices = drill.db.rows("SELECT contract_id, count(*) FROM contracts_maintenancenotice GROUP BY 1")
    assert len(notices) == 5 and all(n == 1 for _, n in notices)
    assert_each_stored_message_arrived_once(drill)
    told = {to for _, to, s in drill.sink.received if "maintenance" in s.lower()}
    assert told == set(customers["recipients"])
    assert (
        drill.db.value("SELECT notice_due_at FROM contracts_maintenancewindow WHERE id = %s", window["windows"]) is None
    )
