"""Celery entry points: take ids or keys, call one service. Each is safe to run twice."""

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from portal.core import delivery, housekeeping
from portal.core.heartbeat import recorded

# A sweep queued by a commit (outbox rows, webhook deliveries) or by a sweep out of time is dropped
# if no worker has started it by then: beat's minute sweep finds the rows anyway, and a worker back
# from a stop does not find a pile of stale sweeps.
DISPATCHED_SWEEP_EXPIRES = 300


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=60, max_retries=5)
def outbox_send(key: str) -> int:
    return delivery.outbox_send_key(key=key)


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=60, max_retries=3)
@recorded("outbox-sweep")
def outbox_sweep(follow: bool = False) -> int:
    """Every minute: rows never handed to a worker, rows whose backoff has passed, rows whose
    sender died (lease ran out). At most delivery.SWEEP_BUDGET seconds; the rest is sent by the
    next minute's sweep or, for a sweep a fan-out dispatched (`follow`), by the next sweep it
    queues itself: a large fan-out goes on at full speed, while other tasks get their turn between
    its sweeps."""
    return delivery.outbox_send_due(on_more=outbox_sweep_dispatch if follow else None)


def outbox_sweep_dispatch() -> None:
    """Queue a sweep that goes on until nothing is due (a fan-out's; a sweep out of time queues the next)."""
    outbox_sweep.apply_async(kwargs={"follow": True}, expires=DISPATCHED_SWEEP_EXPIRES)


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=60, max_retries=3)
@recorded("housekeeping")
def housekeeping_run() -> str:
    """Once a day: expired sessions and API tokens, the bodies of emails sent long ago, and files no
    row names (portal.core.housekeeping). Each step stops within its budget; the next day's run
    goes on."""
    return housekeeping.housekeeping(now=timezone.now())
