"""Email contexts frozen with the change and rendered by the worker (portal.core.snapshot, portal.core.outbox):
the email says what was true when it was written, renders without touching the database, and a
context that cannot be rendered fails its row, not the change."""

import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from portal.core import delivery
from portal.core.delivery import outbox_claim, outbox_deliver, outbox_render
from portal.core.outbox import Email, outbox_enqueue
from portal.core.snapshot import freeze, thaw
from portal.models import OutboxAttempt, OutboxMessage, User
from tickets.models import Ticket
from tickets.services import ticket_open
from tickets.sweeps import check_sla_deadlines, escalate_due_tickets

from .factories import StaffFactory

NOW = datetime(2026, 12, 11, 13, 0, tzinfo=UTC)  # a Friday, 16:00 in Nairobi
pytestmark = pytest.mark.django_db


@pytest.fixture
def ticket(acme_contract, alice):
    with time_machine.travel(NOW, tick=False):
        return ticket_open(
            user=alice, contract=acme_contract, service=acme_contract.services.first(), priority="P1",
            subject="Backups fail", description="Since Monday.", steps_to_reproduce="Run a backup.",
        )  # fmt: skip


def test_plain_and_tagged_values_come_back_as_they_went():
    context = {
        "n": 3, "x": 1.5, "yes": True, "none": None, "text": "R&D “quoted” \\ / \n",
        "at": datetime(2026, 12, 11, 13, 0, 5, 7, tzinfo=UTC), "day": date(2026, 12, 11), "clock": time(8, 30),
        "notice": timedelta(days=2, seconds=5, microseconds=9), "amount": Decimal("1500.25"),
        "token": uuid.UUID(int=7), "nested": {"list": [1, (2, 3), {"deep": date(2027, 1, 1)}]},
    }  # fmt: skip
    back = thaw(freeze(context))
    assert back == {**context, "nested": {"list": [1, [2, 3], {"deep": date(2027, 1, 1)}]}}
    assert back["at"].tzinfo is not None


def test_unsupported_values_are_refused_when_the_row_is_written():
    with pytest.raises(TypeError, match="cannot hold a object"):
        outbox_enqueue(email=Email(key="k", to="a@b.example", template="password_reset", context={"x": object()}))
    with pytest.raises(TypeError, match="keys are names"):
        freeze({"$": 1})
    assert not OutboxMessage.objects.exists()


def test_a_model_comes_back_with_its_fields_and_loaded_relations_and_no_password(ticket, alice):
    t = Ticket.objects.select_related("organisation", "sla_version", "contract").get(pk=ticket.pk)
    text = freeze({"ticket": t, "recipient": alice})
    assert alice.password and alice.password not in text
    with CaptureQueriesContext(connection) as queries:
        back = thaw(text)
        shown = (back["ticket"].number, back["ticket"].get_priority_display(), back["ticket"].organisation.name,
                 back["ticket"].sla_version.timezone, back["ticket"].first_response_due, back["recipient"].get_full_name())  # fmt: skip
    assert not queries.captured_queries
    expected = (
        t.number,
        t.get_priority_display(),
        t.organisation.name,
        "Africa/Nairobi",
        t.first_response_due,
        alice.name,
    )
    assert shown == expected
    # A field the templates do not name is not frozen: it loads on first use, as a deferred field.
    assert "Run a backup." not in text
    with CaptureQueriesContext(connection) as queries:
        assert back["ticket"].steps_to_reproduce == "Run a backup."
    assert len(queries.captured_queries) == 1


def test_the_email_says_what_was_true_when_it_was_written(ticket, alice, mailoutbox):
    t = Ticket.objects.select_related("sla_version").get(pk=ticket.pk)
    ctx = {"ticket": t, "recipient": alice, "clock": "resolution", "clock_label": "resolution", "kind": "breach",
           "deadline": t.resolution_due}  # fmt: skip
    outbox_enqueue(email=Email(key="breach", to=alice.email, template="ticket_breach", context=ctx))
    Ticket.objects.filter(pk=t.pk).update(subject="Renamed later")
    User.objects.filter(pk=alice.pk).update(name="Someone Else")
    outbox_deliver(messages=outbox_claim(now=datetime.now(UTC), limit=10))
    [sent] = mailoutbox
    assert "Backups fail" in sent.subject and "Renamed later" not in sent.body
    assert f"Hello {alice.name}," in sent.body
    row = OutboxMessage.objects.get(key="breach")
    assert (row.subject, row.body_text) == (sent.subject, sent.body)  # stored as sent


