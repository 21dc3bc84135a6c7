"""A backlog of email or webhooks never holds the worker processes that the clocks need: the clock
sweeps have their own queue (portal/celery.py), the email and webhook sweeps stop after a time
budget and leave the rest to the next sweep, the sweeps a commit queues expire, and every task
has a time limit."""

from __future__ import annotations

import pytest

from portal.celery import CLOCK_TASKS, app, clocks_queue
from portal.core import delivery, leases, outbox, tasks, webhook_delivery, webhook_tasks, webhooks
from portal.core.outbox import Email, outbox_enqueue_many
from portal.core.webhooks import HookEvent, webhook_endpoint_create, webhooks_emit
from portal.models import OutboxAttempt, OutboxMessage, WebhookDelivery

DELIVERIES = {
    "portal.core.tasks.outbox_sweep",
    "portal.core.webhook_tasks.webhooks_sweep",
    "tickets.tasks.poll_mailbox",
}


def queue_of(name: str) -> str:
    return app.amqp.router.route({}, name)["queue"].name


# --- Routing ---------------------------------------------------------------------------------------
def test_every_clock_sweep_goes_to_the_clocks_queue_and_deliveries_to_the_default_one():
    default = app.conf.task_default_queue
    assert clocks_queue() == f"{default}-clocks"
    beat_tasks = {entry["task"] for entry in app.conf.beat_schedule.values()}
    # Each beat entry is a clock, a delivery or the daily housekeeping: a new sweep must be put on one side.
    assert beat_tasks - CLOCK_TASKS == DELIVERIES | {"portal.core.tasks.housekeeping_run"}
    assert queue_of("portal.core.tasks.housekeeping_run") == default
    assert beat_tasks >= CLOCK_TASKS
    for name in CLOCK_TASKS:
        assert queue_of(name) == f"{default}-clocks", name
    for name in [*DELIVERIES, "portal.core.tasks.outbox_send", "tickets.tasks.recompute_deadlines"]:
        assert queue_of(name) == default, name


def test_the_clocks_queue_follows_the_default_queue(monkeypatch):
    """Tests and drills give each run its own default queue: its clock sweeps go to its own clocks queue."""
    monkeypatch.setattr(app.conf, "task_default_queue", "test-abc")
    assert queue_of("tickets.tasks.escalate_due_tickets") == "test-abc-clocks"
    assert queue_of("portal.core.tasks.outbox_sweep") == "test-abc"


def test_beat_sends_the_clock_sweeps_to_the_clocks_queue(monkeypatch):
    """What beat publishes (app.send_task by name) is routed too."""
    published = []
    monkeypatch.setattr(
        app.amqp, "send_task_message", lambda producer, name, message, **kw: published.append((name, kw))
    )
    app.send_task("tickets.tasks.check_sla_deadlines", expires=55)
    app.send_task("portal.core.tasks.outbox_sweep", expires=55)
    routed = {name: getattr(kw["queue"], "name", kw["queue"]) for name, kw in published}
    assert routed == {
        "tickets.tasks.check_sla_deadlines": clocks_queue(),
        "portal.core.tasks.outbox_sweep": app.conf.task_default_queue,
    }


def test_every_task_has_a_soft_and_a_hard_time_limit():
    app.loader.import_default_modules()
    ours = [t for name, t in app.tasks.items() if not name.startswith("celery.")]
    assert len(ours) >= 10
    for task in ours:
        soft = task.soft_time_limit or app.conf.task_soft_time_limit
        hard = task.time_limit or app.conf.task_time_limit
        assert soft and hard and soft < hard, task.name
    assert app.tasks["credits.tasks.close_month"].time_limit >= 3000  # every month of every contract


# --- Dispatched sweeps expire ----------------------------------------------------------------------
def test_the_sweeps_a_commit_queues_expire(monkeypatch, settings):
    sent = []
    monkeypatch.setattr(tasks.outbox_sweep, "apply_async", lambda **kw: sent.append(("outbox", kw)))
    monkeypatch.setattr(webhook_tasks.webhooks_sweep, "apply_async", lambda **kw: sent.append(("webhooks", kw)))
    settings.OUTBOX_BATCH = 100
    outbox._dispatch([f"k{n}" for n in range(6000)])
    webhooks._dispatch()
    expires = tasks.DISPATCHED_SWEEP_EXPIRES
    assert sent == [
        ("outbox", {"kwargs": {"follow": True}, "expires": expires}),
        ("outbox", {"kwargs": {"follow": True}, "expires": expires}),
        ("webhooks", {"expires": expires}),
    ]
    assert 0 < expires <= 600


