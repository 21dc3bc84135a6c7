"""Email in: one service (tickets.inbound.service.ingest) stores each message once with its effect;
a support contact's message to the contract's level-1 address files a ticket whose clock starts when
our side received it; replies thread back; strangers, automatic mail and hostile mail never change
a ticket and never crash. Alice and Bob are of Acme (Kaluari: support@kaluari.com), Charlie of Globex."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

import pytest
import time_machine
from django.urls import reverse

from portal.core.delivery import outbox_send_due
from portal.models import OutboxMessage
from tickets.inbound.service import ingest
from tickets.models import InboundMessage, Ticket, TicketEvent
from tickets.services import ticket_reply

pytestmark = pytest.mark.django_db

RECEIVED = datetime(2026, 11, 3, 7, 0, tzinfo=UTC)  # 10:00 in Nairobi, a Tuesday
LATER = RECEIVED + timedelta(hours=2)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def mail(*, sender="alice@acme.example", to="support@kaluari.com", subject="Restore fails", body="It fails.",
         message_id="<m1@acme.example>", received=RECEIVED, headers=None, files=(), html=None) -> bytes:  # fmt: skip
    msg = EmailMessage()
    msg["Return-Path"] = f"<{sender}>"
    msg["Received"] = f"from mx.acme.example by mx.vendor.example; {format_datetime(received)}"
    msg["From"] = f"Alice <{sender}>" if "@" in sender else sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = "Mon, 01 Jan 2001 00:00:00 +0000"  # a sender's Date never starts a clock
    if message_id:
        msg["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        msg[name] = value
    if html is not None and body is None:
        msg.set_content(html, subtype="html")
    else:
        msg.set_content(body)
        if html is not None:
            msg.add_alternative(html, subtype="html")
    for name, data, ctype in files:
        maintype, _, subtype = ctype.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes()


@pytest.fixture
def frozen():
    with time_machine.travel(LATER, tick=False):
        yield


def take(raw: bytes, received=RECEIVED):
    return ingest(raw, received_at=received, source="pipe")


def sent(mailoutbox):
    outbox_send_due()
    return {m.to[0]: m for m in mailoutbox}


# --- Filing --------------------------------------------------------------------------------------
def test_a_support_contacts_email_files_a_ticket_on_the_clock_of_its_receipt(frozen, acme_contract, alice, bob, mailoutbox):  # fmt: skip
    outcome = take(mail(files=[("screen.png", PNG, "image/png")]))
    assert outcome.kind == "filed"
    ticket = Ticket.objects.get(pk=outcome.ticket_id)
    assert (ticket.contract, ticket.created_by, ticket.subject, ticket.priority) == (
        acme_contract,
        alice,
        "Restore fails",
        "P3",
    )
    assert ticket.description == "It fails."
    assert (ticket.filed_at, ticket.channel) == (RECEIVED, "email")  # not the Date header, not now
    assert [a.original_name for a in ticket.attachments.all()] == ["screen.png"]
    row = InboundMessage.objects.get()
    assert (row.outcome, row.ticket, row.source, bytes(row.raw)[:11]) == ("filed", ticket, "pipe", b"Return-Path")
    receipt = sent(mailoutbox)["alice@acme.example"]
    assert receipt.extra_headers["Auto-Submitted"] == "auto-replied"
    assert receipt.extra_headers["In-Reply-To"] == "<m1@acme.example>"
    assert receipt.extra_headers["References"] == "<m1@acme.example>"


def test_a_ticket_filed_by_email_says_the_customer_emailed_support_not_that_staff_filed_it(
    frozen, client, acme_contract, alice, sam
):
    ticket = Ticket.objects.get(pk=take(mail()).ticket_id)
    client.force_login(sam)
    staff_page = client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk])).content.decode()
    assert "Alice Achieng emailed support," in staff_page and "staff filed the ticket" not in staff_page
    client.force_login(alice)
    page = client.get(reverse("ticket-detail", args=[ticket.pk])).content.decode()
    assert "</strong> emailed us" in page and "filed by our support team" not in page


def test_the_subject_names_the_priority_and_the_text_of_an_html_only_message_is_read(frozen, acme_contract, alice):
    raw = mail(
        subject="[P1] Backups down",
        body=None,
        html="<html><style>p{}</style><p>All <b>down</b></p><ul><li>a</li></ul></html>",
    )
    ticket = Ticket.objects.get(pk=take(raw).ticket_id)
    assert (ticket.subject, ticket.priority) == ("Backups down", "P1")
    assert ticket.description == "All down\n\n- a"


def test_the_same_message_twice_is_one_ticket(frozen, acme_contract, alice):
    raw = mail()
    assert take(raw).kind == "filed"
    again = take(raw)
    assert again.kind == "duplicate"
    # The same Message-ID from the same sender with other bytes (another way in) is the same message.
    assert take(mail(body="It fails (copy)."), received=LATER).kind == "duplicate"
    assert Ticket.objects.count() == 1 and InboundMessage.objects.count() == 1


def test_a_refused_file_is_listed_on_the_ticket_and_in_the_receipt(frozen, acme_contract, alice, mailoutbox):
    lying = ("invoice.pdf", b"MZ\x90\x00" + b"\x00" * 200, "application/pdf")  # a Windows program
    ticket = Ticket.objects.get(pk=take(mail(files=[lying])).ticket_id)
    assert ticket.attachments.count() == 0
    assert "Not attached" in ticket.description and "invoice.pdf" in ticket.description
    assert "invoice.pdf" in sent(mailoutbox)["alice@acme.example"].body


def test_an_auto_generated_message_from_a_support_contact_files_without_a_receipt(frozen, acme_contract, alice):
    outcome = take(mail(headers={"Auto-Submitted": "auto-generated"}))
    assert outcome.kind == "filed"
    assert not OutboxMessage.objects.filter(to="alice@acme.example").exists()


# --- Who may write -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "who, reason",
    [
        ("stranger@elsewhere.example", "not a customer"),
        ("charlie@globex.example", "contracts has this support address"),
        ("bob@acme.example", "deactivated"),
    ],
)
def test_others_are_held_for_staff(frozen, acme_contract, alice, bob, charlie, who, reason):
    bob.is_active = False
    bob.save()
    outcome = take(mail(sender=who))
    assert outcome.kind == "held" and reason in outcome.reason
    assert Ticket.objects.count() == 0


def test_a_customer_who_may_not_open_tickets_is_held_but_may_answer_her_own(frozen, acme_contract, alice, bob):
    filed = Ticket.objects.get(pk=take(mail(sender="bob@acme.example", message_id="<b1@acme.example>")).ticket_id)
    acme_contract.support_contacts.set([alice])
    assert take(mail(sender="bob@acme.example", message_id="<b2@acme.example>")).kind == "held"
    reply = take(
        mail(sender="bob@acme.example", subject=f"Re: [{filed.number}] Restore fails", message_id="<b3@acme.example>")
    )
    assert (reply.kind, reply.ticket_id) == ("replied", filed.pk)


def test_dmarc_failure_from_our_own_mta_holds_and_is_not_answered(frozen, settings, acme_contract, alice):
    settings.INBOUND_AUTHSERV_ID = "mx.vendor.example"
    forged = {"Authentication-Results": "mx.vendor.example; spf=fail; dmarc=fail header.from=acme.example"}
    outcome = take(mail(headers=forged))
    assert outcome.kind == "held" and "DMARC" in outcome.reason
    # Somebody else's header saying "pass" is not believed: no answer goes out to anyone.
    other = {"Authentication-Results": "mx.evil.example; dmarc=pass"}
    assert take(mail(sender="eve@evil.example", headers=other, message_id="<e@x>")).kind == "held"
    assert not OutboxMessage.objects.filter(template="inbound_held").exists()


def test_a_held_sender_whose_dmarc_passed_gets_one_polite_answer_a_day(frozen, settings, acme_contract, mailoutbox):
    settings.INBOUND_AUTHSERV_ID = "mx.vendor.example"
    ok = {"Authentication-Results": "mx.vendor.example; dmarc=pass header.from=other.example"}
    for n in range(3):
        assert take(mail(sender="pat@other.example", headers=ok, message_id=f"<p{n}@x>")).kind == "held"
    answer = sent(mailoutbox)["pat@other.example"]
    assert len(mailoutbox) == 1 and answer.extra_headers["Auto-Submitted"] == "auto-replied"
    assert answer.extra_headers["In-Reply-To"] == "<p0@x>"


def test_a_programs_mail_from_a_stranger_is_held_and_never_answered(frozen, settings, acme_contract, mailoutbox):
    # RFC 3834: no automatic answer to any Auto-Submitted but "no" (a customer's monitoring still files).
    settings.INBOUND_AUTHSERV_ID = "mx.vendor.example"
    headers = {"Authentication-Results": "mx.vendor.example; dmarc=pass", "Auto-Submitted": "auto-generated"}
    assert take(mail(sender="monitor@other.example", headers=headers)).kind == "held"
    assert sent(mailoutbox) == {}


def test_an_address_longer_than_mail_allows_is_no_address(frozen, settings, acme_contract, mailoutbox):
    # Stored as it is it would not fit its column: on PostgreSQL the message could never be stored,
    # and the pipe, the mailbox and the webhook would try it again forever.
    settings.INBOUND_AUTHSERV_ID = "mx.vendor.example"
    ok = {"Authentication-Results": "mx.vendor.example; dmarc=pass"}
    outcome = take(mail(sender="a" * 300 + "@other.example", headers=ok, message_id="<long@x>"))
    row = InboundMessage.objects.get(pk=outcome.inbound_id)
    assert (outcome.kind, row.sender, row.return_path) == ("held", "", "")
    assert row.reason == "It has no single sender address (From)."
    # The longest address there is gets its one polite answer: its outbox key holds it.
    longest = "b" * (254 - len("@other.example")) + "@other.example"
    assert take(mail(sender=longest, headers=ok, message_id="<longest@x>")).kind == "held"
    assert list(sent(mailoutbox)) == [longest]


# --- Replies -------------------------------------------------------------------------------------
def test_a_reply_to_our_email_lands_on_its_ticket_and_restarts_a_paused_clock(frozen, acme_contract, alice, sam):
    from tickets.services import ticket_set_status

    ticket = Ticket.objects.get(pk=take(mail()).ticket_id)
    ticket_reply(ticket=ticket, author=sam, body="Which backup set?", now=LATER)
    ticket_set_status(ticket=ticket, actor=sam, status="waiting", now=LATER)
    ours = OutboxMessage.objects.filter(key__startswith=f"ticket:{ticket.pk}:reply:", to=alice.email).get()
    answer = mail(subject="Re: whatever", body="The nightly one.", message_id="<m2@acme.example>",
                  headers={"In-Reply-To": ours.message_id}, received=LATER)  # fmt: skip
    outcome = take(answer, received=LATER)
    assert (outcome.kind, outcome.ticket_id) == ("replied", ticket.pk)
    ticket.refresh_from_db()
    assert ticket.status == "open" and not ticket.paused
    assert ticket.messages.filter(author=alice, body="The nightly one.").exists()


@pytest.mark.parametrize("answering", ["the thread", "the return path"])
def test_an_out_of_office_is_recorded_on_the_ticket_and_changes_nothing(frozen, acme_contract, alice, sam, answering):
    from portal.core.bounces import verp_address

    ticket = Ticket.objects.get(pk=take(mail()).ticket_id)
    ticket_reply(ticket=ticket, author=sam, body="Which backup set?", now=LATER)
    ours = OutboxMessage.objects.filter(key__startswith=f"ticket:{ticket.pk}:reply:", to=alice.email).get()
    if answering == "the thread":
        ooo = mail(subject="Out of office", message_id="<ooo@acme.example>",
                   headers={"In-Reply-To": ours.message_id, "Auto-Submitted": "auto-replied"})  # fmt: skip
    else:  # RFC 3834 answers the envelope sender: our VERP return path, which names the email
        ooo = mail(to=verp_address(ours.pk), subject="Out of office", message_id="<ooo@acme.example>",
                   headers={"Auto-Submitted": "auto-replied"})  # fmt: skip
    outcome = take(ooo, received=LATER)
    assert (outcome.kind, outcome.ticket_id) == ("automatic", ticket.pk)
    assert ticket.messages.filter(author=alice).count() == 0
    assert TicketEvent.objects.filter(ticket=ticket, kind="automatic_mail").exists()
    assert not OutboxMessage.objects.filter(template__startswith="inbound").exists()


def test_another_organisations_sender_cannot_answer_into_a_ticket(
    frozen, acme_contract, globex_contract, alice, charlie
):
    ticket = Ticket.objects.get(pk=take(mail()).ticket_id)
    outcome = take(mail(sender="charlie@globex.example", subject=f"Re: [{ticket.number}] x", message_id="<c@x>",
                        headers={"In-Reply-To": "<m1@acme.example>"}))  # fmt: skip
    assert outcome.kind == "held" and "not of the ticket's organisation" in outcome.reason
    assert ticket.messages.count() == 0


# --- Loops, noise and hostile mail ---------------------------------------------------------------
@pytest.mark.parametrize(
    "sender, headers",
    [
        ("alice@acme.example", {"Auto-Submitted": "auto-replied"}),
        ("alice@acme.example", {"Precedence": "bulk"}),
        ("mailer-daemon@acme.example", {}),
        ("support@kaluari.com", {}),
    ],
)
def test_automatic_mail_is_never_filed_nor_answered(frozen, acme_contract, alice, sender, headers):
    assert take(mail(sender=sender, headers=headers)).kind == "automatic"
    assert Ticket.objects.count() == 0 and not OutboxMessage.objects.exists()


def test_a_null_return_path_is_automatic(frozen, acme_contract, alice):
    raw = mail().replace(b"Return-Path: <alice@acme.example>", b"Return-Path: <>")
    assert take(raw).kind == "automatic"


def test_a_flood_from_one_sender_is_held_after_the_limit(frozen, settings, acme_contract, alice):
    settings.INBOUND_RATE_LIMIT = (3, timedelta(hours=1))
    kinds = [take(mail(message_id=f"<f{n}@acme.example>", body=f"n{n}")).kind for n in range(5)]
    assert kinds == ["filed"] * 3 + ["held"] * 2


def test_a_50_mb_message_is_refused_and_its_sender_told_once(frozen, settings, acme_contract, alice, mailoutbox):
    settings.INBOUND_AUTHSERV_ID = "mx.vendor.example"
    passed = {"Authentication-Results": "mx.vendor.example; dmarc=pass header.from=acme.example"}
    raw = mail(headers=passed, files=[("dump.zip", b"PK\x03\x04" + b"\x00" * (50 * 1024 * 1024), "application/zip")])
    big = take(raw)
    assert big.kind == "refused" and "the limit is 25 MB" in big.reason
    row = InboundMessage.objects.get(pk=big.inbound_id)
    assert row.size == len(raw) and len(bytes(row.raw)) < 65536  # its header kept for staff, not 50 MB
    assert take(raw).kind == "duplicate"
    refusal = sent(mailoutbox)["alice@acme.example"]
    assert len(mailoutbox) == 1 and "the limit is 25 MB" in refusal.body
    assert refusal.extra_headers["Auto-Submitted"] == "auto-replied"
    assert Ticket.objects.count() == 0


def test_hostile_mail_is_held_never_a_crash(frozen, acme_contract, alice):
    malformed = (
        b"From: alice@acme.example\r\nTo: support@kaluari.com\r\nMessage-ID: <mal@acme.example>\r\n"
        b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n\x00\xff garbage"
    )
    outcome = take(malformed)
    assert outcome.kind == "held" and "MIME structure is broken" in outcome.reason
    assert take(b"\xff\xfe\x00not a message at all").kind == "held"
    crlf = mail(subject="=?utf-8?q?Hi=0D=0ABcc:_eve@evil.example?=", message_id="<crlf@acme.example>")
    ticket = Ticket.objects.get(pk=take(crlf).ticket_id)
    assert "\n" not in ticket.subject and "\r" not in ticket.subject
    # A display name that spoofs a customer's address is only a name: the address is eve's.
    spoofed = mail(sender="eve@evil.example", message_id="<spoof@x>").replace(
        b"From: Alice <eve@evil.example>", b'From: "alice@acme.example" <eve@evil.example>'
    )
    spoof = take(spoofed)
    assert spoof.kind == "held" and InboundMessage.objects.get(pk=spoof.inbound_id).sender == "eve@evil.example"
    many = ", ".join(f"u{n}@x.example" for n in range(10_000))
    assert take(mail(to=f"support@kaluari.com, {many}", message_id="<many@acme.example>")).kind == "filed"
    assert Ticket.objects.count() == 2


def test_a_message_whose_processing_fails_is_kept_held_for_staff(frozen, monkeypatch, acme_contract, alice):
    from tickets.inbound import route

    def explode(row, *args, **kwargs):
        TicketEvent.objects.all().delete()  # a write that the failure's rollback undoes
        raise RuntimeError("boom")

    monkeypatch.setattr(route, "route", explode)
    outcome = take(mail())
    assert outcome.kind == "held" and "RuntimeError" in outcome.reason
    assert bytes(InboundMessage.objects.get().raw) == mail()


def test_a_message_without_any_text_part_files_with_its_files(frozen, acme_contract, alice):
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = (
        "alice@acme.example",
        "support@kaluari.com",
        "Logs",
        "<nt@x>",
    )
    msg["Return-Path"] = "<alice@acme.example>"
    msg.add_attachment(b"line one\n", maintype="text", subtype="plain", filename="app.log")
    ticket = Ticket.objects.get(pk=take(msg.as_bytes()).ticket_id)
    assert ticket.description == "(The message had no text.)"
    assert [a.original_name for a in ticket.attachments.all()] == ["app.log"]


# --- Security mail -------------------------------------------------------------------------------
def test_security_mail_goes_to_the_reports_never_to_triage(frozen, acme_contract, alice):
    from tickets import security_mail

    first = take(mail(sender="eve@research.example", to="security@vendor.example", subject="XSS in search"))
    report = Ticket.objects.get(pk=first.ticket_id)
    assert (first.kind, report.kind) == ("filed", "security")
    address = security_mail.reply_address(report.pk)
    answer = take(mail(sender="eve@research.example", to=address, subject="Re: report", body="More details.",
                       message_id="<m2@research.example>"), received=LATER)  # fmt: skip
    assert (answer.kind, answer.ticket_id) == ("replied", report.pk)
    assert report.messages.get().body == "More details."
    assert not InboundMessage.objects.filter(outcome="held").exists()


def test_header_objects_made_once_are_the_same_headers_and_kept_within_bounds(monkeypatch):
    """tickets.inbound.parse makes a header's object once per name and value: a second message with
    the same header reads the same address, another name casing keeps its own, and at most
    HEADERS_KEPT are kept."""
    from tickets.inbound import parse

    first, second = parse.parse(mail()), parse.parse(mail(message_id="<m2@acme.example>"))
    assert parse.envelope(first).sender == parse.envelope(second).sender == "alice@acme.example"
    assert first["From"] is second["From"]
    lower = parse.parse(mail().replace(b"From:", b"from:"))
    assert lower["from"].name == "from" and parse.envelope(lower).sender == "alice@acme.example"
    monkeypatch.setattr(parse, "HEADERS_KEPT", 5)
    parse.envelope(parse.parse(mail(message_id="<m3@acme.example>")))
    assert len(parse._headers) <= 5


def test_header_objects_are_parsed_once_and_a_huge_header_is_never_kept():
    """tickets.inbound.parse keeps a parsed header object per name and value for the next messages,
    but not a hostile message's huge header (it would stay in memory for the process)."""
    from tickets.inbound import parse

    short = b"From: alice@acme.example\r\nSubject: Backups fail\r\n\r\nNothing backs up.\r\n"
    first, second = parse.parse(short), parse.parse(short)
    assert first["Subject"] == "Backups fail" and first["Subject"] is second["Subject"]  # made once

    huge_subject = "x" * (parse.HEADER_KEPT_CHARS + 1)
    huge = parse.parse(f"From: eve@evil.example\r\nSubject: {huge_subject}\r\n\r\nHi.\r\n".encode())
    assert huge["Subject"] == huge_subject
    assert all(len(value) <= parse.HEADER_KEPT_CHARS for _, value in parse._headers)


