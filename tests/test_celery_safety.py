"""Celery is configured so that work is never lost or doubled, timers are never long countdowns,
and every sweep leaves a heartbeat that /healthz reads."""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine

from portal.celery import app
from portal.core.heartbeat import SWEEPS

ROOT = Path(__file__).resolve().parent.parent


def test_acks_late_reject_on_worker_lost_and_prefetch_one():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1


def test_every_beat_entry_expires_before_its_next_run():
    # (Each entry's heartbeat under its name: test_sweeps_record_heartbeats_and_healthz_reports_a_late_one.)
    for name, entry in app.conf.beat_schedule.items():
        assert 0 < entry["options"]["expires"] < entry["schedule"], name


def test_no_countdown_or_eta_longer_than_half_the_visibility_timeout():
    """Timers live in the database; a long countdown on Redis is redelivered again and again."""
    half = 3600 / 2
    offenders = []
    for path in ROOT.glob("*/**/*.py"):
        if any(part in (".venv", "tests", "migrations", "bench") for part in path.parts):
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            for match in re.finditer(r"\b(countdown|eta)\s*=\s*([^,)\n]+)", line):
                value = match.group(2).strip()
                try:
                    seconds = float(value)
                except ValueError:
                    offenders.append(f"{path.relative_to(ROOT)}:{n}: {match.group(0)} (not a literal)")
                    continue
                if seconds > half:
                    offenders.append(f"{path.relative_to(ROOT)}:{n}: {match.group(0)}")
            if "apply_async(" in line and ("eta" in line or "countdown" in line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    for name, task in app.tasks.items():
        if name.startswith(("portal.", "tickets.", "contracts.", "credits.")):
            assert getattr(task, "retry_backoff_max", 0) <= half, name
    assert offenders == []


@pytest.mark.django_db
def test_sweeps_record_heartbeats_and_healthz_reports_a_late_one(client, sam):
    t0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    client.force_login(sam)  # the details are for staff (test_healthz_tells_anyone_else_only_ok_or_not)
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json()["status"] == "unhealthy"  # never ran
    with time_machine.travel(t0, tick=False):
        _run_every_sweep()
    with time_machine.travel(t0 + timedelta(minutes=3), tick=False):
        report = client.get("/healthz").json()
        assert report["status"] == "ok", report
        assert report["sweeps"]["outbox-sweep"]["last_finished_at"] == "2026-11-22T12:00:00+00:00"
    with time_machine.travel(t0 + timedelta(minutes=4, seconds=1), tick=False):
        response = client.get("/healthz")
        assert response.status_code == 503
        sweeps = response.json()["sweeps"]
        assert not sweeps["outbox-sweep"]["healthy"] and sweeps["credits-close-month"]["healthy"]


def _run_every_sweep():
    """Every task beat schedules (the schedule names each sweep, so a new one is run here too)."""
    app.loader.import_default_modules()
    for entry in app.conf.beat_schedule.values():
        app.tasks[entry["task"]].delay()


@pytest.mark.django_db
def test_healthz_tells_anyone_else_only_ok_or_not(client, alice, sam):
    """The sweeps' names, their last runs and results were shown to anyone: only staff see them now."""
    t0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    with time_machine.travel(t0, tick=False):
        _run_every_sweep()
    for minutes, status, code in ((1, "ok", 200), (5, "unhealthy", 503)):
        with time_machine.travel(t0 + timedelta(minutes=minutes), tick=False):
            client.logout()
            anonymous = client.get("/healthz")
            assert (anonymous.status_code, anonymous.json()) == (code, {"status": status})
            assert "no-store" in anonymous["Cache-Control"]  # a cache must not hand staff's answer to others
            client.force_login(alice)  # a customer is anyone too
            assert (client.get("/healthz").status_code, client.get("/healthz").json()) == (code, {"status": status})
            client.force_login(sam)
            staff = client.get("/healthz")
            assert staff.status_code == code and staff.json()["status"] == status
            assert set(staff.json()["sweeps"]) == set(SWEEPS)
            assert staff.json()["sweeps"]["outbox-sweep"]["last_finished_at"] == "2026-11-22T12:00:00+00:00"


@pytest.mark.django_db
def test_healthz_is_a_503_when_the_database_does_not_answer(client, monkeypatch):
    from django.db import OperationalError

    from portal.core import heartbeat

    def unreachable(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(heartbeat.SweepHeartbeat.objects, "all", unreachable)
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (503, {"status": "unhealthy"})


def test_beat_starts_every_sweep_once_when_it_starts(monkeypatch):
    from portal import celery as module

    sent = []
    monkeypatch.setattr(module.app, "send_task", lambda name, **options: sent.append((name, options["expires"])))
    module.run_every_sweep_at_start()
    assert sorted(name for name, _ in sent) == sorted(e["task"] for e in app.conf.beat_schedule.values())
