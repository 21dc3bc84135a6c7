"""Beat runs these every minute; each is safe to run twice and on two machines at once."""

from celery import shared_task
from django.db import OperationalError

from portal.core.heartbeat import recorded

from . import sweeps


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=30, max_retries=3)
@recorded("tickets-escalate")
def escalate_due_tickets() -> int:
    return sweeps.escalate_due_tickets()


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=30, max_retries=3)
@recorded("tickets-sla-deadlines")
def check_sla_deadlines() -> int:
    return sweeps.check_sla_deadlines()
