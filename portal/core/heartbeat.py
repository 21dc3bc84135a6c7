"""Sweep heartbeats: every beat sweep records when it ran; /healthz reports a sweep that is more
than three minutes late (or its period plus three minutes, for the hourly one), and a database
that does not answer. Anyone learns whether all is well (`public`); staff see the details."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import DatabaseError
from django.db.models import F
from django.utils import timezone

from portal.celery import app
from portal.domain.formats import grouped
from portal.models import SweepHeartbeat

GRACE = timedelta(minutes=3)
# Every sweep beat runs, with its period: read from the beat schedule, the one list of them.
SWEEPS = {name: timedelta(seconds=entry["schedule"]) for name, entry in app.conf.beat_schedule.items()}


@dataclass(frozen=True)
class Purpose:
    """A sweep in a lead's words (the staff dashboard): what it does, and what the number it
    returns counts (one, several). The beat's ids name the sweeps for whoever runs the deployment."""

    title: str
    one: str
    several: str

    def result(self, last_result: str | None) -> str | None:
        """The last run's result in words: "3 emails sent"; a result that is not a count, as it is."""
        if last_result is None or not last_result.isdigit():
            return last_result
        n = int(last_result)
        return f"{grouped(n)} {self.one if n == 1 else self.several}"


# One for every beat entry (tests/test_staff_dashboard.py holds SWEEPS to it).
PURPOSES = {
    "outbox-sweep": Purpose("Email outbox: emails due", "email sent", "emails sent"),
    "webhooks-sweep": Purpose("Webhook deliveries due", "delivery sent", "deliveries sent"),
    "tickets-escalate": Purpose("Escalation timers", "ticket escalated", "tickets escalated"),
    "tickets-sla-deadlines": Purpose(
        "SLA warnings and breaches", "warning or breach recorded", "warnings and breaches recorded"
    ),
    "maintenance-notices": Purpose("Maintenance notices and reminders", "notice written", "notices written"),
    "incident-drafts": Purpose("Incident drafts due to publish", "incident published", "incidents published"),
    "inbound-imap": Purpose("Support mailbox (IMAP)", "message taken", "messages taken"),
    "credits-close-month": Purpose("Closing ended months", "month closed", "months closed"),
    "people-contacts-review": Purpose(
        "Quarterly contacts reviews", "review request written", "review requests written"
    ),
    "housekeeping": Purpose(
        "Daily housekeeping: expired sessions and tokens, old email bodies, orphaned files",
        "thing removed",
        "things removed",
    ),
}


def recorded(name: str):
    """Decorate a task body: record its start and its end (with its result) in one row."""
    if name not in SWEEPS:
        raise ValueError(f"unknown sweep {name!r}: add it to the beat schedule (portal/celery.py)")

    def wrap(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            started = timezone.now()
            SweepHeartbeat.objects.update_or_create(name=name, defaults={"last_started_at": started})
            result = fn(*args, **kwargs)
            SweepHeartbeat.objects.filter(name=name).update(
                last_finished_at=timezone.now(), last_result=str(result)[:200], runs=F("runs") + 1
            )
            return result

        return run

    return wrap


def health(now: datetime | None = None) -> dict:
    """Whether the database answers and every sweep ran within its period plus GRACE: `status` ok
    or unhealthy, with the details (each sweep's last run and result)."""
    now = now or timezone.now()
    try:
        beats = {b.name: b for b in SweepHeartbeat.objects.all()}
    except DatabaseError:
        return {"status": "unhealthy", "database": "not answering", "sweeps": {}}
    sweeps = {}
    for name, period in SWEEPS.items():
        beat = beats.get(name)
        last = beat.last_finished_at if beat else None
        late = last is None or now - last > period + GRACE
        sweeps[name] = {
            "last_finished_at": last.isoformat() if last else None,
            "last_result": beat.last_result if beat else None,
            "healthy": not late,
        }
    healthy = all(s["healthy"] for s in sweeps.values())
    return {"status": "ok" if healthy else "unhealthy", "database": "ok", "sweeps": sweeps}


def public(report: dict) -> dict:
    """What anyone may learn of a health report: ok or not. The sweeps' names, runs and results
    describe the deployment's insides, for staff."""
    return {"status": report["status"]}
