"""A ticket's emails are one thread that can be answered by email: each carries the ticket's reply
address (support+t<n>.<token>@ the SLA's support domain, bound to ticket and recipient) as Reply-To,
and In-Reply-To/References that chain from the customer's own message (when she emailed) through the
receipt to every later email. A reply sent to that address lands on its ticket once, its quoted
history and signature stripped, the whole message kept as a file; a made-up token does not."""

from __future__ import annotations

import os
import subprocess
from datetime import timedelta

import pytest
import time_machine

from portal.core import reply_address
from portal.core.delivery import outbox_send_due
from portal.models import OutboxMessage
from tickets import mail_thread, security_mail
from tickets.models import Ticket
from tickets.services import ticket_open, ticket_reply, ticket_set_status

from .test_inbound import LATER, RECEIVED, mail, sent, take

pytestmark = pytest.mark.django_db


@pytest.fixture
def frozen():
    with time_machine.travel(LATER, tick=False):
        yield


QUOTED = """The nightly set, thanks.

Best regards,
Alice

On Tue, 3 Nov 2026 at 10:00, SLA Portal <sla-portal@vendor.example> wrote:
> Which backup set?
"""


def _emailed_ticket(mailoutbox):
    ticket = Ticket.objects.get(pk=take(mail()).ticket_id)
    return ticket, sent(mailoutbox)


def test_every_email_of_an_emailed_ticket_threads_from_her_message(frozen, acme_contract, alice, sam, mailoutbox):
    ticket, first = _emailed_ticket(mailoutbox)
    root = mail_thread.root_id(ticket)
    receipt = first["alice@acme.example"]
    address = receipt.extra_headers["Reply-To"]
    assert address.startswith(f"support+t{ticket.pk}.") and address.endswith("@kaluari.com")
    assert receipt.extra_headers["Message-ID"] == root
    assert (receipt.extra_headers["In-Reply-To"], receipt.extra_headers["References"]) == ("<m1@acme.example>",) * 2
    assert receipt.extra_headers["Auto-Submitted"] == "auto-replied"
    staff = first["support-queue@vendor.example"]
    assert staff.extra_headers["In-Reply-To"] == root
    mailoutbox.clear()
    ticket_reply(ticket=ticket, author=sam, body="Which backup set?", now=LATER)
    answer = sent(mailoutbox)["alice@acme.example"]
    assert answer.extra_headers["Reply-To"] == address  # the same ticket and recipient: the same address
    assert answer.extra_headers["In-Reply-To"] == root
    assert answer.extra_headers["References"] == f"<m1@acme.example> {root}"
    assert answer.extra_headers["Auto-Submitted"] == "auto-generated"


def test_a_portal_ticket_threads_from_its_receipt(frozen, acme_contract, alice, sam, mailoutbox):
    ticket = ticket_open(user=alice, contract=acme_contract, service=acme_contract.services.get(), priority="P2",
                         subject="Slow", description="x", now=RECEIVED)  # fmt: skip
    ticket_set_status(ticket=ticket, actor=sam, status="waiting", now=LATER)
    root = mail_thread.root_id(ticket)
    rows = {r.template: r for r in OutboxMessage.objects.filter(to=alice.email)}
    assert rows["ticket_filed"].message_id == root
    assert "In-Reply-To" not in rows["ticket_filed"].headers  # the root answers nothing
    assert rows["ticket_status"].headers["In-Reply-To"] == root
    assert rows["ticket_status"].headers["References"] == root


def test_a_reply_to_the_reply_address_lands_once_stripped_with_the_original_kept(
    frozen, acme_contract, alice, sam, mailoutbox
):  # noqa: E501
    ticket, first = _emailed_ticket(mailoutbox)
    ticket_set_status(ticket=ticket, actor=sam, status="waiting", now=LATER)
    address = first["alice@acme.example"].extra_headers["Reply-To"]
    raw = mail(to=address, subject="Re: something else entirely", body=QUOTED, message_id="<r1@acme.example>")
    outcome = take(raw, received=LATER + timedelta(minutes=5))
    assert (outcome.kind, outcome.ticket_id) == ("replied", ticket.pk)
    assert take(raw, received=LATER + timedelta(minutes=9)).kind == "duplicate"
    message = ticket.messages.get()
    assert message.body == "The nightly set, thanks."
    original = message.attachments.get()
    assert (original.original_name, original.content_type) == ("original.eml", "message/rfc822")
    assert b"Which backup set?" in original.file.read()
    ticket.refresh_from_db()
    assert ticket.status == "open"  # waiting on her: her reply restarts the clock
    assert OutboxMessage.objects.filter(template="ticket_customer_reply", to="support-queue@vendor.example").exists()


def test_a_made_up_or_moved_token_does_not_name_the_ticket(frozen, acme_contract, alice, bob, mailoutbox):
    ticket, first = _emailed_ticket(mailoutbox)
    alices = first["alice@acme.example"].extra_headers["Reply-To"]
    assert mail_thread.ticket_of_address(alices, "alice@acme.example") == ticket.pk
    assert mail_thread.ticket_of_address(alices, "bob@acme.example") is None  # bound to its recipient
    forged = f"support+t{ticket.pk}.{'a' * 20}@kaluari.com"
    assert mail_thread.ticket_of_address(forged, "alice@acme.example") is None
    outcome = take(mail(to=forged, subject="hello", message_id="<f@acme.example>"), received=LATER)
    assert (outcome.kind, outcome.ticket_id) == ("held", None)


