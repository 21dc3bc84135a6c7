"""The webhook deliveries' Celery entry point (beside portal.core.tasks, which the email outbox
imports: the webhook sender itself writes emails through the outbox)."""

from celery import shared_task
from django.db import OperationalError

from portal.core import webhook_delivery
from portal.core.heartbeat import recorded
from portal.core.tasks import DISPATCHED_SWEEP_EXPIRES


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=60, max_retries=3)
@recorded("webhooks-sweep")
def webhooks_sweep() -> int:
    """Every minute, and after a change that recorded deliveries: every endpoint's due deliveries,
    in order (portal.core.webhook_delivery), for at most webhook_delivery.SWEEP_BUDGET seconds;
    the rest waits for the next sweep."""
    return webhook_delivery.webhooks_send_due()


def webhooks_sweep_dispatch() -> None:
    """A sweep for deliveries a change just recorded; dropped if not started in time (beat's goes on)."""
    webhooks_sweep.apply_async(expires=DISPATCHED_SWEEP_EXPIRES)
