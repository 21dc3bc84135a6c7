"""A public form's limit with two submissions at once (portal.core.form_limits): from one mailbox,
the last report the limit allows is filed once, not twice. On PostgreSQL each counted value is
locked until the submission's transaction ends; SQLite's transactions are one after the other."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connections

from portal.core import form_limits
from tickets.models import SecurityReport
from tickets.security import PER_ADDRESS, ReportLimited, security_report_submit

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NOW = datetime(2026, 12, 11, 12, 0, tzinfo=UTC)


def test_two_reports_at_once_from_one_mailbox_file_the_last_allowed_one_once(monkeypatch):
    limit, _ = PER_ADDRESS
    for n in range(limit - 1):
        security_report_submit(email="eve@research.example", name="Eve", summary=f"Report {n}", details="...",
                               now=NOW - timedelta(hours=1))  # fmt: skip
    # Each submission waits, once it has counted, for the other to have counted too (or 3 s): without
    # the lock both count the same earlier reports and both pass.
    counted, real = threading.Barrier(2, timeout=3), form_limits.exceeded

    def count_then_wait(*args, **kwargs):
        hit = real(*args, **kwargs)
        try:
            counted.wait()
        except threading.BrokenBarrierError:
            pass  # the other one waits for our row: it counts after our commit
        return hit

    monkeypatch.setattr(form_limits, "exceeded", count_then_wait)
    filed, limited = [], []

    def submit(n):
        try:
            filed.append(security_report_submit(email=f"Eve+{n}@research.example", name="Eve", summary=f"At once {n}",
                                                details="...", source=f"198.51.100.{n}", now=NOW))  # fmt: skip
        except ReportLimited:
            limited.append(n)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit, args=(n,)) for n in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert (len(filed), len(limited)) == (1, 1)
    assert SecurityReport.objects.filter(address_key="eve@research.example").count() == limit
