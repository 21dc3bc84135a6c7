"""Drills 3 and 4: the broker loses everything it held; the database restarts under a sweep."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from .conftest import wait_until

pytestmark = [pytest.mark.drill, pytest.mark.servers]

SWEEPS = {
    "tickets-escalate": "tickets.tasks.escalate_due_tickets",
    "tickets-sla-deadlines": "tickets.tasks.check_sla_deadlines",
    "maintenance-notices": "contracts.tasks.send_maintenance_notices",
}


def assert_each_stored_message_arrived_once(drill, doubled_allowed=frozenset()):
    box = drill.outbox()
    stored = {mid: to for mid, to, _, _ in box.values()}
    counts = Counter(drill.sink.message_ids())
    assert set(counts) == set(stored), "a stored message is missing from the sink, or a stranger arrived"
    assert all(status == "sent" for _, _, status, _ in box.values())
    assert all(stored[mid] == to for mid, to, _ in drill.sink.received)
    doubled = {mid for mid, n in counts.items() if n > 1}
    assert doubled <= doubled_allowed, f"sent twice: {doubled - doubled_allowed}"
    assert max(counts.values()) <= 2
    return doubled


def test_redis_shut_down_without_saving_mid_batch_loses_nothing_the_next_sweep_cannot_find(drill):
    """Drill 3. 100 maintenance notices due (10 contracts x 10 contacts) and 10 P1 tickets filed two
    hours ago (overdue escalations and breaches). A prefork worker with one child runs the notice
    sweep; while its outbox batch is going out, the escalation and deadline sweeps wait in Redis
    behind it. Then Redis gets SHUTDOWN NOSAVE: those queued sweeps (and every other message it
    held) are gone; it is started again, empty. The batch in flight finishes (it needs only the
    database and SMTP), the worker reconnects, and one round of sweeps (what beat sends each
    minute: each sweep once, then the outbox sweep) finds every pending escalation and notice in
    the database: afterwards nothing is due, each ticket escalated once, each email sent once with
    its stored Message-ID. About 30 s."""
    worker = drill.worker(concurrency=1, wait=False)
    customers, window, tickets = drill.seed(
        ("customers", {"contracts": 10, "contacts": 10}),
        ("window", {}),
        ("tickets", {"count": 10, "filed_minutes_ago": 120, "service": "drill-desk"}),
    )
    worker.wait_ready()
    drill.send_task(SWEEPS["maintenance-notices"])
    wait_until(lambda: sum("maintenance" in s for *_, s in drill.sink.received) >= 20, 60, "notices going out")
    drill.send_task(SWEEPS["tickets-escalate"])
    drill.send_task(SWEEPS["tickets-sla-deadlines"])
    queued = drill.queued()
    sent_at_loss = len(drill.sink.received)
    drill.redis.shutdown_nosave()
    print(f"drill 3: Redis lost {queued} queued message(s) with {sent_at_loss} emails sent")
    assert queued >= 2  # at least the two sweeps waiting behind the batch
    assert drill.db.value("SELECT count(*) FROM tickets_ticket WHERE next_escalation_due <= now()") == 10
    time.sleep(2)
    drill.redis.restart()
    wait_until(lambda: worker.text(since_start=True).count("Connected to redis") >= 2, 60, "the worker to reconnect")
    # The batch that was running when Redis died finishes on its own.
    wait_until(lambda: drill.db.value("SELECT count(*) FROM portal_outboxmessage WHERE status = 'sending'") == 0,
               60, "the batch in flight to finish")  # fmt: skip
    before = drill.heartbeat_runs()

    for task in SWEEPS.values():  # one round, as beat would send it
        drill.send_task(task)
    wait_until(lambda: all(drill.heartbeat_runs().get(n, 0) > before.get(n, 0) for n in SWEEPS), 60, "one round")
    runs = drill.heartbeat_runs()
    assert all(runs[n] == before.get(n, 0) + 1 for n in SWEEPS), runs
    # Everything due was found from the database by that one round.
    assert drill.db.value("SELECT count(*) FROM tickets_ticket WHERE next_escalation_due <= now()") == 0
    assert drill.db.value("SELECT count(*) FROM tickets_ticket WHERE next_sla_check_at <= now()") == 0
    assert drill.db.value("SELECT count(*) FROM contracts_maintenancewindow WHERE notice_due_at <= now()") == 0
    escalations = drill.db.rows(
        "SELECT ticket_id, count(*) FROM tickets_ticketevent WHERE kind = 'escalated' GROUP BY ticket_id"
    )
    assert sorted(escalations) == [(t, 1) for t in sorted(tickets["tickets"])]
    assert drill.db.value("SELECT count(*) FROM contracts_maintenancenotice WHERE window_id = %s",
                          [window["windows"][0]]) == 10  # fmt: skip
    # ... and its emails go out with the next outbox sweep.
    outbox_before = drill.heartbeat_runs().get("outbox-sweep", 0)
    drill.send_task("portal.core.tasks.outbox_sweep")
    wait_until(
        lambda: drill.db.value("SELECT count(*) FROM portal_outboxmessage WHERE status <> 'sent'") == 0,
        60,
        "every email sent",
    )
    drill.wait_idle()
    assert drill.heartbeat_runs()["outbox-sweep"] <= outbox_before + 3  # this one and the sweeps' own
    assert_each_stored_message_arrived_once(drill)
    recipients = {to for _, to, s in drill.sink.received if "maintenance" in s.lower()}
    assert recipients == set(customers["recipients"])


def test_postgresql_restarted_mid_sweep_leaves_no_row_claimed_past_its_lease_and_loses_nothing(drill, pg_cluster):
    """Drill 4. 150 notices (15 contracts x 10 contacts) going out through a prefork worker (2
    children) and beat (the product's schedule compressed 20x: a sweep every 3 s); the outbox
    lease is 5 s. While the batches are being sent, PostgreSQL gets an immediate shutdown (every
    connection cut, crash recovery on start) and is started again. The tasks that were running
    fail with OperationalError and retry; rows claimed at the cut stay "sending" until their lease
    runs out and the next sweep takes them. Checked twice a second throughout: no row is ever
    claimed for longer than its lease plus two sweep periods; at the end every row is sent and
    every recipient has the notice, a row sent twice only if it was claimed at the cut, both
    copies with the stored Message-ID. About 40 s."""
    drill.lease_seconds = 5
    worker, beat = drill.worker(concurrency=2, wait=False), drill.beat(wait=False)
    customers, _ = drill.seed(("customers", {"contracts": 15, "contacts": 10}), ("window", {}))
    worker.wait_ready()
    beat.wait_ready()
    wait_until(lambda: len(drill.sink.received) >= 40, 90, "notices going out")
    arrived_before = set(drill.sink.message_ids())
    claimed_at_cut = {
        mid for mid, _, status, _ in drill.outbox().values() if status == "sending"
    }  # the rows some sender holds
    pg_cluster.restart("immediate")
    # The senders go on while the cut is being made: a row claimed after the read above and in
    # flight at the cut (accepted by the SMTP server, its "sent" lost) arrived in between.
    claimed_at_cut |= set(drill.sink.message_ids()) - arrived_before
    print(f"drill 4: PostgreSQL restarted after {len(drill.sink.received)} emails; {len(claimed_at_cut)} claimed")

    worst = timedelta(0)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        now = datetime.now(UTC)
        leases = drill.db.rows("SELECT lease_until FROM portal_outboxmessage WHERE status = 'sending'")
        worst = max([worst, *(now - lease for (lease,) in leases)])
        pending = drill.db.value("SELECT count(*) FROM portal_outboxmessage WHERE status <> 'sent'")
        if pending == 0 and len(drill.outbox()) >= 150:
            break
        time.sleep(0.5)
    print(f"drill 4: longest a row stayed claimed past its lease: {worst.total_seconds():.1f} s")
    assert worst <= timedelta(seconds=2 * 3 + 2), "a row stayed claimed past its lease"
    time.sleep(3)
    doubled = assert_each_stored_message_arrived_once(drill, claimed_at_cut)
    print(f"drill 4: {len(doubled)} duplicate(s), all claimed at the cut")
    assert {to for _, to, _ in drill.sink.received} == set(customers["recipients"])
