"""The outbox's admin list (admin -> Outbox messages, read by every staff role to answer "did the
customer get our email?") reads a page, never the whole outbox: its order from an index, its count
capped, templates from the code, dates as fixed ranges. Its cost does not grow with every email
ever sent (1.7-2.0 s a page at 600,000 rows on PostgreSQL before, growing to the web's 30 s
statement timeout). Runs on SQLite and on PostgreSQL (DATABASE_URL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal.models import OutboxMessage

pytestmark = pytest.mark.django_db

OUTBOX = "/admin/portal/outboxmessage/"


def _sent(n: int, *, template: str = "ticket_reply", days_ago: int = 0) -> None:
    now = timezone.now()
    OutboxMessage.objects.bulk_create(
        OutboxMessage(key=f"k:{template}:{i}", template=template, to=f"user{i % 50}@acme.example", status="sent",
                      attempts=1, next_attempt_at=now - timedelta(days=i), sent_at=now - timedelta(days=i),
                      subject=f"Re: ticket {i}", body_text="Hello. " * 100)
        for i in range(n)
    )  # fmt: skip
    if days_ago:
        OutboxMessage.objects.filter(key__startswith=f"k:{template}:").update(created_at=now - timedelta(days=days_ago))


def _whole_table_reads(sql: str) -> list[str]:
    """The lines of the query's plan that read every row (PostgreSQL: a Seq Scan, with sequential
    scans discouraged so that an index that serves is taken; SQLite: a SCAN without an index, or a
    temporary B-tree to sort the rows)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN " + sql)
            return [row[0] for row in cursor.fetchall() if "Seq Scan on portal_outboxmessage" in row[0]]
        cursor.execute("EXPLAIN QUERY PLAN " + sql)
        plan = [row[-1] for row in cursor.fetchall()]
        return [
            line for line in plan
            if (line.startswith("SCAN portal_outboxmessage") and "INDEX" not in line) or "TEMP B-TREE" in line
        ]  # fmt: skip


@pytest.mark.parametrize("who", ["sam", "sol"])  # sam does not see report emails: the list leaves them out
def test_the_outbox_list_reads_no_query_of_the_whole_outbox(client, who, request):
    _sent(500, days_ago=400)
    client.force_login(request.getfixturevalue(who))
    with CaptureQueriesContext(connection) as ctx:
        page = client.get(OUTBOX)
    assert page.status_code == 200 and b"Re: ticket 499" in page.content
    reading = [q["sql"] for q in ctx.captured_queries if "portal_outboxmessage" in q["sql"]]
    assert reading
    full = {sql[:200]: plan for sql in reading if (plan := _whole_table_reads(sql))}
    assert not full, "the outbox list reads the whole outbox:\n" + "\n".join(f"{s}…  {p}" for s, p in full.items())
    assert not any("DISTINCT" in sql for sql in reading)  # no distinct templates, no date hierarchy's years


def test_the_outbox_list_counts_only_up_to_its_cap(client, ada, monkeypatch):
    from portal.core.paging import CappedPaginator

    monkeypatch.setattr(CappedPaginator, "CAP", 5)
    client.force_login(ada)
    _sent(5)
    page = client.get(OUTBOX).content.decode()
    assert "5 outbox messages" in page and "More than" not in page
    _sent(3, template="ticket_status")
    with CaptureQueriesContext(connection) as queries:
        page = client.get(OUTBOX).content.decode()
    assert "More than 5 outbox messages: filter or search to narrow them." in page
    assert "Select all matching outbox messages (more than 5)" in page
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"]]
    assert len(counts) == 1 and "LIMIT 6" in counts[0]  # no "N of M" either: M would count every email
    filtered = client.get(OUTBOX, {"template": "ticket_status"}).content.decode()
    assert "3 outbox messages" in filtered and "More than" not in filtered


def test_the_template_filter_offers_the_code_s_templates_and_reports_only_to_security(client, sam, sol):
    from portal.core.delivery import email_templates

    OutboxMessage.objects.create(
        key="odd", template="no_such_template", to="a@acme.example", next_attempt_at=timezone.now()
    )
    assert {"ticket_reply", "password_reset", "security_report_receipt"} <= set(email_templates())
    for user, reports in ((sam, False), (sol, True)):
        client.force_login(user)
        page = client.get(OUTBOX).content.decode()
        assert (
            "?template=ticket_reply" in page and "?template=incident_update" in page
        )  # none sent: offered all the same
        assert "?template=no_such_template" not in page  # a row's template is not a choice
        assert ("?template=security_report_receipt" in page) == reports


def test_the_outbox_list_offers_dates_as_ranges_not_a_hierarchy_of_every_row(client, ada):
    _sent(3)
    _sent(2, template="ticket_status", days_ago=400)
    client.force_login(ada)
    page = client.get(OUTBOX)
    assert page.context["cl"].date_hierarchy is None
    assert "created_at__gte=" in page.content.decode()
    week = timezone.localdate() - timedelta(days=7)
    listed = client.get(OUTBOX, {"created_at__gte": f"{week} 00:00:00+00:00"}).context["cl"].result_list
    assert sorted(m.template for m in listed) == ["ticket_reply"] * 3