def test_a_row_that_cannot_be_rendered_fails_and_says_why(ticket, alice, mailoutbox):
    ctx = {"ticket": Ticket.objects.get(pk=ticket.pk), "recipient": alice}
    outbox_enqueue(email=Email(key="gone", to=alice.email, template="ticket_filed", context=ctx))
    # A deploy removed the template while the row waited.
    OutboxMessage.objects.filter(key="gone").update(template="no_such_template")
    assert outbox_deliver(messages=outbox_claim(now=datetime.now(UTC), limit=10)) == 0
    row = OutboxMessage.objects.get(key="gone")
    assert not mailoutbox and row.status == "pending" and "TemplateDoesNotExist" in row.last_error
    assert row.next_attempt_at > datetime.now(UTC)  # backed off, like a refused send
    assert OutboxAttempt.objects.get(message=row).ok is False


def test_a_retry_sends_the_text_rendered_the_first_time(ticket, alice, settings, monkeypatch, mailoutbox):
    outbox_enqueue(email=Email(key="once", to=alice.email, template="ticket_filed", context={"ticket": ticket}))
    settings.EMAIL_BACKEND = "tests.test_outbox.BrokenBackend"
    outbox_deliver(messages=outbox_claim(now=datetime.now(UTC), limit=10))
    row = OutboxMessage.objects.get(key="once")
    assert row.status == "pending" and row.subject.startswith(f"[{ticket.number}]")

    def render_again(*args, **kwargs):
        raise AssertionError("a row rendered once is not rendered again")

    monkeypatch.setattr(delivery, "render", render_again)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    outbox_deliver(messages=outbox_claim(now=datetime.now(UTC) + timedelta(hours=2), limit=10))
    assert [m.subject for m in mailoutbox] == [row.subject]


def test_the_sweeps_emails_render_without_a_query(acme_contract, alice, bob):
    """What the ticket templates read is frozen with the sweep's emails (Ticket.EMAIL_FIELDS,
    User.EMAIL_FIELDS and the relations the sweeps select): the worker renders them from memory."""
    StaffFactory(email="lena@vendor.example", name="Lena Lead", staff_role="support_lead")
    with time_machine.travel(NOW, tick=False):
        t = ticket_open(
            user=alice, contract=acme_contract, service=acme_contract.services.first(), priority="P1",
            subject="Backups fail", description="Since Monday.",
        )  # fmt: skip
    Ticket.objects.filter(pk=t.pk).update(assignee=StaffFactory(name="Sam Staff"))
    OutboxMessage.objects.all().delete()
    later = NOW + timedelta(hours=30)
    with time_machine.travel(later, tick=False):
        escalate_due_tickets(now=later)
        check_sla_deadlines(now=later)
    templates = set(OutboxMessage.objects.values_list("template", flat=True))
    assert {"ticket_escalated", "ticket_escalated_staff", "ticket_breach", "ticket_breach_staff"} <= templates
    for row in OutboxMessage.objects.all():
        with CaptureQueriesContext(connection) as queries:
            subject, text, html = outbox_render(row)
        assert not queries.captured_queries, (row.template, [q["sql"] for q in queries.captured_queries])
        assert t.number in subject and "Backups fail" in subject


def test_staff_see_a_pending_row_as_it_will_be_sent(client, sam, ticket, alice):
    outbox_enqueue(email=Email(key="wait", to=alice.email, template="ticket_filed", context={"ticket": ticket}))
    row = OutboxMessage.objects.get(key="wait")
    client.force_login(sam)
    listing = client.get(reverse("admin:portal_outboxmessage_changelist")).content.decode()
    assert "(ticket_filed: rendered when sent)" in listing
    page = client.get(reverse("admin:portal_outboxmessage_change", args=[row.pk])).content.decode()
    assert f"[{ticket.number}]" in page and "Backups fail" in page
    row.refresh_from_db()
    assert not row.subject  # previewing renders nothing into the row


def test_staff_never_read_a_link_that_signs_its_reader_in(client, sam, alice, mailoutbox):
    # A password reset's link in the outbox was a support agent's way into Alice's account.
    from portal.core.delivery import outbox_send_due

    client.post("/accounts/password_reset/", {"email": alice.email})
    outbox_send_due()
    (sent,) = mailoutbox
    link = next(word for word in sent.body.split() if "/accounts/reset/" in word)
    row = OutboxMessage.objects.get(template="password_reset")
    client.force_login(sam)
    page = client.get(reverse("admin:portal_outboxmessage_change", args=[row.pk])).content.decode()
    assert alice.email in page and "Withheld: it holds a link" in page
    assert link.split("/accounts/reset/")[1].split("/")[1] not in page  # the token
    assert "/accounts/reset/" not in page
