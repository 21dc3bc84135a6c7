"""Customer satisfaction (issue 21, item 4): a resolved ticket's filer gets one email with a good and
a bad link (signed, no sign-in); a link opens a page with that rating chosen and records nothing (mail
scanners follow links); its button's POST records the rating, once per ticket (used again, it changes
it); a forged or expired link is a 400. No email for an excluded ticket, a vulnerability report, a
filer the rule does not email, or a ticket whose filer is staff. The month's ratings show in the
compliance report and the SLA statement beside the attainment.

Alice (Acme, KAL-0001 on Kaluari) files a P1 on Monday 5 October 2026 at 10:00 in Nairobi; Sam
answers it at 10:10 and resolves it at 10:40. Clocks are frozen."""

import io
import re
from datetime import date, datetime, timedelta
from html import unescape
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail, signing
from django.test import Client
from django.urls import reverse
from pypdf import PdfReader

from credits.compliance import compliance_rows, csv_lines
from credits.statement import contract_statement
from portal.core.notify_rules import Choice
from portal.core.unsubscribe import preference_set
from portal.models import AuditEntry, OutboxMessage
from tickets import mail_thread
from tickets.models import Ticket, TicketEvent, TicketRating
from tickets.satisfaction import rating_url, ticket_rate
from tickets.security import security_report_submit
from tickets.services import ticket_exclude, ticket_open, ticket_reply, ticket_set_status

from .conftest import SCREENSHOTS

pytestmark = pytest.mark.django_db

NBO = ZoneInfo("Africa/Nairobi")
FILED = datetime(2026, 10, 5, 10, 0, tzinfo=NBO)
RESOLVED = FILED + timedelta(minutes=40)
OCT = date(2026, 10, 1)
NOV_3 = datetime(2026, 11, 3, 10, 0, tzinfo=NBO)


def _at(moment, fn, **kwargs):
    with time_machine.travel(moment, tick=False):
        return fn(**kwargs, now=moment)


def _file(contract, user, at=FILED, subject="Backups fail"):
    return _at(at, ticket_open, user=user, contract=contract, service=contract.services.get(), priority="P1",
               subject=subject, description="Nothing backs up.")  # fmt: skip


def _resolve(ticket, sam, at=RESOLVED):
    return _at(at, ticket_set_status, ticket=ticket, actor=sam, status=Ticket.Status.RESOLVED)


def _sent(capture, fn):
    """The emails `fn` causes, as the worker sends them."""
    mail.outbox.clear()
    with capture(execute=True):
        fn()
    return list(mail.outbox)


def rating_mails():
    return [m for m in mail.outbox if "How did we do?" in m.subject]


@pytest.fixture
def ticket(acme_contract, alice, sam):
    t = _file(acme_contract, alice)
    _at(FILED + timedelta(minutes=10), ticket_reply, ticket=t, author=sam, body="On it.")
    return t


