"""The Celery app. Loaded from portal/__init__.py so that it is ready whenever Django is.

Every timer is a due-time column swept by beat; beat only ever schedules short sweeps, whose
entries expire so that a stopped worker does not find a pile of stale duplicates on return.

Two queues: the clocks' sweeps (CLOCK_TASKS: escalations, SLA deadlines, incident drafts,
maintenance notices, month close, contact reviews) go to their own, "<default queue>-clocks", which
a worker of its own consumes; everything else (email, webhooks, inbound mail, recomputes) to the
default queue (CELERY_QUEUE, "portal"). A backlog of deliveries (an incident's fan-out, a customer's
slow webhook endpoint) then never holds the processes that escalate P1 tickets and warn of breaches.
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

# The sweeps about clocks rather than deliveries: routed to the clocks queue (clocks_queue()).
CLOCK_TASKS = frozenset(
    {
        "tickets.tasks.escalate_due_tickets",
        "tickets.tasks.check_sla_deadlines",
        "contracts.tasks.publish_due_incidents",
        "contracts.tasks.send_maintenance_notices",
        "contracts.tasks.request_contacts_reviews",
        "credits.tasks.close_month",
    }
)


def clocks_queue() -> str:
    """The clocks' queue, named after the default one (read when a task is sent: tests and drills
    give each run its own default queue, and so their own clocks queue)."""
    return f"{app.conf.task_default_queue}-clocks"


def route(name, args, kwargs, options, task=None, **kw):
    """Celery's task router: the clock sweeps to the clocks queue, the rest to the default one."""
    if name in CLOCK_TASKS:
        return {"queue": clocks_queue()}
    return None


app.conf.task_routes = (route,)

# The beat schedule, in one place. A sweep that has not run by its next tick is dropped
# (expires) rather than queued twice.
EVERY_MINUTE = 60.0
EVERY_HOUR = 3600.0
EVERY_DAY = 86400.0


def _sweep(task: str, every: float) -> dict:
    """A beat entry: `task` every `every` seconds, dropped if not started before its next tick."""
    return {"task": task, "schedule": every, "options": {"expires": 55 if every == EVERY_MINUTE else 3000}}


# The one list of sweeps: /healthz's heartbeats (portal.core.heartbeat.SWEEPS) are read from it.
app.conf.beat_schedule = {
    "outbox-sweep": _sweep("portal.core.tasks.outbox_sweep", EVERY_MINUTE),
    "webhooks-sweep": _sweep("portal.core.webhook_tasks.webhooks_sweep", EVERY_MINUTE),
    "tickets-escalate": _sweep("tickets.tasks.escalate_due_tickets", EVERY_MINUTE),
    "tickets-sla-deadlines": _sweep("tickets.tasks.check_sla_deadlines", EVERY_MINUTE),
    "maintenance-notices": _sweep("contracts.tasks.send_maintenance_notices", EVERY_MINUTE),
    "incident-drafts": _sweep("contracts.tasks.publish_due_incidents", EVERY_MINUTE),
    # The inbound mailbox: a no-op without INBOUND_IMAP_URL, so the list is the same everywhere.
    "inbound-imap": _sweep("tickets.tasks.poll_mailbox", EVERY_MINUTE),
    "credits-close-month": _sweep("credits.tasks.close_month", EVERY_HOUR),
    "people-contacts-review": _sweep("contracts.tasks.request_contacts_reviews", EVERY_HOUR),
    # Expired sessions and API tokens, old email bodies, orphaned files (portal.core.housekeeping).
    "housekeeping": _sweep("portal.core.tasks.housekeeping_run", EVERY_DAY),
}


@beat_init.connect
def run_every_sweep_at_start(sender=None, **kwargs):
    """Interval entries first run one period after beat starts; the hourly month close would
    then wait an hour (and /healthz call it missing). Every sweep is safe to run twice: start
    them all at once."""
    for entry in app.conf.beat_schedule.values():
        app.send_task(entry["task"], **entry.get("options", {}))
