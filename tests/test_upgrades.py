"""Upgrades of older databases: migrations read only their historical models (live code changes with
later migrations), and what an older database lacks is put right by the code of the day. Clocks are
frozen (Nairobi time)."""

import importlib
from datetime import datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.apps import apps
from django.db import connection

from portal.core import indexes
from tickets.models import DeadlineRecompute, Ticket
from tickets.services import ticket_open
from tickets.sweeps import check_sla_deadlines

NBO = ZoneInfo("Africa/Nairobi")
MON_1400 = datetime(2026, 12, 7, 14, 0, tzinfo=NBO)
MIN = timedelta(minutes=1)
CLOCK_COLUMNS = ["at_risk_at", "first_response_warn_at", "resolution_warn_at", "escalation_dues", "next_deadline"]
pytestmark = pytest.mark.django_db


def file(contract, user, priority="P3"):
    with time_machine.travel(MON_1400, tick=False):
        return ticket_open(
            user=user, contract=contract, service=contract.services.get(), priority=priority,
            subject="Restores are slow", description="A restore of 2 GB takes hours.",
        )  # fmt: skip


def request_recompute():
    migration = importlib.import_module("tickets.migrations.0021_recompute_missing_deadlines")
    with time_machine.travel(MON_1400 + MIN, tick=False):
        migration.request_recompute(apps, None)


def test_open_tickets_without_stored_deadlines_get_them_from_the_sla_sweep(acme_contract, alice):
    """A database from before tickets/0004 has open tickets without the at-risk moment, the warnings
    and the escalation dues: the migration asks for their recompute, due at once, and the minute's
    sweep does it (before, 0004 called the live recompute and the upgrade stopped there)."""
    lacking = file(acme_contract, alice)
    file(acme_contract, alice, "P2")  # with its deadlines
    expected = Ticket.objects.filter(pk=lacking.pk).values(*CLOCK_COLUMNS).get()
    assert expected["at_risk_at"] and expected["escalation_dues"]
    Ticket.objects.filter(pk=lacking.pk).update(
        at_risk_at=None, first_response_warn_at=None, resolution_warn_at=None, escalation_dues=[]
    )
    request_recompute()
    (request,) = DeadlineRecompute.objects.all()
    assert (request.version_ids, request.calendar_ids, request.due_at) == ([lacking.sla_version_id], [], MON_1400 + MIN)
    with time_machine.travel(MON_1400 + 2 * MIN, tick=False):
        check_sla_deadlines()
    assert Ticket.objects.filter(pk=lacking.pk).values(*CLOCK_COLUMNS).get() == expected
    assert not DeadlineRecompute.objects.exists()


def test_no_request_when_every_open_ticket_has_its_deadlines(acme_contract, alice):
    file(acme_contract, alice)
    closed = file(acme_contract, alice)
    Ticket.objects.filter(pk=closed.pk).update(status="closed", at_risk_at=None, next_deadline=None)
    request_recompute()
    assert not DeadlineRecompute.objects.exists()


# --- Migrations interrupted half-way run again ------------------------------------------------------
def migration(name):
    return importlib.import_module(f"tickets.migrations.{name}")


def run(code):
    with connection.schema_editor(atomic=False) as editor:
        code(apps, editor)


def test_the_search_columns_are_added_again_over_columns_an_interrupted_run_added(db):
    """0015 is not atomic: a run stopped after its columns were added (its index builds are the slow
    part) runs again. Before, the second run stopped on "column search_document already exists"."""
    add_columns = migration("0015_search_documents").add_columns
    if connection.vendor == "postgresql":
        run(add_columns)
    else:  # SQLite's schema editor cannot open inside the test's transaction; with the columns there it adds none
        add_columns(apps, SimpleNamespace(connection=connection))
    with connection.cursor() as cursor:
        names = {c.name for c in connection.introspection.get_table_description(cursor, "tickets_ticket")}
    assert {"search_document", "search_public"} <= names


def invalidate(name):
    """What an interrupted CREATE INDEX CONCURRENTLY leaves: the index, marked INVALID."""
    with connection.cursor() as cursor:
        cursor.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = to_regclass(%s)", [name])
    assert indexes.invalid_indexes(connection) == [name]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("ticket_search", lambda: migration("0015_search_documents").Migration.operations[-1].code),
        ("user_email_prefix", lambda: migration("0016_search_people_indexes").Migration.operations[-1].code),
        ("ticket_queue_status", lambda: migration("0017_queue_order_indexes").forwards),
        (
            "webhook_subject_queue",
            lambda: (
                importlib.import_module("portal.migrations.0019_webhook_subject_index")
                .Migration.operations[0]
                .database_operations[0]
                .code
            ),
        ),
    ],
)
def test_an_index_whose_concurrent_build_was_interrupted_is_built_again(name, code):
    """IF NOT EXISTS skipped the INVALID index an interrupted build leaves, and the migration was
    recorded as done over an index PostgreSQL never reads: the index is dropped and built again."""
    invalidate(name)
    run(code())
    assert indexes.invalid_indexes(connection) == []
    assert not indexes.index_invalid(connection, name)


def test_the_form_submissions_age_index_is_created_where_0014_had_none(db):
    """The index was added to portal/0014 after it was published: a database that had applied 0014
    before never got it. 0015 creates it where it is missing and leaves it where it is."""
    operation = importlib.import_module("portal.migrations.0016_form_submission_age_index").Migration.operations[0]

    def indexes_of_the_table():
        with connection.cursor() as cursor:
            return connection.introspection.get_constraints(cursor, "portal_formsubmission")

    assert indexes_of_the_table()["form_submission_age"]["columns"] == ["created_at"]
    with connection.cursor() as cursor:
        cursor.execute('DROP INDEX "form_submission_age"')
        assert "form_submission_age" not in indexes_of_the_table()
        for _ in range(2):  # a database without it, then one with it
            cursor.execute(operation.database_operations[0].sql)
    assert indexes_of_the_table()["form_submission_age"]["columns"] == ["created_at"]
    assert operation.state_operations == []