def text_of(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


# --- The email ---------------------------------------------------------------------------------------
def test_resolving_emails_the_filer_once_with_a_good_and_a_bad_link(
    ticket, alice, bob, sam, django_capture_on_commit_callbacks
):
    sent = _sent(django_capture_on_commit_callbacks, lambda: _resolve(ticket, sam))
    (rating,) = [m for m in sent if "How did we do?" in m.subject]  # Alice only: Bob did not file it
    assert rating.to == [alice.email]
    assert rating.subject == f"[{ticket.number}] How did we do? Backups fail"
    root = mail_thread.root_id(ticket)  # in the ticket's thread
    assert rating.extra_headers["In-Reply-To"] == root and rating.extra_headers["References"] == root
    assert rating.extra_headers["Reply-To"] == mail_thread.reply_address_for(ticket, alice.email)
    assert rating.extra_headers["Auto-Submitted"] == "auto-generated"
    # Optional ("Updates on my tickets"): it can be turned off in one click.
    assert rating.extra_headers["List-Unsubscribe"].startswith("<http")
    with time_machine.travel(RESOLVED, tick=False):
        good, bad = rating_url(ticket, "good"), rating_url(ticket, "bad")
    assert f"Good: {good}" in rating.body and f"Bad:  {bad}" in rating.body
    html = rating.alternatives[0][0]
    assert f'href="{good.replace("&", "&amp;")}"' in html and f'href="{bad}"' in html
    assert "your rating counts when you press Send there" in rating.body
    assert OutboxMessage.objects.get(template="ticket_rating").key == f"ticket:{ticket.pk}:rating"

    # Reopened by Alice and resolved again (through a reply with a status): no second email; the
    # first one's links still change the one rating.
    _at(RESOLVED + timedelta(hours=1), ticket_set_status, ticket=ticket, actor=alice, status=Ticket.Status.OPEN)
    again = _sent(
        django_capture_on_commit_callbacks,
        lambda: _at(RESOLVED + timedelta(hours=2), ticket_reply, ticket=ticket, author=sam, body="Fixed for good.",
                    status=Ticket.Status.RESOLVED),
    )  # fmt: skip
    assert [m.to for m in again] == [[alice.email]]  # the reply saying it is resolved, no rating email
    assert "How did we do?" not in again[0].subject
    assert OutboxMessage.objects.filter(template="ticket_rating").count() == 1


def test_a_ticket_closed_at_once_is_resolved_and_rated_too(acme_contract, alice, sam, django_capture_on_commit_callbacks):  # fmt: skip
    ticket = _file(acme_contract, alice)
    closed = lambda: _at(RESOLVED, ticket_set_status, ticket=ticket, actor=sam, status=Ticket.Status.CLOSED)  # noqa: E731
    sent = _sent(django_capture_on_commit_callbacks, closed)
    assert [m.to for m in sent if "How did we do?" in m.subject] == [[alice.email]]


def test_no_rating_email_for_excluded_or_security_tickets_or_filers_the_rule_leaves_out(
    acme_contract, alice, bob, sam, lena, sol
):
    excluded = _file(acme_contract, alice, subject="Agent modified")
    cause = acme_contract.sla.versions.get().exclusion_causes[0]
    _at(FILED + timedelta(minutes=5), ticket_exclude, ticket=excluded, actor=lena, cause=cause, reason="Modified.")
    _resolve(excluded, sam)

    report = _at(FILED, security_report_submit, email="finder@example.org", name="", summary="XSS", details="Login.")
    _resolve(report, sol)

    preference_set(user=bob, choice=Choice.TICKET_MINE, enabled=False, via="page")  # Bob: no updates on his tickets
    _resolve(_file(acme_contract, bob, subject="Bob's"), sam)

    by_staff = _file(acme_contract, alice, subject="Filed for nobody")
    Ticket.objects.filter(pk=by_staff.pk).update(created_by=sam)  # a ticket whose filer is staff
    _resolve(Ticket.objects.get(pk=by_staff.pk), sam)

    assert not OutboxMessage.objects.filter(template="ticket_rating").exists()


# --- The page and its POST ------------------------------------------------------------------------------
@pytest.fixture
def link(ticket, sam):
    _resolve(ticket, sam)
    with time_machine.travel(RESOLVED, tick=False):
        return path_of(rating_url(ticket, "bad"))


def test_the_link_shows_the_chosen_rating_and_records_nothing(client, ticket, link):
    with time_machine.travel(RESOLVED + timedelta(days=1), tick=False):
        response = client.get(link)
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    html = response.content.decode()
    assert re.search(r'<input type="radio" name="rating" value="bad" id="id_rating_1" checked', html)
    assert not re.search(r'value="good"[^>]* checked', html)
    assert f"How did we do on ticket {ticket.number}?" in text_of(html)
    assert "Nothing is recorded until you press the button." in text_of(html)
    assert not TicketRating.objects.exists() and not AuditEntry.objects.filter(action="ticket.rated").exists()


def test_the_post_records_without_a_session_and_a_second_use_changes_the_one_rating(ticket, alice, link):
    browser = Client(enforce_csrf_checks=True)  # no session, no CSRF cookie: the token is the proof
    first_at = RESOLVED + timedelta(days=1)
    with time_machine.travel(first_at, tick=False):
        response = browser.post(link, {"rating": "bad", "comment": "  Took three calls.  "})
    assert response.status_code == 200
    assert "Thank you: your rating bad is recorded, with your comment." in text_of(response.content.decode())
    rating = TicketRating.objects.get()
    assert (rating.ticket, rating.rating, rating.comment, rating.rated_by) == (
        ticket,
        "bad",
        "Took three calls.",
        alice,
    )
    assert rating.rated_at == rating.updated_at == first_at

    with time_machine.travel(first_at + timedelta(hours=2), tick=False):
        browser.post(link, {"rating": "bad", "comment": "Took three calls."})  # the same again: nothing changes
        response = browser.post(link, {"rating": "good", "comment": ""})
    assert "your rating good is changed" in text_of(response.content.decode())
    rating = TicketRating.objects.get()  # one row a ticket
    assert (rating.rating, rating.comment, rating.rated_at) == ("good", "", first_at)
    assert rating.updated_at == first_at + timedelta(hours=2)
    events = TicketEvent.objects.filter(ticket=ticket, kind=TicketEvent.Kind.RATED)
    assert [e.data["rating"] for e in events] == ["bad", "good"]
    audited = AuditEntry.objects.filter(action="ticket.rated").order_by("at")
    assert [(a.before, a.after, a.actor_id) for a in audited] == [
        ({}, {"rating": "bad", "comment": "Took three calls."}, alice.pk),
        ({"rating": "bad", "comment": "Took three calls."}, {"rating": "good", "comment": ""}, alice.pk),
    ]


def test_bad_input_is_a_400_with_the_fields_message(ticket, link):
    with time_machine.travel(RESOLVED, tick=False):
        response = Client().post(link, {"rating": "meh", "comment": "x" * 2001})
    assert response.status_code == 400
    text = text_of(response.content.decode())
    assert "Your rating: Choose good or bad." in text
    assert "Comment: Ensure this value has at most 2000 characters (it has 2001)." in text
    assert not TicketRating.objects.exists()


def test_forged_altered_and_expired_links_are_a_400_and_record_nothing(ticket, alice, link, bob):
    forged = reverse("ticket-rate", args=[signing.dumps({"t": ticket.pk, "u": alice.pk}, salt="forged")])
    with time_machine.travel(RESOLVED, tick=False):
        bobs = reverse("ticket-rate", args=[signing.dumps({"t": ticket.pk, "u": bob.pk}, salt="tickets.rating")])
        altered = link.replace("/rate/", "/rate/x")
        for url in (forged, altered):
            response = Client().post(url, {"rating": "good"})
            assert response.status_code == 400
            assert "This rating link is not valid." in response.content.decode()
        response = Client().post(bobs, {"rating": "good"})  # signed by us, but Bob did not file it
        assert response.status_code == 400 and "no longer names a ticket of yours" in response.content.decode()
    with time_machine.travel(RESOLVED + timedelta(days=31), tick=False):
        response = Client().post(link, {"rating": "good"})
    assert response.status_code == 400
    assert "This rating link has expired: links work for 30 days" in response.content.decode()
    assert not TicketRating.objects.exists()


def test_the_one_emails_link_rates_a_ticket_reopened_and_resolved_again_for_30_days_after_that(ticket, alice, sam):
    """Alice rates #1 good on 5 October; it breaks again, she reopens it on 30 October and Sam resolves
    it again on 6 November (no second email, by decision). Her first email's link is measured from that
    latest resolution: on 7 November she changes her rating to bad, until 6 December it works, after
    that it has expired. Reopened (not resolved yet), it counts from the resolution before."""
    _resolve(ticket, sam)
    with time_machine.travel(RESOLVED, tick=False):
        link = path_of(rating_url(ticket, "bad"))  # the one email's link
    _at(RESOLVED + timedelta(hours=1), ticket_rate, ticket=ticket, user=alice, rating="good")
    _at(RESOLVED + timedelta(days=25), ticket_set_status, ticket=ticket, actor=alice, status=Ticket.Status.OPEN)
    with time_machine.travel(RESOLVED + timedelta(days=29), tick=False):  # open again: 30 days from 5 October
        assert Client().get(link).status_code == 200
    with time_machine.travel(RESOLVED + timedelta(days=31), tick=False):
        assert "This rating link has expired" in Client().get(link).content.decode()
    _at(RESOLVED + timedelta(days=32), ticket_set_status, ticket=ticket, actor=sam, status=Ticket.Status.RESOLVED)
    with time_machine.travel(RESOLVED + timedelta(days=33), tick=False):
        response = Client().post(link, {"rating": "bad", "comment": "It broke again; took a month."})
    assert response.status_code == 200 and "This rating link has expired" not in response.content.decode()
    assert TicketRating.objects.get(ticket=ticket).rating == "bad"
    with time_machine.travel(RESOLVED + timedelta(days=62), tick=False):
        assert Client().post(link, {"rating": "good"}).status_code == 200
    with time_machine.travel(RESOLVED + timedelta(days=62, minutes=1), tick=False):
        response = Client().post(link, {"rating": "bad"})
    assert response.status_code == 400 and "This rating link has expired" in response.content.decode()
    assert TicketRating.objects.get(ticket=ticket).rating == "good"


# --- The staff side and the month's figures ----------------------------------------------------------
def test_the_agent_sees_the_rating_on_the_ticket_and_filters_the_queue_by_it(client, ticket, alice, sam, link):
    _at(RESOLVED + timedelta(hours=1), ticket_rate, ticket=ticket, user=alice, rating="bad", comment="Slow.")
    other = _file(ticket.contract, alice, subject="Not rated")
    _resolve(other, sam, at=RESOLVED + timedelta(minutes=5))
    client.force_login(sam)
    page = text_of(client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk])).content.decode())
    assert "Customer satisfaction: Bad by Alice Achieng, 2026-10-05 11:40 (UTC+03:00) “Slow.”" in page
    queue = reverse("admin:tickets_ticket_changelist")
    listed = client.get(queue, {"rating": "bad", "status": "all"}).content.decode()
    assert "Backups fail" in listed and "Not rated" not in listed
    unrated = client.get(queue, {"rating": "unrated", "status": "all"}).content.decode()
    assert "Not rated" in unrated and "Backups fail" not in unrated
    # The filter's choices take the queue to every status (rated tickets are not active ones).
    assert "?rating=bad&amp;status=all" in client.get(queue).content.decode()
    assert client.get(queue, {"rating": "meh"}).status_code == 400
    assert (
        client.get(queue, {"status": "all", "_facets": "True"}).status_code == 200
    )  # counts asked for: none, no error