def test_a_group_counts_each_senders_filings_from_one_read(frozen, settings, acme_contract, alice, bob):
    from tickets.inbound.group import group

    settings.INBOUND_RATE_LIMIT = (3, timedelta(hours=1))
    take(mail(message_id="<before@acme.example>", body="before"))  # alice's first, stored before the group
    senders = ["alice@acme.example", "bob@acme.example", "alice@acme.example"] * 2
    raws = [mail(sender=s, message_id=f"<g{n}@acme.example>", body=f"n{n}") for n, s in enumerate(senders)]
    with group(raws):
        kinds = [take(raw).kind for raw in raws]
    assert kinds == ["filed", "filed", "filed", "held", "filed", "held"]


def test_a_group_counts_its_own_filings_when_a_message_out_of_time_order_reads_again(
    frozen, settings, acme_contract, alice
):
    """A message received before the window read first (the group out of time order) reads its
    sender's filings again: the group's own, not inserted before its commit, count all the same."""
    from tickets.inbound.group import group

    settings.INBOUND_RATE_LIMIT = (3, timedelta(hours=1))
    at = [RECEIVED, RECEIVED, RECEIVED - timedelta(minutes=30), RECEIVED - timedelta(minutes=30)]
    raws = [mail(message_id=f"<o{n}@acme.example>", body=f"n{n}") for n in range(len(at))]
    with group(raws):
        kinds = [take(raw, received=when).kind for raw, when in zip(raws, at, strict=True)]
    assert kinds == ["filed", "filed", "filed", "held"]
    assert Ticket.objects.count() == 3


