"""Email out (issue 19): what every sent email carries, read back from the .eml files the embedded
backend writes (or the SMTP bytes): the Date in +0000, RFC 3834 Auto-Submitted, a DKIM signature
that dkimpy verifies against the published key (a DNS stub), the one-click unsubscribe headers of
maintenance and SLA-change emails, a maintenance notice's .ics (the feed's UID and SEQUENCE, the
same bytes on a retry), and one email for a staff reply that sets "waiting on customer"."""

from __future__ import annotations

import base64
import email
import email.policy
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dkim
import pytest
import time_machine
from django.urls import reverse
from icalendar import Calendar

from contracts.maintenance.ical import organisation_ical_rotate, window_identity
from contracts.maintenance.services import window_cancel
from contracts.services import sla_version_draft, sla_version_publish
from portal.core.delivery import outbox_send_due, outbox_send_key
from portal.core.notify_rules import Choice
from portal.core.outbox import AUTO_REPLIED, Email, outbox_enqueue
from portal.core.unsubscribe import preference_set
from portal.models import OutboxMessage
from tickets.models import Ticket, TicketEvent, TicketPause
from tickets.services import ticket_open, ticket_reply

from .factories import UserFactory
from .test_notify_rules import _maintenance

pytestmark = pytest.mark.django_db
NBO = ZoneInfo("Africa/Nairobi")
NOW = datetime(2026, 11, 2, 12, 0, tzinfo=NBO)  # 09:00 UTC


@pytest.fixture
def eml(settings, tmp_path):
    """Every email as the embedded default writes it: one .eml file each, parsed back."""
    settings.EMAIL_BACKEND = "portal.core.mail.FileAndConsoleBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")

    def read(to: str | None = None) -> list[email.message.EmailMessage]:
        """The emails sent (to `to`), in the order sent. A long header is folded after its name, so
        its parsed value may start with the folding's space: compare stripped values."""
        found = [parse(p.read_bytes()) for p in sorted((tmp_path / "mail").glob("*.eml"))]
        return [m for m in found if to is None or m["To"] == to]

    return read


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


def send(key: str, *, headers=None, template="password_reset") -> OutboxMessage:
    with time_machine.travel(NOW, tick=False):
        outbox_enqueue(
            email=Email(key=key, to="alice@acme.example", template=template, context={"reset_url": "https://x/r"},
                        headers=headers or {}),
        )  # fmt: skip
        outbox_send_key(key=key)
    return OutboxMessage.objects.get(key=key)


# --- Every email ---------------------------------------------------------------------------------------
def test_every_email_is_dated_in_utc_and_says_it_is_automatic(eml):
    row = send("pw:1")
    (message,) = eml()
    assert message["Date"] == "Mon, 02 Nov 2026 09:00:00 +0000"  # +0000, not Python's "unknown zone" -0000
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"] == row.message_id
    assert message["From"] == "SLA Portal <sla-portal@vendor.example>"
    assert "DKIM-Signature" not in message  # no key configured


def test_a_receipt_answering_a_persons_own_message_is_auto_replied(eml):
    send("ticket:9:filed:user:1", headers=AUTO_REPLIED)  # the hook an email ingest sets on its receipt
    (message,) = eml()
    assert message.get_all("Auto-Submitted") == ["auto-replied"]


# --- DKIM ------------------------------------------------------------------------------------------------
@pytest.fixture
def dkim_key(settings, tmp_path):
    pem = subprocess.run(["openssl", "genrsa", "2048"], capture_output=True, check=True).stdout
    (tmp_path / "dkim.pem").write_bytes(pem)
    settings.DKIM_PRIVATE_KEY_FILE = str(tmp_path / "dkim.pem")
    settings.DKIM_SELECTOR, settings.DKIM_DOMAIN = "portal2026", "vendor.example"
    public = subprocess.run(
        ["openssl", "rsa", "-pubout", "-outform", "DER"], input=pem, capture_output=True, check=True
    ).stdout
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    asked = []

    def dns(name, timeout=5):
        asked.append(name)
        return record if name == b"portal2026._domainkey.vendor.example." else None

    return dns, asked