@pytest.fixture
def october(acme_contract, alice, bob, sam):
    """Five P1s filed in October: two rated good, one bad, one resolved and not rated, one open; and
    an excluded one rated (not counted)."""
    tickets = [_file(acme_contract, alice, at=FILED + timedelta(days=i)) for i in range(6)]
    for i, t in enumerate(tickets):
        if i != 4:  # the fifth stays open
            _resolve(t, sam, at=FILED + timedelta(days=i, minutes=40))
    cause = acme_contract.sla.versions.get().exclusion_causes[0]
    _at(FILED + timedelta(days=6), ticket_exclude, ticket=tickets[5], actor=sam, cause=cause, reason="Modified.")
    for i, rating in ((0, "good"), (1, "good"), (2, "bad"), (5, "bad")):
        _at(FILED + timedelta(days=7), ticket_rate, ticket=tickets[i], user=alice, rating=rating)
    return acme_contract


def test_the_statement_and_the_compliance_report_show_the_months_satisfaction(client, alice, ayo, october):
    with time_machine.travel(NOV_3, tick=False):
        statement = contract_statement(contract=october, month=OCT, now=NOV_3)
        assert statement.satisfaction == "2 good, 1 bad (66.67%) of 3 rated, 4 resolved"
        client.force_login(alice)
        page = client.get(reverse("contract-statement", args=[october.pk, "2026-10"])).content.decode()
        assert "Satisfaction: 2 good, 1 bad (66.67%) of 3 rated, 4 resolved" in text_of(page)
        pdf = client.get(reverse("contract-statement-pdf", args=[october.pk, "2026-10"])).content
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS / "satisfaction-statement.pdf").write_bytes(pdf)
        printed = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages).split())
        assert "Satisfaction: 2 good, 1 bad (66.67%) of 3 rated, 4 resolved" in printed
        november = contract_statement(contract=october, month=date(2026, 11, 1), now=NOV_3)
        assert november.satisfaction == "no ticket resolved"

        (row,) = compliance_rows([october], month=OCT, now=NOV_3)
        assert (row.total.resolved, row.total.rated_good, row.total.rated_bad) == (4, 2, 1)
        (line,) = [v for v in csv_lines([row]) if v[18] == "all"]
        assert line[-4:] == [4, 2, 1, "66.67"]
        client.force_login(ayo)
        report = client.get(reverse("admin:compliance"), {"month": "2026-10"}).content.decode()
    assert "66.67% 2 good · 1 bad of 4 resolved" in text_of(report)


