"""Work that read per row: each test runs the same work over 2 rows and over 20 and asserts the reads
do not grow with the rows. Cancelling a window read each told contract's members' email choices
apart (19 -> 37 queries); sending new tickets' emails read each ticket's organisation again, though
it is frozen with them when loaded (8 -> 44 reads)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.models import OutboxMessage
from tickets.services import ticket_open

from .factories import ContractFactory, OrganisationFactory, ServiceFactory, UserFactory

pytestmark = pytest.mark.django_db
NBO = ZoneInfo("Africa/Nairobi")
T0 = datetime(2026, 12, 11, 16, 0, tzinfo=NBO)
H = timedelta(hours=1)
_seq = [0]


def customers(n, service):
    """n organisations, each with an admin and a member, both contacts of its contract on `service`."""
    out = []
    for _ in range(n):
        _seq[0] += 1
        i = _seq[0]
        org = OrganisationFactory(name=f"Org {i}", slug=f"org-{i}")
        a = UserFactory(email=f"a{i}@org{i}.example", organisation=org, customer_role="admin")
        b = UserFactory(email=f"b{i}@org{i}.example", organisation=org)
        out.append(
            (org, a, ContractFactory(organisation=org, reference=f"K-{i:04d}", services=[service], contacts=[a, b]))
        )
    return out


def sql(fn) -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        fn()
    return [q["sql"] for q in ctx.captured_queries]


def reads(queries: list[str]) -> list[str]:
    return [q for q in queries if q.lstrip().upper().startswith("SELECT")]


def test_cancelling_a_window_reads_email_choices_once_not_once_per_contract(db):
    """window_cancel (the admin's Cancel) tells every contract told of the window: the members' email
    choices are read per contract, where the sweep that announced it read them once."""
    from contracts.maintenance.services import window_cancel, window_publish
    from contracts.maintenance.sweep import maintenance_notices_send_due

    counts = []
    for n in (2, 20):
        service = ServiceFactory(name=f"Storage {n}", slug=f"storage-{n}")
        customers(n, service)
        start = datetime(2026, 10, 20, 23, 0, tzinfo=NBO) + n * timedelta(days=1)
        with time_machine.travel(start - 10 * 24 * H, tick=False):
            window = window_publish(title=f"Swap {n}", description="Disks.", services=[service], starts_at=start,
                                    ends_at=start + 2 * H)  # fmt: skip
        maintenance_notices_send_due(now=start - 40 * H)  # every contract told
        queries = sql(lambda w=window, at=start - 30 * H: window_cancel(window=w, now=at))
        assert (
            OutboxMessage.objects.filter(key__contains=f"maintenance:{window.pk}:", key__regex=r":cancel").count()
            == 2 * n
        )
        counts.append(len(queries))
    assert counts[0] == counts[1], f"window_cancel: {counts[0]} queries for 2 contracts, {counts[1]} for 20"


def test_sending_new_ticket_emails_reads_nothing_per_email(db, settings):
    """The worker renders an email from its frozen context (docs/decisions.md; portal.core.snapshot). The
    description of a new ticket is read when its filing emails are rendered, as decided
    (Ticket.EMAIL_FIELDS' comment): one read per new ticket is allowed. Its organisation is in
    EMAIL_FIELDS, yet the staff copy ("from {{ ticket.organisation.name }}") reads it again: a second
    query per email."""
    from portal.core.delivery import outbox_send_due

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    service = ServiceFactory(name="Backup", slug="backup")
    counts = []
    for n in (2, 20):
        with time_machine.travel(T0, tick=False):
            for _, a, c in customers(n, service):
                ticket_open(user=a, contract=c, service=service, priority="P3", subject="Slow", description="x")
        with time_machine.travel(T0 + H, tick=False):
            queries = sql(outbox_send_due)
        assert not OutboxMessage.objects.filter(status="pending").exists()
        counts.append(len(reads(queries)))
    allowed = 18  # the description of each of the 18 more tickets, read when its staff copy is rendered
    assert counts[1] <= counts[0] + allowed, (
        f"outbox send: {counts[0]} reads for 2 new tickets' emails, {counts[1]} for 20 (at most {counts[0] + allowed})"
    )
