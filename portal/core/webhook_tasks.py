"""The webhook deliveries' Celery entry point (beside portal.core.tasks, which the email outbox
imports: the webhook sender itself writes emails through the outbox)."""

from celery import shared_task
from django.db import OperationalError

from portal.core import webhook_delivery
from portal.core.heartbeat import recorded


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=60, max_retries=3)
@recorded("webhooks-sweep")
def webhooks_sweep() -> int:
    """Every minute, and after a change that recorded deliveries: every endpoint's due deliveries,
    in order (portal.core.webhook_delivery)."""
    return webhook_delivery.webhooks_send_due()
