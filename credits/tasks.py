from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from portal.core.heartbeat import recorded

from .closing import close_month as close
from .closing import months_to_close


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=60, max_retries=3)
@recorded("credits-close-month")
def close_month() -> int:
    """Hourly: close every contract-month that has ended in its contract's timezone."""
    now = timezone.now()
    return sum(close(month=m, now=now) for m in months_to_close(now))
