"""Ticket search (tickets.search): staff in the queue, customers on their ticket list. The same
tickets on SQLite (icontains) and PostgreSQL (full-text search over the stored documents, which the
services write); what only PostgreSQL does (word forms, ranking by weight) is marked so."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tickets.models import Ticket
from tickets.search import SearchError, parse
from tickets.security import security_report_submit
from tickets.services import ticket_open, ticket_reply, ticket_set_status

from .factories import ContractFactory

pytestmark = pytest.mark.django_db

NBO = ZoneInfo("Africa/Nairobi")
WHEN = datetime(2026, 12, 11, 10, 0, tzinfo=NBO)
QUEUE = reverse("admin:tickets_ticket_changelist")
LIST = reverse("ticket-list")
postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="full-text search is PostgreSQL's")


@pytest.fixture
def world(acme_contract, alice, bob, globex, charlie, sam):
    globex_contract = ContractFactory(organisation=globex, reference="KLA-0001", contacts=[charlie])
    with time_machine.travel(WHEN, tick=False):

        def file(contract, user, subject, description="Something is wrong."):
            service = contract.services.get()
            return ticket_open(
                user=user, contract=contract, service=service, priority="P3", subject=subject, description=description
            )

        vault = file(acme_contract, alice, "Restore is slow", "The vault answers after a minute.")
        ticket_reply(ticket=vault, author=sam, body="Which region is the vault in?")
        ticket_reply(ticket=vault, author=alice, body="Frankfurt, the zebrafish cluster.")
        ticket_reply(ticket=vault, author=sam, body="Marmalade: the customer's retention is wrong.", internal=True)
        quota = file(acme_contract, bob, "Quota warning is wrong", "Zebrafish in the subject of nothing.")
        done = file(acme_contract, alice, "Agent cannot reach the vault")
        ticket_set_status(ticket=done, actor=sam, status=Ticket.Status.RESOLVED)
        theirs = file(globex_contract, charlie, "Zebrafish answers in Swedish", "The vault is theirs too.")
        report = security_report_submit(
            email="eve@research.example", name="Eve", summary="Zebrafish XSS in the vault", details="Details."
        )
    return {"vault": vault, "quota": quota, "done": done, "theirs": theirs, "report": report}


def queue(client, q, **params):
    response = client.get(QUEUE, {"q": q, **params})
    assert response.status_code == 200
    return [t.pk for t in response.context["cl"].result_list]


def customer_list(client, q, code=200, **params):
    response = client.get(LIST, {"q": q, **params})
    assert response.status_code == code
    return [row["ticket"].pk for row in response.context["rows"]], response.content.decode()


@pytest.fixture
def sam_client(sam):
    client = Client()
    client.force_login(sam)
    return client


def test_staff_find_tickets_by_any_of_their_words_notes_organisation_filer_and_number(world, sam_client, sol):
    w = world
    assert queue(sam_client, "frankfurt") == [w["vault"].pk]  # a customer's reply
    assert queue(sam_client, "marmalade") == [w["vault"].pk]  # an internal note: staff find it
    assert queue(sam_client, "region vault") == [w["vault"].pk]  # every word, anywhere in the ticket
    assert queue(sam_client, '"restore is slow"') == [w["vault"].pk]
    assert set(queue(sam_client, "globex")) == {w["theirs"].pk}  # the organisation's name
    assert set(queue(sam_client, "bob@acme")) == {w["quota"].pk}  # the filer's email, from its beginning
    assert queue(sam_client, f"#{w['quota'].pk}") == queue(sam_client, str(w["quota"].pk)) == [w["quota"].pk]
    # The queue's filters still apply (active by default): the resolved one only with "all".
    assert queue(sam_client, "reach") == []
    assert queue(sam_client, "reach", status="all") == [w["done"].pk]
    # Ranked: the subject's word (and on SQLite the first word in the subject) before the description's.
    assert queue(sam_client, "zebrafish")[0] == w["theirs"].pk
    assert set(queue(sam_client, "zebrafish")) == {w["vault"].pk, w["quota"].pk, w["theirs"].pk}
    assert set(queue(sam_client, "zebrafish -swedish")) == {w["vault"].pk, w["quota"].pk}
    # A vulnerability report: only for security staff.
    assert w["report"].pk not in queue(sam_client, "xss") + queue(sam_client, f"#{w['report'].pk}")
    sol_client = Client()
    sol_client.force_login(sol)
    assert queue(sol_client, "xss") == queue(sol_client, f"#{w['report'].pk}") == [w["report"].pk]


def test_customers_find_their_organisations_tickets_by_public_words_only(world, alice, charlie):
    w = world
    client = Client()
    client.force_login(alice)
    assert customer_list(client, "frankfurt")[0] == [w["vault"].pk]
    found, page = customer_list(client, "marmalade")  # an internal note's word finds nothing
    assert found == [] and "No tickets found by “marmalade”" in page
    found, page = customer_list(client, "zebrafish")  # Globex's ticket and the report: never
    assert set(found) == {w["vault"].pk, w["quota"].pk}
    assert "2 tickets found by “zebrafish”, best matches first" in page
    assert customer_list(client, "zebrafish", status="resolved")[0] == []  # with the list's filters
    assert customer_list(client, "bob")[0] == [w["quota"].pk]  # filed by Bob
    assert customer_list(client, f"#{w['theirs'].pk}")[0] == []  # another organisation's number
    other = Client()
    other.force_login(charlie)
    assert customer_list(other, "vault")[0] == [w["theirs"].pk]


@pytest.mark.parametrize(
    ("q", "message"),
    [
        ("x" * 201, "Search with at most 200 characters"),
        ("!!! &|", "Type a word, a phrase or a ticket number"),
        ("-vault", "not only what to leave out"),
        ("vault\x07", "characters that cannot be searched for"),
        ("vault\x00", "not allowed"),  # the form's own check; PostgreSQL refuses NUL in any text
    ],
)
def test_a_query_that_cannot_run_finds_nothing_and_says_why(world, alice, sam_client, q, message):
    client = Client()
    client.force_login(alice)
    found, page = customer_list(client, q, code=400)
    assert found == [] and message in page
    response = sam_client.get(QUEUE, {"q": q})
    assert response.status_code == 200
    if "\x00" not in q:  # the admin's own search form refuses NUL: no search, the whole queue
        assert list(response.context["cl"].result_list) == [] and message in response.content.decode()


def test_a_blank_query_is_no_search():
    assert parse("  ") is None and parse(None) is None
    assert parse(" #42 ").number == 42 and parse("42 apples").number is None
    with pytest.raises(SearchError):
        parse("-a -b")


@postgres_only
def test_postgres_stores_the_documents_and_finds_word_forms(world, sam_client):
    vault = Ticket.objects.get(pk=world["vault"].pk)
    assert "marmalad" in vault.search_document and "marmalad" not in vault.search_public
    assert Ticket.objects.get(pk=world["quota"].pk).search_public is None  # no notes: one document
    assert queue(sam_client, "restoring") == [world["vault"].pk]  # English stems
    assert queue(sam_client, "vault or quota")[:1] != []


@postgres_only
def test_postgres_plans_each_customer_search_for_its_own_words(world, acme_contract, alice, sam_client):
    """A statement run five times is kept prepared (portal/settings.py), and PostgreSQL may then
    plan it once for any words: a customer's common word was then read through the organisation's
    tickets one by one. So the customer's words are written into the statement, quoted: a quote, a
    percent sign or a backslash in them is searched for, never run, and no parameter carries them.
    The staff queue's one plan fits every search: its words stay a parameter."""
    with time_machine.travel(WHEN, tick=False):
        odd = ticket_open(
            user=alice, contract=acme_contract, service=acme_contract.services.get(), priority="P3",
            subject="O'Brien's 100% restore", description="From C:\\backup\\o'brien; DROP TABLE x; --",
        )  # fmt: skip
    client = Client()
    client.force_login(alice)
    sent = []

    def record(execute, sql, params, many, context):
        sent.append((sql, params))
        return execute(sql, params, many, context)

    searches = ["O'Brien 100%", "c:\\backup\\o'brien", "100% -restore", "'; DROP TABLE x; --"]
    found, staff = [], []
    for _ in range(7):  # past the five runs after which a statement is prepared
        with connection.execute_wrapper(record):
            found = [customer_list(client, q)[0] for q in searches]
        staff = [queue(sam_client, q) for q in searches]
    assert found == staff == [[odd.pk], [odd.pk], [], [odd.pk]]
    # The tickets' statements (the count and the page); the filers' emails are matched with LIKE.
    searched = [(sql, params) for sql, params in sent if "websearch_to_tsquery" in sql and "portal_user" not in sql]
    assert len(searched) >= 7 * len(searches)
    # Of the parameters, the words would be text: ids and moments are not theirs (an id of 1001 is
    # no "100" of theirs, as this check once read it).
    texts = [p for _, params in searched for p in params if isinstance(p, str)]
    assert all("brien" not in p.lower() and "100" not in p for p in texts), texts
    assert any("'O''Brien 100%%'" in sql for sql, _ in searched)


def test_beyond_the_ranked_many_results_come_in_the_lists_own_order(world, sam_client, alice, monkeypatch):
    monkeypatch.setattr("portal.core.paging.CappedPaginator.CAP", 1)
    client = Client()
    client.force_login(alice)
    with CaptureQueriesContext(connection) as queries:
        found, page = customer_list(client, "zebrafish")
    assert found == [world["quota"].pk, world["vault"].pk]  # newest first
    assert "More than 1 tickets found by “zebrafish”, newest first (add words to see the best matches first). " in page
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"]]
    assert len(counts) == 1 and "LIMIT 2" in counts[0]  # counted up to the cap, once
    monkeypatch.setattr("tickets.views.PAGE_SIZE", 1)
    found, page = customer_list(client, "zebrafish", page=2)
    assert found == [world["vault"].pk] and "first), page 2. " in page  # the pages are not counted
    assert '<li aria-current="page">Page 2</li>' in page
    response = sam_client.get(QUEUE, {"q": "zebrafish"})
    assert "More than 1 tickets found: in the queue" in response.content.decode()
