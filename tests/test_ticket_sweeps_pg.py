"""The escalation sweep at scale, on PostgreSQL: the due-time index, queries that grow with
batches and not tickets, and two sweeps at once escalating each ticket once."""

import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from portal.models import OutboxMessage
from tickets.models import Ticket, TicketEvent
from tickets.services import ticket_open
from tickets.sweeps import due, escalate_due_tickets

pytestmark = [pytest.mark.postgres]
NBO = ZoneInfo("Africa/Nairobi")
FILED = datetime(2026, 12, 11, 16, 0, tzinfo=NBO)
FAR = datetime(2030, 1, 1, tzinfo=NBO)

COPY_COLUMNS = [
    f.column for f in Ticket._meta.concrete_fields if f.column not in ("id", "next_escalation_due", "subject")
]


def clone(template: Ticket, count: int, *, due_at: datetime) -> None:
    """`count` copies of a ticket in one statement (the ORM would take minutes for 100,000)."""
    cols = ", ".join(COPY_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO tickets_ticket ({cols}, next_escalation_due, subject) "
            f"SELECT {cols}, %s, 'copy ' || n FROM tickets_ticket, generate_series(1, %s) AS n WHERE id = %s",
            [due_at, count, template.pk],
        )
        cursor.execute("ANALYZE tickets_ticket")


def open_p1(contract, user):
    with time_machine.travel(FILED, tick=False):
        return ticket_open(user=user, contract=contract, service=contract.services.get(), priority="P1",
                           subject="Backups fail", description="x")  # fmt: skip


@pytest.mark.django_db
def test_nothing_due_among_100000_open_tickets_is_one_indexed_query(acme_contract, alice):
    template = open_p1(acme_contract, alice)
    clone(template, 100_000, due_at=FAR)
    Ticket.objects.filter(pk=template.pk).update(next_escalation_due=FAR)
    now = datetime(2026, 12, 11, 18, 0, tzinfo=NBO)
    plan = due("next_escalation_due", now)[:500].explain()
    assert "ticket_escalation_due" in plan, plan  # the partial index on the due-time
    assert "Seq Scan" not in plan, plan
    with CaptureQueriesContext(connection) as ctx:
        assert escalate_due_tickets(now=now) == 0
    assert len(ctx.captured_queries) <= 3, [q["sql"] for q in ctx.captured_queries]


def queries_to_escalate(contract, user, n: int, batch: int) -> int:
    Ticket.objects.all().delete()
    OutboxMessage.objects.all().delete()
    template = open_p1(contract, user)
    clone(template, n - 1, due_at=FILED + timedelta(minutes=15))
    with CaptureQueriesContext(connection) as ctx:
        moved = escalate_due_tickets(now=FILED + timedelta(minutes=20), batch=batch)
    assert moved == n
    assert Ticket.objects.filter(escalation_level=2).count() == n
    return len(ctx.captured_queries)


@pytest.mark.django_db
def test_queries_grow_with_batches_not_tickets(acme_contract, alice, bob):
    one = queries_to_escalate(acme_contract, alice, 100, batch=100)
    two = queries_to_escalate(acme_contract, alice, 200, batch=100)
    ten = queries_to_escalate(acme_contract, alice, 1000, batch=100)
    per_batch = two - one
    assert per_batch < 20  # the batch's tickets, terms, staff, people and their email choices, webhook endpoints
    assert ten == one + 9 * per_batch  # 1,000 tickets: ten batches, each a fixed handful of queries
    # ... and every escalated ticket has its emails: staff of level 2 and the two contacts.
    assert OutboxMessage.objects.filter(key__contains=":escalation:2:").count() == 1000 * 3


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_escalate_each_ticket_once(acme_contract, alice, bob):
    template = open_p1(acme_contract, alice)
    clone(template, 299, due_at=FILED + timedelta(minutes=15))
    Ticket.objects.filter(pk=template.pk).update(next_escalation_due=FILED + timedelta(minutes=15))
    OutboxMessage.objects.all().delete()
    barrier = threading.Barrier(2)
    moved, errors = [], []

    def sweep():
        try:
            barrier.wait(timeout=10)
            moved.append(escalate_due_tickets(now=FILED + timedelta(minutes=20), batch=25))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(moved) == 300
    assert TicketEvent.objects.filter(kind="escalated").count() == 300
    # Exactly one email per ticket, level and recipient (the support line, Alice, Bob).
    assert OutboxMessage.objects.filter(key__contains=":escalation:2:").count() == 300 * 3


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["all", "closed", "resolved", "new"])
def test_the_queue_reads_any_status_in_its_order_from_an_index(client, sam, acme_contract, alice, status):
    """The queue's page for each choice of its status filter is read from an index in the queue's
    order, not sorted: "All" sorted every ticket ever filed for each page (1 s at a million)."""
    template = open_p1(acme_contract, alice)
    clone(template, 20_000, due_at=FAR)
    Ticket.objects.exclude(pk=template.pk).update(status=Ticket.Status.CLOSED, next_deadline=None)
    connection.cursor().execute("ANALYZE tickets_ticket")
    client.force_login(sam)
    response = client.get(reverse("admin:tickets_ticket_changelist"), {"status": status})
    assert response.status_code == 200
    plan = response.context["cl"].queryset[:25].explain()
    assert "Sort" not in plan.replace("Sort Key", ""), plan  # "Incremental Sort" and "Sort" both mean sorting
    assert "ticket_queue_" in plan, plan
