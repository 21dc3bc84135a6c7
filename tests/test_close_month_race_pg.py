"""The month-end run and a staff member correcting the evidence at once (PostgreSQL, two threads):
the change is counted or the month is reopened for it, never lost. The run reads a chunk's outages
and stores its figures in one transaction holding the month's lock, and a change of evidence takes
the same lock before it looks for closed months to reopen. Before, the run read the outages once,
computed, then stored: an outage recorded in between found no closed month to reopen (November was
not stored yet, or still reopened), and the run then closed November without it, for good."""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connections

from contracts.choices import Cause
from contracts.outages.services import outage_record, outage_update
from credits import closing
from credits.models import MonthlyUptime

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
NBO = ZoneInfo("Africa/Nairobi")
NOV = date(2026, 11, 1)
CLOSING = datetime(2026, 12, 1, 1, 0, tzinfo=NBO)
LATER = datetime(2026, 12, 3, 10, 0, tzinfo=NBO)


def down(contract, minutes: int, at: datetime):
    return outage_record(
        title="Storage down", services=contract.services.all(), starts_at=datetime(2026, 11, 10, 8, 0, tzinfo=NBO),
        ends_at=datetime(2026, 11, 10, 8, 0, tzinfo=NBO) + timedelta(minutes=minutes), cause=Cause.UNPLANNED,
        actor=None, now=at,
    )  # fmt: skip


def run_beside(monkeypatch, now: datetime, staff_write) -> None:
    """close_due at `now`, with `staff_write` run in another thread once the run has read the
    outages: the run then waits 0.5 s (time enough for the write to commit, had nothing stopped it)
    before it computes and stores."""
    read, started, real = threading.Event(), threading.Event(), closing._outages

    def outages_then_wait(lo, hi, now):
        spans = real(lo, hi, now)
        if lo < datetime(2026, 11, 10, tzinfo=NBO) < hi and not read.is_set():  # November's
            read.set()
            started.wait(5)
            threading.Event().wait(0.5)
        return spans

    monkeypatch.setattr(closing, "_outages", outages_then_wait)
    errors = []

    def staff():
        try:
            read.wait(5)
            started.set()
            staff_write()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    def sweep():
        try:
            closing.close_due(now=now)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sweep), threading.Thread(target=staff)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    monkeypatch.undo()
    assert not errors, errors


def test_an_outage_recorded_while_the_month_is_first_closed_is_counted(acme_contract, monkeypatch):
    run_beside(monkeypatch, CLOSING, lambda: down(acme_contract, 480, CLOSING))
    november = MonthlyUptime.objects.get(contract=acme_contract, month=NOV)
    assert november.status == "reopened" and november.down_minutes == 0  # closed before the outage, reopened
    closing.close_due(now=CLOSING + timedelta(hours=1))
    november.refresh_from_db()
    assert (november.status, november.down_minutes) == ("closed", 480)


def test_an_outage_corrected_while_a_reopened_month_is_closed_again_is_counted(acme_contract, monkeypatch):
    closing.close_due(now=CLOSING)
    outage = down(acme_contract, 480, LATER)  # November reopened

    def correct():
        outage_update(
            outage=outage, title=outage.title, services=acme_contract.services.all(), starts_at=outage.starts_at,
            ends_at=outage.starts_at + timedelta(minutes=1440), description="", actor=None, now=LATER,
        )  # fmt: skip

    run_beside(monkeypatch, LATER + timedelta(hours=1), correct)
    november = MonthlyUptime.objects.get(contract=acme_contract, month=NOV)
    assert (november.status, november.down_minutes) == ("reopened", 480)
    closing.close_due(now=LATER + timedelta(hours=2))
    november.refresh_from_db()
    assert (november.status, november.down_minutes) == ("closed", 1440)
