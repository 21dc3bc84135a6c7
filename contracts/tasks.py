"""Beat runs these (maintenance notices every minute, contact reviews hourly); each is safe to run
twice and on two machines at once."""

from celery import shared_task
from django.db import OperationalError

from portal.core.heartbeat import recorded

from .incidents.services import incidents_publish_due
from .maintenance import sweep
from .people import review


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=30, max_retries=3)
@recorded("maintenance-notices")
def send_maintenance_notices() -> int:
    return sweep.maintenance_notices_send_due()


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=30, max_retries=3)
@recorded("people-contacts-review")
def request_contacts_reviews() -> int:
    """Hourly: each organisation's admins are asked once a quarter to review its people and contacts."""
    return review.contacts_review_request_due()


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=30, max_retries=3)
@recorded("incident-drafts")
def publish_due_incidents() -> int:
    """Every minute: drafted incidents whose delay has passed are published (their emails go out)."""
    return incidents_publish_due()
