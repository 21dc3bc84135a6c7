"""Celery entry points: take ids or keys, call one service. Each is safe to run twice."""

from celery import shared_task
from django.db import OperationalError

from portal.core import delivery
from portal.core.heartbeat import recorded


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=60, max_retries=5)
def outbox_send(key: str) -> int:
    return delivery.outbox_send_key(key=key)


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=60, max_retries=3)
@recorded("outbox-sweep")
def outbox_sweep() -> int:
    """Every minute: rows never handed to a worker, rows whose backoff has passed, rows whose
    sender died (lease ran out)."""
    return delivery.outbox_send_due()