def test_the_filers_organisation_sees_the_rating_on_the_ticket_and_in_the_api(ticket, alice, bob, charlie, sam, link):
    from rest_framework.test import APIClient

    _at(
        RESOLVED + timedelta(hours=1),
        ticket_rate,
        ticket=ticket,
        user=alice,
        rating="bad",
        comment="Slow <b>again</b>.",
    )
    unrated = _file(ticket.contract, alice, subject="Not rated")
    client = Client()
    client.force_login(bob)  # another member of the filer's organisation
    html = client.get(reverse("ticket-detail", args=[ticket.pk])).content.decode()
    assert "Slow &lt;b&gt;again&lt;/b&gt;." in html
    assert "Satisfaction Rated bad by Alice Achieng, 2026-10-05 11:40 (UTC+03:00): “Slow <b>again</b>.”" in text_of(
        html
    )
    assert "Satisfaction" not in text_of(client.get(reverse("ticket-detail", args=[unrated.pk])).content.decode())
    api = APIClient()
    api.force_authenticate(bob)
    shown = api.get(f"/api/v1/tickets/{ticket.pk}/").json()["satisfaction"]
    assert (shown["rating"], shown["comment"]) == ("bad", "Slow <b>again</b>.")
    assert shown["rated_at"] == shown["updated_at"] and shown["rated_at"].startswith("2026-10-05T")
    listed = {t["id"]: t["satisfaction"] for t in api.get("/api/v1/tickets/").json()["results"]}
    assert listed == {ticket.pk: shown, unrated.pk: None}
    api.force_authenticate(charlie)  # another organisation: the ticket does not exist for it
    assert api.get(f"/api/v1/tickets/{ticket.pk}/").status_code == 404
    assert api.get("/api/v1/tickets/").json()["results"] == []


def test_staff_never_read_the_rating_links_that_rate_for_the_filer(client, ticket, link, sam):
    """The outbox shows that the rating email went, not its links: with them anyone reading the
    outbox could rate any ticket as its customer (the KPI Klart's SLA names)."""
    row = OutboxMessage.objects.get(template="ticket_rating")
    client.force_login(sam)
    page = client.get(reverse("admin:portal_outboxmessage_change", args=[row.pk])).content.decode()
    assert "Withheld: it holds a link" in page
    token = link.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
    assert len(token) > 20 and token not in page