def test_what_no_column_takes_is_made_harmless_and_the_message_filed(frozen, acme_contract, alice):
    """NUL (PostgreSQL refuses it in text) and lone surrogates in a subject, an address, a
    Message-ID or a file's name; a file named ".."; a long Auto-Submitted: such a message was never
    stored (the pipe exited 75 for ever, the webhook answered 503, the poller stalled on it)."""
    raw = mail(subject="=?utf-8?q?Restore=00fails?=", message_id="<nul@acme.example>",
               files=[("good.txt", b"log", "text/plain"), ("..", b"dots", "text/plain")])  # fmt: skip
    raw = raw.replace(b'filename="good.txt"', b"filename*=utf-8''good%00.txt")
    ticket = Ticket.objects.get(pk=take(raw).ticket_id)
    assert ticket.subject == "Restorefails"
    assert [a.original_name for a in ticket.attachments.all()] == ["good.txt"]
    assert "Not attached: “attachment-2” is not an accepted type" in ticket.description  # "..": listed, not held
    # A NUL in the Message-ID or in another address: no such address, the id kept without it.
    odd = mail(message_id="<a\x00b@acme.example>", to="support@kaluari.com, x\x00y@acme.example")
    outcome = take(odd)
    row = InboundMessage.objects.get(pk=outcome.inbound_id)
    assert outcome.kind == "filed" and "\x00" not in row.message_id + row.recipients
    # UTF-7 text with a lone surrogate (which no column can encode): filed, the character replaced.
    seven = mail(message_id="<u7@acme.example>", body="x").replace(
        b'Content-Type: text/plain; charset="utf-8"', b'Content-Type: text/plain; charset="utf-7"'
    ).replace(b"\nx\n", b"\n+2AA- broken\n")  # fmt: skip
    ticket = Ticket.objects.get(pk=take(seven).ticket_id)
    assert "\ufffd broken" in ticket.description
    loud = mail(headers={"Auto-Submitted": "auto-replied; " + "x" * 600}, message_id="<ooo@acme.example>")
    outcome = take(loud)
    assert outcome.kind == "automatic" and len(InboundMessage.objects.get(pk=outcome.inbound_id).reason) <= 300


def test_a_received_moment_out_of_datetimes_range_is_no_moment():
    from tickets.inbound import parse

    msg = parse.parse(b"Received: from x by y; Fri, 31 Dec 9999 23:59:59 -1200\r\nSubject: x\r\n\r\nx")
    assert parse.received_at(msg) is None  # an OverflowError before: the pipe exited 75 for ever


def test_a_references_header_of_thousands_of_ids_costs_no_more_queries(frozen, acme_contract, alice):
    """Each id that looks like a ticket's root was a query: 20,000 of them took 12 s in one
    transaction. The first ten and the latest fifty are looked up, however many there are."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tickets import mail_thread

    ticket = Ticket.objects.get(pk=take(mail()).ticket_id)
    noise = " ".join(f"<ticket-{n}.20261103070000@sla-portal.local>" for n in range(1000, 6000))
    answer = mail(message_id="<answer@acme.example>", body="Still failing.",
                  headers={"References": f"{noise} {mail_thread.root_id(ticket)}"})  # fmt: skip
    with CaptureQueriesContext(connection) as queries:
        outcome = take(answer)
    assert (outcome.kind, outcome.ticket_id) == ("replied", ticket.pk)
    assert len(queries) < 150