# --- Time budget -----------------------------------------------------------------------------------
class Stopwatch:
    """portal.core.leases.clock, moved on `step` seconds at every reading."""

    def __init__(self, step: float):
        self.now, self.step = 1000.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def emails(n: int) -> list[Email]:
    return [
        Email(key=f"fan:{i}", to=f"p{i}@sub.example", template="password_reset",
              context={"user": None, "reset_url": f"https://x.test/r/{i}"})
        for i in range(n)
    ]  # fmt: skip


@pytest.mark.django_db
def test_an_outbox_sweep_stops_after_its_budget_and_the_next_sends_the_rest_once(monkeypatch, mailoutbox):
    outbox_enqueue_many(emails=emails(7))
    monkeypatch.setattr(leases, "clock", Stopwatch(10))  # 10 s per reading: a 40 s budget allows 3 batches
    more = []
    assert delivery.outbox_send_due(batch=2, on_more=lambda: more.append(1)) == 6
    assert more == [1]  # stopped with rows left: the caller queues the next sweep
    assert OutboxMessage.objects.filter(status="pending").count() == 1
    assert not OutboxMessage.objects.filter(status="sending").exists()  # nothing claimed and left
    assert delivery.outbox_send_due(batch=2, on_more=lambda: more.append(2)) == 1
    assert more == [1]  # found nothing more: no next sweep
    assert sorted(m.to[0] for m in mailoutbox) == sorted(f"p{i}@sub.example" for i in range(7))
    assert OutboxAttempt.objects.count() == 7 and set(OutboxMessage.objects.values_list("attempts", flat=True)) == {1}


@pytest.mark.django_db
def test_a_dispatched_outbox_sweep_out_of_time_queues_the_next_and_beats_does_not(monkeypatch, mailoutbox):
    outbox_enqueue_many(emails=emails(5))
    monkeypatch.setattr(leases, "clock", Stopwatch(30))  # one batch per sweep
    monkeypatch.setattr(delivery.settings, "OUTBOX_BATCH", 2)
    queued = []
    monkeypatch.setattr(tasks.outbox_sweep, "apply_async", lambda **kw: queued.append(kw))
    assert tasks.outbox_sweep.run() == 2  # beat's: the rest waits for the next minute
    assert queued == []
    assert tasks.outbox_sweep.run(follow=True) == 2  # a fan-out's: goes on in a sweep of its own
    assert queued == [{"kwargs": {"follow": True}, "expires": tasks.DISPATCHED_SWEEP_EXPIRES}]
    assert tasks.outbox_sweep.run(follow=True) == 1
    assert tasks.outbox_sweep.run(follow=True) == 0
    assert len(queued) == 2  # the chain ends once nothing is due
    assert len(mailoutbox) == 5 and len({m.extra_headers["Message-ID"] for m in mailoutbox}) == 5


@pytest.mark.django_db
def test_a_webhook_sweep_stops_mid_round_and_hands_the_rest_back_uncounted(receiver, alice, monkeypatch):
    """A round takes the head of every endpoint's queue; behind slow endpoints a round alone can
    outlast the budget, so the budget is checked before each delivery."""
    first, _ = webhook_endpoint_create(actor=alice, url=receiver.url + "/one", events=["ticket.updated"])
    second, _ = webhook_endpoint_create(actor=alice, url=receiver.url + "/two", events=["ticket.updated"])
    webhooks_emit(events=[HookEvent(organisation_id=alice.organisation_id, event="ticket.updated", key="k", data={})])
    assert WebhookDelivery.objects.count() == 2
    monkeypatch.setattr(leases, "clock", Stopwatch(15))  # the budget runs out after one delivery
    assert webhook_delivery.webhooks_send_due() == 1
    assert len(receiver.received) == 1
    left = WebhookDelivery.objects.get(status="pending")
    assert left.endpoint_id == second.pk and left.attempts == 0 and left.claim_token is None
    assert left.lease_until is None
    monkeypatch.setattr(leases, "clock", Stopwatch(0))
    assert webhook_delivery.webhooks_send_due() == 1
    assert len(receiver.received) == 2
    assert set(WebhookDelivery.objects.values_list("status", "attempts")) == {("delivered", 1)}
    assert {first.pk, second.pk} == set(WebhookDelivery.objects.values_list("endpoint_id", flat=True))
