"""Drills 1 and 2: the worker killed with SIGKILL, its whole process group in the middle of 1,000
maintenance notices, or one pool child in the middle of a task."""

from __future__ import annotations

import os
import random
import re
import signal
import threading
import time
from collections import Counter

import pytest

from .conftest import wait_until

pytestmark = [pytest.mark.drill, pytest.mark.servers]


@pytest.mark.drill_long
def test_kill_9_of_the_worker_group_during_1000_notices_loses_none_and_doubles_only_those_in_flight(drill):
    """Drill 1. 100 customers with 10 contacts each on one service; one downtime window whose
    notice is due at once: 1,000 notices. A prefork worker (2 children) and beat (the product's
    schedule, time compressed 20x: tests/drills/fastbeat.py) send them; at a random moment (after
    between 1 and 950 have reached the SMTP sink; the seed is printed, DRILL_SEED replays it) the
    worker's whole process group gets SIGKILL, and the worker is started again.

    Every recipient gets the notice; a message reaches the sink twice only if its row was claimed
    (status "sending") when the worker died, at most one per pool child (the one between the
    SMTP 250 and the row's update), and both copies carry the Message-ID the outbox stored when the
    row was written. About a minute."""
    seed = int(os.environ.get("DRILL_SEED", random.randrange(1_000_000)))
    print(f"drill 1: DRILL_SEED={seed}")
    kill_after = random.Random(seed).randint(1, 950)
    worker, beat = drill.worker(concurrency=2, wait=False), drill.beat(wait=False)
    customers, window = drill.seed(("customers", {"contracts": 100, "contacts": 10}), ("window", {}))
    expected = set(customers["recipients"])
    assert len(expected) == 1000
    worker.wait_ready()
    beat.wait_ready()
    wait_until(lambda: len(drill.sink.received) >= kill_after, 120, f"{kill_after} notices in the sink", 0.005)
    worker.kill()
    at_kill = len(drill.sink.received)
    box = drill.outbox()
    in_flight = {mid for mid, _, status, _ in box.values() if status == "sending"}
    print(f"drill 1: killed after {at_kill} messages; {len(in_flight)} rows claimed at the kill")
    assert at_kill < 1000, "the drill killed the worker after everything was sent: nothing was proven"

    worker.restart()
    wait_until(
        lambda: (
            set(drill.sink.message_ids()) >= {mid for mid, *_ in drill.outbox().values()}
            and len(drill.outbox()) >= 1000
        ),
        120,
        "every notice in the sink after the restart",
        0.5,
    )
    time.sleep(2 * 3)  # two more sweeps: nothing else may arrive
    box = drill.outbox()
    notices = {k: v for k, v in box.items() if k.startswith(f"maintenance:{window['windows'][0]}:")}
    assert len(notices) == 1000
    stored = {mid: to for mid, to, _, _ in notices.values()}
    # The product's other sweeps write emails of their own into the same outbox (the quarterly
    # review of contacts to the customers' admins): every message in the sink is one the outbox
    # stored, and the notices are judged apart.
    assert {mid for mid, _, _ in drill.sink.received} <= {mid for mid, *_ in box.values()}
    received = [(mid, to, n) for mid, to, n in drill.sink.received if mid in stored]
    assert {to for _, to, _ in received} == expected  # every recipient has the notice
    assert {mid for mid, _, _ in received} == set(stored)  # every notice reached the sink
    assert all(stored[mid] == to for mid, to, _ in received)  # ... and went to its row's recipient
    assert all(status == "sent" for _, _, status, _ in notices.values())
    doubled = {mid for mid, n in Counter(mid for mid, _, _ in received).items() if n > 1}
    print(f"drill 1: {len(doubled)} duplicate(s): {sorted(doubled)}")
    assert doubled <= in_flight, "a message not in flight at the kill was sent twice"
    assert len(doubled) <= worker.concurrency
    assert max(Counter(mid for mid, _, _ in received).values()) <= 2


def test_a_pool_child_killed_mid_task_runs_the_task_again(drill):
    """Drill 2. A prefork worker with one child sends one email; the SMTP server hangs on the DATA
    command (the deliberately slow task: outbox_send waiting for the 250). Once the row's lease
    (2 s here) has passed, the child gets SIGKILL. acks_late + reject_on_worker_lost put the
    message back on the queue; the worker's new child runs the same task (same task id) again,
    claims the row (its lease is over) and sends it: one message in the sink, with the Message-ID
    stored when the row was written, on the second attempt. About 15 s."""
    drill.lease_seconds = 2
    drill.sink.stall = True
    drill.sink.release = threading.Event()
    worker = drill.worker(concurrency=1, wait=False)
    (made,) = drill.seed(("outbox", {"count": 1}))  # dispatched: outbox_send(key) on the drill's queue
    (key,) = made["keys"]
    worker.wait_ready()
    assert len(worker.children()) == 1
    wait_until(lambda: drill.sink.stalled, 30, "the SMTP DATA to hang")
    time.sleep(drill.lease_seconds + 0.5)
    (child,) = worker.children()
    os.kill(child, signal.SIGKILL)
    drill.sink.release.set()  # the hung DATA now answers 451 to a dead connection

    wait_until(lambda: drill.sink.received, 30, "the email to be sent by the task's second run")
    time.sleep(1)
    ((message_id, _, status, attempts),) = [drill.outbox()[key]]
    assert [mid for mid, _, _ in drill.sink.received] == [message_id] == [drill.sink.stalled]
    assert (status, attempts) == ("sent", 2)
    log = worker.text()
    received = re.findall(r"Task portal\.core\.tasks\.outbox_send\[([0-9a-f-]+)\] received", log)
    assert len(received) == 2 and received[0] == received[1], log  # the same task, delivered again
    assert "signal 9 (SIGKILL)" in log, log
    assert len(re.findall(r"Task portal\.core\.tasks\.outbox_send\[[0-9a-f-]+\] succeeded", log)) == 1, log
    assert worker.alive() and worker.children() != [child]
