"""The Celery app. Loaded from portal/__init__.py so that it is ready whenever Django is.

Every timer is a due-time column swept by beat; beat only ever schedules short sweeps, whose
entries expire so that a stopped worker does not find a pile of stale duplicates on return.
"""

import os

from celery import Celery
from celery.signals import beat_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["portal.core"])  # the outbox's tasks live in the ground package
app.autodiscover_tasks(["portal.core"], related_name="webhook_tasks")

# The beat schedule, in one place. A sweep that has not run by its next tick is dropped
# (expires) rather than queued twice.
EVERY_MINUTE = 60.0
EVERY_HOUR = 3600.0
app.conf.beat_schedule = {
    "credits-close-month": {
        "task": "credits.tasks.close_month",
        "schedule": EVERY_HOUR,
        "options": {"expires": 3000},
    },
    "outbox-sweep": {
        "task": "portal.core.tasks.outbox_sweep",
        "schedule": EVERY_MINUTE,
        "options": {"expires": 55},
    },
    "webhooks-sweep": {
        "task": "portal.core.webhook_tasks.webhooks_sweep",
        "schedule": EVERY_MINUTE,
        "options": {"expires": 55},
    },
    "tickets-escalate": {
        "task": "tickets.tasks.escalate_due_tickets",
        "schedule": EVERY_MINUTE,
        "options": {"expires": 55},
    },
    "tickets-sla-deadlines": {
        "task": "tickets.tasks.check_sla_deadlines",
        "schedule": EVERY_MINUTE,
        "options": {"expires": 55},
    },
    "maintenance-notices": {
        "task": "contracts.tasks.send_maintenance_notices",
        "schedule": EVERY_MINUTE,
        "options": {"expires": 55},
    },
    "incident-drafts": {
        "task": "contracts.tasks.publish_due_incidents",
        "schedule": EVERY_MINUTE,
        "options": {"expires": 55},
    },
    "inbound-imap": {
        "task": "tickets.tasks.poll_mailbox",
        "schedule": EVERY_MINUTE,
        "options": {"expires": 55},
    },
    "people-contacts-review": {
        "task": "contracts.tasks.request_contacts_reviews",
        "schedule": EVERY_HOUR,
        "options": {"expires": 3000},
    },
}


@beat_init.connect
def run_every_sweep_at_start(sender=None, **kwargs):
    """Interval entries first run one period after beat starts; the hourly month close would
    then wait an hour (and /healthz call it missing). Every sweep is safe to run twice: start
    them all at once."""
    for entry in app.conf.beat_schedule.values():
        app.send_task(entry["task"], **entry.get("options", {}))
