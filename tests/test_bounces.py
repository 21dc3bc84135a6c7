"""Bounces (portal/core/bounces.py): every email goes out with a return path naming its outbox row
(VERP), and what comes back to it is recognised: DSNs (RFC 3464) from Postfix and Exim, the
non-standard bounces of qmail and Exchange, a delay, an out-of-office. The samples in
tests/bounces/ are real MTAs' formats with our addresses filled in."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.urls import reverse

from portal.core.bounces import Outcome, bounce_read, bounce_receive, verp_address, verp_read
from portal.core.delivery import outbox_send_key
from portal.core.outbox import Email, outbox_enqueue
from portal.models import BouncedAddress, OutboxMessage

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 2, 9, 10, tzinfo=UTC)
SAMPLES = Path(__file__).parent / "bounces"
POLICY = email.policy.default  # as the email ingest parses (tickets.inbound.parse)


def sent(key="ticket:1:reply:1:user:1", to="alice@acme.example") -> OutboxMessage:
    with time_machine.travel(NOW, tick=False):
        outbox_enqueue(email=Email(key=key, to=to, template="password_reset", context={"reset_url": "https://x/r"}))
        outbox_send_key(key=key)
    return OutboxMessage.objects.get(key=key)


def sample(name: str, row: OutboxMessage, *, verp: str | None = None):
    text = (SAMPLES / name).read_text()
    text = text.replace("{verp}", verp or verp_address(row.pk)).replace("{to}", row.to)
    return email.message_from_bytes(text.replace("{message_id}", row.message_id).encode(), policy=POLICY)


# --- The return path --------------------------------------------------------------------------------
def test_each_email_goes_out_with_a_return_path_naming_its_row(mailoutbox, settings):
    settings.BOUNCE_ADDRESS = "Bounces@Vendor.example"
    row = sent()
    (message,) = mailoutbox
    assert message.from_email == verp_address(row.pk)  # the envelope sender (SMTP MAIL FROM)
    assert message.from_email.startswith("bounces+") and message.from_email.endswith("@vendor.example")
    assert message.message()["From"] == settings.DEFAULT_FROM_EMAIL  # what the person sees is unchanged
    assert verp_read(message.from_email) == row.pk
    assert verp_read(message.from_email.upper()) == row.pk  # an MTA that folds the case


def test_a_forged_or_foreign_return_path_names_no_row(settings):
    good, other = verp_address(41), verp_address(42)
    token, domain = good.split("+")[1].split("@")
    mac41, id42 = token.split(".")[1], other.split("+")[1].split(".")[0]
    assert verp_read(good) == 41 and verp_read(other) == 42
    assert verp_read(f"bounces+{id42}.{mac41}@{domain}") is None  # another row's id under this one's HMAC
    assert verp_read(f"support+{token}@{domain}") is None  # another plus-address of ours
    assert verp_read(f"bounces+{token}@elsewhere.example") is None
    assert verp_read("bounces@vendor.example") is None and verp_read("") is None
    settings.SECRET_KEY = "another-secret-" * 4
    assert verp_read(good) is None  # the token is an HMAC under our secret


def test_the_return_path_reaches_the_smtp_server_as_mail_from(settings):
    from aiosmtpd.controller import Controller

    from .conftest import free_port

    class Handler:
        envelopes = []

        async def handle_DATA(self, server, session, envelope):
            self.envelopes.append(envelope)
            return "250 OK"

    handler, port = Handler(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", port, False
        row = sent()
    finally:
        controller.stop()
    (envelope,) = handler.envelopes
    assert envelope.mail_from == verp_address(row.pk) and envelope.rcpt_tos == ["alice@acme.example"]
    parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert parsed["From"] == "SLA Portal <sla-portal@vendor.example>"


# --- Recognising what comes back ---------------------------------------------------------------------
@pytest.fixture(params=["default", "compat32"])
def policy(request, monkeypatch):
    """Each sample read as the ingest reads it (email.policy.default) and as the older API does."""
    monkeypatch.setattr(f"{__name__}.POLICY", getattr(email.policy, request.param))


def test_a_postfix_dsn_marks_the_row_and_the_address(policy):
    row, other = sent(), sent(key="ticket:1:reply:1:user:2", to="bob@acme.example")
    bounce = bounce_receive(message=sample("postfix_dsn.eml", row), now=LATER)
    assert (bounce.outcome, bounce.row, bounce.address, bounce.status) == (Outcome.FAILED, row, row.to, "5.1.1")
    assert "User unknown in local recipient table" in bounce.detail
    row.refresh_from_db()
    assert (row.bounced_at, row.bounce_status, row.status) == (LATER, "5.1.1", "sent")
    assert "Recipient address rejected" in row.bounce_detail
    entry = BouncedAddress.objects.get()
    assert (entry.address, entry.bounces, entry.last_status, entry.last_message) == (row.to, 1, "5.1.1", row)
    assert (entry.first_bounced_at, entry.last_bounced_at) == (LATER, LATER)
    other.refresh_from_db()
    assert other.bounced_at is None


def test_the_same_bounce_taken_twice_counts_once():
    row = sent()
    bounce_receive(message=sample("postfix_dsn.eml", row), now=LATER)
    bounce_receive(message=sample("postfix_dsn.eml", row), now=LATER.replace(minute=30))
    entry = BouncedAddress.objects.get()
    assert entry.bounces == 1 and entry.last_bounced_at == LATER.replace(minute=30)
    row.refresh_from_db()
    assert row.bounced_at == LATER  # the first report's moment is kept
    second = sent(key="maintenance:1:r1:announce:contract:1:user:1")
    bounce_receive(message=sample("qmail_bounce.eml", second), now=LATER.replace(minute=40))
    entry.refresh_from_db()
    assert entry.bounces == 2 and entry.last_message == second


def test_an_exim_dsn_without_our_return_path_is_found_by_the_returned_messages_id(policy):
    row = sent(to="charlie@globex.example")
    bounce = bounce_receive(message=sample("exim_dsn_returned_message.eml", row), now=LATER)
    assert (bounce.outcome, bounce.row, bounce.status) == (Outcome.FAILED, row, "5.2.2")
    assert bounce.detail == "X-Exim; mailbox is full"
    assert BouncedAddress.objects.get().address == "charlie@globex.example"


@pytest.mark.parametrize(("name", "status"), [("qmail_bounce.eml", "5.1.1"), ("exchange_ndr_text.eml", "5.1.10")])
def test_non_standard_bounces_are_read_by_their_return_path(name, status, policy):
    row = sent()
    bounce = bounce_receive(message=sample(name, row), now=LATER)
    assert (bounce.outcome, bounce.row, bounce.address, bounce.status) == (Outcome.FAILED, row, row.to, status)
    row.refresh_from_db()
    assert row.bounce_status == status and BouncedAddress.objects.get().address == row.to


def test_a_delay_and_an_out_of_office_are_recognised_and_mark_nothing(policy):
    row = sent()
    delayed = bounce_receive(message=sample("delayed_dsn.eml", row), now=LATER)
    assert (delayed.outcome, delayed.row, delayed.status) == (Outcome.DELAYED, row, "4.4.1")
    away = bounce_receive(message=sample("out_of_office.eml", row), now=LATER)
    assert (away.outcome, away.row) == (Outcome.OTHER, row)  # RFC 3834 answers the return path
    row.refresh_from_db()
    assert row.bounced_at is None and not BouncedAddress.objects.exists()


def test_a_forged_bounce_marks_nothing_and_a_customers_message_is_no_bounce():
    row = sent()
    # Our bounce address, with a token no HMAC of ours gives (that of row zz is another).
    forged = sample("qmail_bounce.eml", row, verp="bounces+zz.000000000001@vendor.example")
    bounce = bounce_receive(message=forged, now=LATER)
    assert (bounce.outcome, bounce.row) == (Outcome.FAILED, None)  # recognised, but names no email of ours
    row.refresh_from_db()
    assert row.bounced_at is None and not BouncedAddress.objects.exists()

    customer = email.message_from_string(
        "From: Alice <alice@acme.example>\nTo: support@kaluari.com\nSubject: Backups fail again\n\nHello,\n"
    )
    assert bounce_read(customer) is None
    note = email.message_from_string(
        "From: Alice <alice@acme.example>\nTo: support@kaluari.com\nSubject: Undeliverable: my mail to Bob\n\nWhy?\n"
    )
    assert bounce_read(note) is None  # about no email of ours: a person's message, filed as usual


# --- For staff ------------------------------------------------------------------------------------------
def test_staff_see_the_bounced_emails_and_addresses(client, sam):
    row = sent()
    bounce_receive(message=sample("postfix_dsn.eml", row), now=LATER)
    client.force_login(sam)
    page = client.get(reverse("admin:portal_bouncedaddress_changelist"))
    assert (
        page.status_code == 200 and "alice@acme.example" in page.content.decode() and "5.1.1" in page.content.decode()
    )
    bounced = client.get(reverse("admin:portal_outboxmessage_changelist") + "?bounced=yes")
    assert bounced.status_code == 200 and list(bounced.context["cl"].result_list) == [row]
    assert sam.has_perm("portal.view_bouncedaddress") and not sam.has_perm("portal.delete_bouncedaddress")
    assert Permission.objects.filter(codename="view_bouncedaddress").exists()


# --- Through the email ingest ---------------------------------------------------------------------------
def test_a_bounce_piped_to_the_ingest_marks_the_email_and_files_nothing():
    from tickets.inbound.service import ingest
    from tickets.models import InboundMessage, Ticket

    row = sent()
    raw = sample("postfix_dsn.eml", row).as_bytes()
    outcome = ingest(raw, received_at=LATER, source="pipe")
    assert (outcome.kind, outcome.ticket_id) == ("automatic", None)
    assert outcome.reason == f"Bounce (failed 5.1.1) of {row.key}"
    row.refresh_from_db()
    assert row.bounced_at == LATER and BouncedAddress.objects.get().address == row.to
    assert not Ticket.objects.exists() and InboundMessage.objects.get().outcome == "automatic"
    assert ingest(raw, received_at=LATER, source="pipe").kind == "duplicate"  # and counted once
    assert BouncedAddress.objects.get().bounces == 1
    # An out-of-office answering the return path is taken too, and marks nothing.
    away = ingest(sample("out_of_office.eml", row).as_bytes(), received_at=LATER, source="pipe")
    assert away.kind == "automatic" and away.reason.startswith("Bounce (other)")
    assert not Ticket.objects.exists() and OutboxMessage.objects.filter(key__startswith="inbound:").count() == 0


def test_a_bounce_of_a_reports_email_is_for_security_staff_alone():
    """The copy a bounce returns tells the report: the inbound row is a security one (hidden from
    general triage), whether the email was the bug bounty's own or one about a report's ticket."""
    from tickets.inbound.service import ingest
    from tickets.models import InboundMessage
    from tickets.security import security_report_submit

    with time_machine.travel(NOW, tick=False):
        report = security_report_submit(email="eve@research.example", name="Eve", summary="XSS", details="Payload.")
    ordinary = sent(key="ticket:999:reply:1:user:1")
    bounty = sent(key=f"security-report:{report.pk}:reporter:reply:3", to="eve@research.example")
    about = sent(key=f"ticket:{report.pk}:breach:staff:9", to="sol@vendor.example")
    for n, row in enumerate((ordinary, bounty, about)):
        dsn = sample("postfix_dsn.eml", row).as_bytes().replace(b"4Q9Zk22ZxYz9sW", f"dsn{n}".encode())
        ingest(dsn, received_at=LATER, source="pipe")
    assert dict(InboundMessage.objects.values_list("reason", "security")) == {
        f"Bounce (failed 5.1.1) of {ordinary.key}": False,
        f"Bounce (failed 5.1.1) of {bounty.key}": True,
        f"Bounce (failed 5.1.1) of {about.key}": True,
    }
