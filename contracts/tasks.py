"""Beat runs this every minute; it is safe to run twice and on two machines at once."""

from celery import shared_task
from django.db import OperationalError

from portal.core.heartbeat import recorded

from .maintenance import sweep


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=30, max_retries=3)
@recorded("maintenance-notices")
def send_maintenance_notices() -> int:
    return sweep.maintenance_notices_send_due()
