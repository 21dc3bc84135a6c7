from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from portal.core.heartbeat import recorded

from .closing import close_due
from .notices import claim_reminders_send


# Generous limits (the hour between two runs): every month of every contract may need closing.
@shared_task(
    autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=60, max_retries=3,
    soft_time_limit=3000, time_limit=3300,
)  # fmt: skip
@recorded("credits-close-month")
def close_month() -> int:
    """Hourly: close every ended contract-month not closed yet (the last 12 months, since each
    contract's start) and close again every reopened one; then remind the contacts of each month
    whose claim window closes in 7 days and that has no claim (credits.notices)."""
    now = timezone.now()
    closed = close_due(now=now)
    claim_reminders_send(now=now)
    return closed