def test_the_report_addresses_use_the_same_ground_scheme(settings):
    address = security_mail.reply_address(17)
    parsed = reply_address.parse(address)
    assert (parsed.tag, parsed.number, parsed.mailbox) == ("r", 17, "security@vendor.example")
    assert security_mail.report_id_of_address(address) == 17
    settings.SECRET_KEY_FALLBACKS, settings.SECRET_KEY = [settings.SECRET_KEY], "rotated-" + "x" * 50
    assert security_mail.report_id_of_address(address) == 17  # an old address survives a key rotation


def test_every_email_of_a_ticket_forms_one_thread(frozen, acme_contract, alice, bob, sam, mailoutbox):
    """As a mail client builds threads (RFC 5322 References and In-Reply-To, JWZ's idea reduced to
    its core): every message Alice receives about the ticket, and her own, fall in one thread."""
    ticket, first = _emailed_ticket(mailoutbox)
    ticket_reply(ticket=ticket, author=sam, body="Which backup set?", now=LATER)
    ticket_set_status(ticket=ticket, actor=sam, status="waiting", now=LATER)
    address = first["alice@acme.example"].extra_headers["Reply-To"]
    take(mail(to=address, body="The nightly one.", message_id="<r1@acme.example>"), received=LATER)
    ticket_reply(ticket=ticket, author=sam, body="Fixed.", now=LATER + timedelta(minutes=1))
    ticket_set_status(ticket=ticket, actor=sam, status="resolved", now=LATER + timedelta(minutes=2))
    outbox_send_due()
    hers = [m.extra_headers for m in mailoutbox if m.to == ["alice@acme.example"]]
    assert len(hers) >= 3  # the receipt and both answers (status emails follow her choices)
    parent: dict[str, str] = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    messages = [{"Message-ID": "<m1@acme.example>"}, {"Message-ID": "<r1@acme.example>", "In-Reply-To": address}]
    for h in hers + messages[:1]:
        for other in [h.get("In-Reply-To", ""), *h.get("References", "").split()]:
            if other.startswith("<"):
                parent[find(h["Message-ID"])] = find(other)
    # Her reply answered our email by its reply address (mail clients add In-Reply-To; ours did not here).
    roots = {find(h["Message-ID"]) for h in hers} | {find("<m1@acme.example>")}
    assert roots == {"<m1@acme.example>"}


@pytest.mark.mailclient
def test_a_real_mail_clients_threading_shows_one_thread(frozen, acme_contract, alice, sam, mailoutbox, tmp_path):
    """notmuch (the threading of the mail clients built on it) reads Alice's mailbox as it would be:
    her message, every email we sent her about the ticket, and her answer as her client wrote it."""
    ticket, _ = _emailed_ticket(mailoutbox)
    ticket_reply(ticket=ticket, author=sam, body="Which backup set?", now=LATER)
    outbox_send_due()
    question = [m for m in mailoutbox if m.to == ["alice@acme.example"]][-1].message()
    answer = mail(to=question["Reply-To"], subject=f"Re: {question['Subject']}", body="The nightly one.",
                  message_id="<r1@acme.example>", received=LATER,
                  headers={"In-Reply-To": question["Message-ID"],
                           "References": f"{question['References'] or ''} {question['Message-ID']}".strip()})  # fmt: skip
    assert take(answer, received=LATER).kind == "replied"
    ticket_reply(ticket=ticket, author=sam, body="Fixed.", now=LATER + timedelta(minutes=1))
    ticket_set_status(ticket=ticket, actor=sam, status="resolved", now=LATER + timedelta(minutes=2))
    with time_machine.travel(LATER + timedelta(minutes=3), tick=False):
        outbox_send_due()
    hers = [m.message().as_bytes() for m in mailoutbox if m.to == ["alice@acme.example"]]
    assert len(hers) >= 4  # the receipt, both answers, the rating request
    maildir = tmp_path / "mail"
    for folder in ("cur", "new", "tmp"):
        (maildir / folder).mkdir(parents=True)
    for n, raw in enumerate([mail(), answer, *hers]):
        (maildir / "new" / f"{n}.eml").write_bytes(raw)
    config = tmp_path / "notmuch-config"
    config.write_text(f"[database]\npath={maildir}\n[user]\nprimary_email=alice@acme.example\n[new]\ntags=inbox\n")
    env = {**os.environ, "NOTMUCH_CONFIG": str(config)}
    subprocess.run(["notmuch", "new", "--quiet"], env=env, check=True)

    def notmuch(*args) -> str:
        return subprocess.run(["notmuch", *args], env=env, check=True, capture_output=True, text=True).stdout

    assert int(notmuch("count", "*")) == 2 + len(hers)
    assert len(notmuch("search", "--output=threads", "*").split()) == 1
