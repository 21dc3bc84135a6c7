"""Sweep heartbeats: every beat sweep records when it ran; /healthz reports a sweep that is more
than three minutes late (or its period plus three minutes, for the hourly one), and a database
that does not answer. Anyone learns whether all is well (`public`); staff see the details."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta

from django.db import DatabaseError
from django.db.models import F
from django.utils import timezone

from portal.celery import app
from portal.models import SweepHeartbeat

GRACE = timedelta(minutes=3)
# Every sweep beat runs, with its period: read from the beat schedule, the one list of them.
SWEEPS = {name: timedelta(seconds=entry["schedule"]) for name, entry in app.conf.beat_schedule.items()}


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