def test_deliveries_waiting_before_0017_get_the_subject_of_their_key(alice):
    """0017 orders deliveries per subject: those already waiting get theirs from their key, so one
    ticket's still go in order and another ticket's no longer wait for them."""
    from portal.models import WebhookDelivery, WebhookEndpoint

    fill = importlib.import_module("portal.migrations.0017_webhook_delivery_subject").fill
    endpoint = WebhookEndpoint.objects.create(
        organisation=alice.organisation, url="https://hooks.example/sla", events=["ticket.updated"],
        secret="whsec_x", created_at=MON_1400,
    )  # fmt: skip

    def row(key, status="pending"):
        return WebhookDelivery.objects.create(
            endpoint=endpoint, event="ticket.updated", key=key, payload={}, status=status,
            next_attempt_at=MON_1400, created_at=MON_1400,
        )  # fmt: skip

    rows = [row("ticket:7:reply:3"), row("ticket:7:status:4", "sending"), row("claim:2:decided:approved")]
    old = row("ticket:7:filed", "delivered")
    fill(apps, None)
    assert [WebhookDelivery.objects.get(pk=r.pk).subject for r in rows] == ["ticket:7", "ticket:7", "claim:2"]
    assert WebhookDelivery.objects.get(pk=old.pk).subject == ""  # history: nothing reads it


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_deploy_checks_name_an_invalid_index():
    from portal.site.checks import no_invalid_indexes

    assert no_invalid_indexes(databases=["default"]) == []
    invalidate("ticket_search_public")
    try:
        (warning,) = no_invalid_indexes(databases=["default"])
        assert warning.id == "portal.W003" and "ticket_search_public" in warning.msg
        assert no_invalid_indexes(databases=None) == []  # `check --deploy` without --database reads no database
    finally:
        run(migration("0015_search_documents").Migration.operations[-1].code)
    assert indexes.invalid_indexes(connection) == []


def test_pending_requests_stored_before_0022_stop_with_their_excluded_or_resolved_ticket(acme_contract, alice, sam):
    """Before tickets/0022 an escalation request's acknowledgement kept running after its ticket was
    excluded or resolved: the migration derives the stored moments as the code now does (none for an
    excluded ticket; a resolved ticket's only where it came before the resolution), and the sweep
    then has nothing to warn of."""
    from tickets.models import EscalationRequest
    from tickets.services import ticket_request_escalation

    tickets = [file(acme_contract, alice, "P2") for _ in range(4)]  # excluded, resolved, late, open
    for t in tickets:
        with time_machine.travel(MON_1400 + MIN, tick=False):
            ticket_request_escalation(ticket=t, user=alice, reason="Still down.")
    stored = dict(EscalationRequest.objects.values_list("ticket_id", "ack_due"))
    due = MON_1400 + 61 * MIN
    assert set(stored.values()) == {due}
    Ticket.objects.filter(pk=tickets[0].pk).update(excluded_cause="force_majeure", excluded_reason="Flood.")
    Ticket.objects.filter(pk=tickets[1].pk).update(status="resolved", resolved_at=MON_1400 + 10 * MIN)
    Ticket.objects.filter(pk=tickets[2].pk).update(status="closed", resolved_at=MON_1400 + 2 * 60 * MIN)
    migration = importlib.import_module("tickets.migrations.0022_acknowledgement_stops_with_the_ticket")
    migration.stop_acknowledgement_clocks(apps, None)
    after = {r.ticket_id: (r.ack_due, r.ack_warn_at) for r in EscalationRequest.objects.all()}
    assert after == {
        tickets[0].pk: (None, None),
        tickets[1].pk: (None, None),
        tickets[2].pk: (due, due - 15 * MIN),  # breached before it was resolved: that stands
        tickets[3].pk: (due, due - 15 * MIN),
    }


def test_crossings_recorded_before_0023_get_the_priority_of_their_moment(acme_contract, alice, sam):
    """tickets/0023: a row's priority is the one the ticket had when it was recorded (a later priority
    change gives the new deadline its own warning); a breach names its moment as its deadline."""
    from tickets.models import SLACrossing
    from tickets.services import ticket_change_priority

    t, kept = file(acme_contract, alice, "P2"), file(acme_contract, alice, "P3")
    warned = SLACrossing.objects.create(ticket=t, clock="first_response", kind="at_risk", at=MON_1400 + 45 * MIN,
                                        recorded_at=MON_1400 + 45 * MIN)  # fmt: skip
    with time_machine.travel(MON_1400 + 50 * MIN, tick=False):
        ticket_change_priority(ticket=t, actor=sam, priority="P4", reason="One agent.")
    breach = SLACrossing.objects.create(ticket=kept, clock="first_response", kind="breach", at=MON_1400 + 4 * 60 * MIN,
                                        recorded_at=MON_1400 + 4 * 60 * MIN)  # fmt: skip
    SLACrossing.objects.update(priority="", deadline=None)
    importlib.import_module("tickets.migrations.0023_crossing_names_its_deadline").fill(apps, None)
    warned.refresh_from_db()
    breach.refresh_from_db()
    assert (warned.priority, warned.deadline) == ("P2", None)
    assert (breach.priority, breach.deadline) == ("P3", breach.at)