def test_with_a_key_every_email_is_dkim_signed_and_verifies(eml, dkim_key, settings):
    dns, asked = dkim_key
    settings.PORTAL_BASE_URL = "https://portal.example"
    send("pw:2", headers={"List-Unsubscribe": "<https://portal.example/u/1/>", "List-Unsubscribe-Post": "x=1"})
    path = next(Path(settings.EMAIL_FILE_PATH).glob("*.eml"))
    data = path.read_bytes()
    assert dkim.verify(data, dnsfunc=dns)
    assert asked == [b"portal2026._domainkey.vendor.example."]
    signature = parse(data)["DKIM-Signature"]
    fields = dict(f.strip().split("=", 1) for f in str(signature).replace("\r\n", "").split(";") if "=" in f)
    assert fields["d"] == "vendor.example" and fields["s"] == "portal2026" and fields["c"] == "relaxed/relaxed"
    signed = {h.strip() for h in fields["h"].split(":")}
    assert {"from", "to", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post"} <= signed
    assert "auto-submitted" in signed
    # Changed in transit, it no longer verifies.
    assert not dkim.verify(
        data.replace(b"Reset your SLA Portal password", b"Reset your SLA Portal passw0rd"), dnsfunc=dns
    )


def test_a_signed_email_verifies_as_the_smtp_server_receives_it(smtp_settings, dkim_key):
    dns, _ = dkim_key
    send("pw:3")
    (received,) = smtp_settings.wait_for(1)
    assert dkim.verify(received.as_bytes(), dnsfunc=dns)


# --- Maintenance notices: the .ics and the unsubscribe headers -------------------------------------------
def _window(contract):
    """A window published ten days ahead, announced 48 hours before its start (test_notify_rules)."""
    window = _maintenance(contract)
    with time_machine.travel(window.starts_at - timedelta(hours=48), tick=False):
        outbox_send_due()
    return window


def _ics(message) -> tuple[bytes, Calendar]:
    (part,) = [p for p in message.iter_attachments() if p.get_filename() == "maintenance.ics"]
    assert part.get_content_type() == "text/calendar"
    data = part.get_payload(decode=True)
    return data, Calendar.from_ical(data)


def _feed_event(client, contract, window):
    token = organisation_ical_rotate(organisation=contract.organisation)
    feed = Calendar.from_ical(client.get(reverse("maintenance-ical", args=[token])).content)
    return next(e for e in feed.walk("VEVENT") if str(e["UID"]) == window_identity(window)[0])


def test_a_maintenance_notice_carries_the_window_as_the_feeds_event(eml, client, acme_contract, alice, bob, settings):
    settings.PORTAL_BASE_URL = "https://portal.example"
    settings.DEFAULT_FROM_EMAIL = "Kaluari Cloud Backup <maintenance@kaluari.example>"
    erin = UserFactory(email="erin@acme.example", organisation=acme_contract.organisation)
    preference_set(user=erin, choice=Choice.MAINTENANCE, enabled=True, via="page")
    window = _window(acme_contract)
    notices = {m["To"]: m for m in eml()}
    assert set(notices) == {alice.email, bob.email, erin.email}

    data, cal = _ics(notices[alice.email])
    assert str(cal["METHOD"]) == "PUBLISH"
    (event,) = cal.walk("VEVENT")
    feed = _feed_event(client, acme_contract, window)
    assert str(event["UID"]) == str(feed["UID"]) == f"maintenance-{window.pk}@sla-portal.local"
    assert event["SEQUENCE"] == feed["SEQUENCE"] == 1
    assert event.decoded("DTSTART") == feed.decoded("DTSTART") == datetime(2026, 10, 11, 20, 0, tzinfo=UTC)
    assert str(event["STATUS"]) == "CONFIRMED"
    assert event.decoded("DTSTAMP") == OutboxMessage.objects.get(to=alice.email).created_at  # written, not sent
    assert _ics(notices[bob.email])[0] == data  # the same window at the same revision, written together
    assert b"SUMMARY:Maintenance: Backup storage upgrade" in data
    # iTIP's PUBLISH requires an ORGANIZER (RFC 5546 3.2.1): the sender the email comes from.
    assert str(event["ORGANIZER"]) == "mailto:maintenance@kaluari.example"
    assert event["ORGANIZER"].params["CN"] == "Kaluari Cloud Backup"
    assert b'ORGANIZER;CN="Kaluari Cloud Backup":mailto:maintenance@kaluari.example' in data
    assert "ORGANIZER" not in feed  # the feed is no scheduling message

    # A designated contact's notice cannot be turned off; Erin's can, in one click (https).
    assert "List-Unsubscribe" not in notices[alice.email]
    assert notices[erin.email]["List-Unsubscribe"].strip().startswith("<https://portal.example/email/unsubscribe/")
    assert notices[erin.email]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # Cancelled: the same event, a new sequence (STATUS changed), as the feed says too.
    with time_machine.travel(window.starts_at - timedelta(hours=3), tick=False):
        window_cancel(window=window)
        outbox_send_due()
    cancelled = {m["To"]: m for m in eml() if m["Subject"].startswith("Cancelled")}
    (event,) = _ics(cancelled[alice.email])[1].walk("VEVENT")
    window.refresh_from_db()
    feed = _feed_event(client, acme_contract, window)
    assert (str(event["UID"]), event["SEQUENCE"], str(event["STATUS"])) == (str(feed["UID"]), 2, "CANCELLED")
    assert str(event["ORGANIZER"]) == "mailto:maintenance@kaluari.example"
    assert feed["SEQUENCE"] == 2 and str(feed["STATUS"]) == "CANCELLED"


def test_a_retried_notice_sends_the_same_calendar_bytes(eml, acme_contract, alice, settings, mailoutbox):
    settings.EMAIL_BACKEND = "tests.test_outbox.BrokenBackend"
    _window(acme_contract)
    row = OutboxMessage.objects.get(to=alice.email)
    assert row.attachments == ["maintenance.ics"] and row.status == "pending" and row.attempts == 1
    settings.EMAIL_BACKEND = "portal.core.mail.FileAndConsoleBackend"
    first = None
    for minutes in (5, 60):
        with time_machine.travel(row.created_at + timedelta(minutes=minutes), tick=False):
            OutboxMessage.objects.filter(pk=row.pk).update(status="pending", next_attempt_at=row.created_at)
            outbox_send_key(key=row.key)
        data = _ics(eml(alice.email)[-1])[0]
        assert first is None or data == first  # rendered again from the frozen context: the same bytes
        first = data
    assert len(eml(alice.email)) == 2


def test_on_http_the_link_is_there_without_the_one_click_header(eml, acme_contract, settings):
    settings.PORTAL_BASE_URL = "http://127.0.0.1:8000"
    erin = UserFactory(email="erin@acme.example", organisation=acme_contract.organisation)
    preference_set(user=erin, choice=Choice.MAINTENANCE, enabled=True, via="page")
    _window(acme_contract)
    (notice,) = eml(erin.email)
    assert notice["List-Unsubscribe"].strip().startswith("<http://127.0.0.1:8000/email/unsubscribe/")
    assert "List-Unsubscribe-Post" not in notice  # RFC 8058: one-click is for https URIs only


def test_an_sla_change_email_carries_the_one_click_headers(eml, acme_contract, alice, bob, settings):
    settings.PORTAL_BASE_URL = "https://portal.example"
    acme_contract.contacts.set([alice])
    preference_set(user=bob, choice=Choice.SLA_CHANGE, enabled=True, via="page")
    at = datetime(2026, 12, 11, 16, 0, tzinfo=NBO)
    draft = sla_version_draft(sla=acme_contract.sla, effective_on=date(2027, 1, 1), now=at)
    with time_machine.travel(at, tick=False):
        sla_version_publish(version=draft, now=at)
        outbox_send_due()
    for person in (alice, bob):  # an SLA change can be turned off by anyone
        (message,) = eml(person.email)
        assert message["List-Unsubscribe"].strip().startswith("<https://portal.example/email/unsubscribe/")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["Auto-Submitted"] == "auto-generated" and message["Date"].endswith("+0000")


# --- A staff reply that sets "waiting on customer" --------------------------------------------------------
def open_ticket(contract, user):
    return ticket_open(
        user=user, contract=contract, service=contract.services.get(), priority="P3",
        subject="Restore fails", description="Error 17 on every restore.",
    )  # fmt: skip


def test_a_staff_reply_that_sets_waiting_sends_one_email(eml, acme_contract, alice, sam, client):
    with time_machine.travel(NOW, tick=False):
        ticket = open_ticket(acme_contract, alice)
        outbox_send_due()
    before = len(eml(alice.email))
    later = NOW + timedelta(minutes=20)
    client.force_login(sam)
    with time_machine.travel(later, tick=False):
        response = client.post(
            reverse("admin:tickets_ticket_reply", args=[ticket.pk]),
            {"body": "Which backup set? Send us the log.", "status": "waiting"},
        )
        outbox_send_due()
    assert response.status_code == 302
    sent = eml(alice.email)[before:]
    assert len(sent) == 1  # the reply says the new status: no second, status email
    (message,) = sent
    assert message["Subject"].startswith(f"[{ticket.number}] Reply from support")
    text = message.get_body(("plain",)).get_content()
    assert "Which backup set? Send us the log." in text
    assert "moved from New to Waiting on customer" in text and "the SLA clock is paused until you reply" in text
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.WAITING and ticket.first_response_at == later
    assert TicketPause.objects.filter(ticket=ticket, reason="waiting", started_at=later, ended_at=None).exists()
    assert TicketEvent.objects.filter(ticket=ticket, kind="status", data__new="waiting").count() == 1
    assert not OutboxMessage.objects.filter(key__startswith=f"ticket:{ticket.pk}:status:").exists()


def test_an_internal_note_that_sets_a_status_tells_the_status_alone(eml, acme_contract, alice, sam):
    with time_machine.travel(NOW, tick=False):
        ticket = open_ticket(acme_contract, alice)
        ticket_reply(ticket=ticket, author=sam, body="Asked the storage team.", internal=True, status="waiting")
        outbox_send_due()
    (status,) = [m for m in eml(alice.email) if "Waiting on customer" in m["Subject"]]
    assert "Asked the storage team" not in status.get_body(("plain",)).get_content()
    assert not OutboxMessage.objects.filter(key__contains=":reply:").exists()


def test_a_key_that_cannot_sign_fails_the_system_check(settings, tmp_path, dkim_key):
    from portal.core.dkim_signing import _key
    from portal.site.checks import dkim_key_usable

    assert dkim_key_usable() == []  # the fixture's key signs
    (tmp_path / "bad.pem").write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    settings.DKIM_PRIVATE_KEY_FILE = str(tmp_path / "bad.pem")
    (error,) = dkim_key_usable()
    assert error.id == "portal.E191" and "cannot sign" in error.msg
    settings.DKIM_PRIVATE_KEY_FILE = str(tmp_path / "missing.pem")
    assert dkim_key_usable()[0].id == "portal.E191"
    _key.cache_clear()


def test_header_lines_are_written_byte_for_byte_as_the_email_package_folds_them():
    """SignedEmail writes a header line that needs no folding as it is (a shortcut for speed): the
    bytes are the same as compat32's own folding of every header, short, long or not ASCII."""
    from portal.core.dkim_signing import SignedEmail

    headers = {
        "List-Unsubscribe": "<https://portal.example/email/unsubscribe/" + "t0k3n" * 20 + "/>",
        "Reply-To": "support+i1.ao2nv7lt4jfvx4mbhepg@vendor.example",
        "In-Reply-To": "<incident-1.1.7@portal.example>",
        "References": " ".join(f"<incident-1.{n}.7@portal.example>" for n in range(1, 6)),
        "X-Empty": "",
        "X-Spaces": " a  b   c ",
        "Message-ID": "<m@portal.example>",
    }
    for subject in ("Incident: Backups failing", "Crédit: 98.4% against 99.8% for October (Nairobi)", "x" * 120):
        mail = SignedEmail(subject=subject, body="Hëllo\n", from_email="Zoë Ops <bounces+1@vendor.example>",
                           to=["Ågot Ås <agot@x.example>"], headers=headers)  # fmt: skip
        mail.attach_alternative("<p>Hëllo</p>", "text/html")
        mail.attach("notice.ics", b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", "text/calendar")
        msg = mail.message()
        written = msg.as_bytes(linesep="\r\n")
        msg.policy = email.policy.compat32
        assert written == msg.as_bytes(linesep="\r\n")
