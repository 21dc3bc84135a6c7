"""A mail provider's inbound webhook (tickets.provider_inbound; Postmark through django-anymail):
Postmark's documented inbound payload files Alice's ticket on the clock of the provider's receipt; a
retry is a duplicate; a wrong secret is a 401 with no row. Alice is a support contact of Acme,
whose Kaluari contract's level-1 address is support@kaluari.com."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import OperationalError

from tickets import provider_inbound
from tickets.models import InboundMessage, Ticket

pytestmark = pytest.mark.django_db

URL = "/anymail/postmark/inbound/"
SECRET = "postmark:s3cr3t-webhook"
RECEIVED = datetime(2026, 11, 3, 7, 0, 12, tzinfo=UTC)  # Postmark took it (10:00 in Nairobi, a Tuesday)
LATER = RECEIVED + timedelta(hours=3)  # the webhook reaches us after Postmark's retries


def payload(**changes) -> dict:
    """Postmark's inbound webhook JSON as its documentation shows it (without "Include raw email
    content"): Postmark puts the envelope sender first in Headers, and its own Received on top."""
    event = {
        "FromName": "Alice",
        "MessageStream": "inbound",
        "From": "alice@acme.example",
        "FromFull": {"Email": "alice@acme.example", "Name": "Alice", "MailboxHash": ""},
        "To": "support@kaluari.com",
        "ToFull": [{"Email": "support@kaluari.com", "Name": "Kaluari Support", "MailboxHash": ""}],
        "Cc": "",
        "CcFull": [],
        "Bcc": "",
        "BccFull": [],
        "OriginalRecipient": "support@kaluari.com",
        "Subject": "Restore of job 42 fails",
        "MessageID": "73e6d360-66eb-11e1-8e72-a8904824019b",
        "ReplyTo": "",
        "MailboxHash": "",
        "Date": "Mon, 1 Jan 2001 00:00:00 +0000",  # a sender's Date never starts a clock
        "TextBody": "The restore of job 42 fails with error 17.",
        "HtmlBody": "<p>The restore of job 42 fails with error 17.</p>",
        "StrippedTextReply": "",
        "Tag": "",
        "Headers": [
            {"Name": "Return-Path", "Value": "<alice@acme.example>"},
            {
                "Name": "Received",
                "Value": "by p-pm-inboundg02c-aws-useast1c.inbound.postmarkapp.com (Postfix, from userid 996) "
                "id 8ED1A453CA4; Tue, 3 Nov 2026 07:00:12 +0000 (UTC)",
            },
            {"Name": "X-Spam-Checker-Version", "Value": "SpamAssassin 3.4.0 (2014-02-07) on p-pm-inboundg02c"},
            {"Name": "X-Spam-Status", "Value": "No"},
            {"Name": "X-Spam-Score", "Value": "-0.1"},
            {
                "Name": "Received",
                "Value": "from mx.acme.example (mx.acme.example [203.0.113.5]) by "
                "p-pm-inboundg02c-aws-useast1c.inbound.postmarkapp.com (Postfix) with ESMTPS; "
                "Tue, 3 Nov 2026 07:00:11 +0000 (UTC)",
            },
            {"Name": "MIME-Version", "Value": "1.0"},
            {"Name": "Message-ID", "Value": "<restore-42@acme.example>"},
        ],
        "Attachments": [
            {
                "Name": "job-42.log",
                "Content": base64.b64encode(b"error 17: the target is read-only\n").decode(),
                "ContentType": "text/plain",
                "ContentLength": 34,
            }
        ],
    }
    event.update(changes)
    return event


RAW_EMAIL = (
    "Received: by p-pm-inboundg02c-aws-useast1c.inbound.postmarkapp.com (Postfix) id 8ED1A453CA4;\n"
    " Tue, 3 Nov 2026 07:00:12 +0000 (UTC)\n"
    "From: Alice <alice@acme.example>\n"
    "To: support@kaluari.com\n"
    "Subject: Restore of job 42 fails\n"
    "Message-ID: <restore-42@acme.example>\n"
    "Date: Mon, 1 Jan 2001 00:00:00 +0000\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "\n"
    "The restore of job 42 fails with error 17.\n"
)


@pytest.fixture
def webhook(settings, client, acme_contract, alice):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}

    def post(event, *, secret=SECRET):
        headers = {}
        if secret is not None:
            headers["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(secret.encode()).decode()
        body = event if isinstance(event, str) else json.dumps(event)
        with time_machine.travel(LATER, tick=False):
            return client.post(URL, data=body, content_type="application/json", **headers)

    return post


def test_postmarks_documented_payload_files_a_ticket_on_the_clock_of_postmarks_receipt(webhook, acme_contract, alice):
    response = webhook(payload())

    assert response.status_code == 200 and response.content == b"filed\n"
    row = InboundMessage.objects.get()
    ticket = row.ticket
    assert (ticket.contract, ticket.created_by, ticket.subject) == (acme_contract, alice, "Restore of job 42 fails")
    assert ticket.description == "The restore of job 42 fails with error 17."
    assert [a.original_name for a in ticket.attachments.all()] == ["job-42.log"]
    # The provider's receipt time (its own topmost Received), not the Date header, not the webhook's time.
    assert row.received_at == RECEIVED and ticket.filed_at == RECEIVED
    assert (row.source, row.source_ref) == ("webhook", "postmark:73e6d360-66eb-11e1-8e72-a8904824019b")
    # The envelope sender Postmark gave comes first, as an MTA's Return-Path.
    assert bytes(row.raw).startswith(b"Return-Path: <alice@acme.example>\r\n")
    assert (row.sender, row.message_id, row.return_path) == (
        "alice@acme.example",
        "<restore-42@acme.example>",
        "alice@acme.example",
    )


def test_a_retry_of_the_same_payload_is_a_duplicate(webhook):
    assert webhook(payload()).content == b"filed\n"
    retry = webhook(payload())
    assert retry.status_code == 200 and retry.content == b"duplicate\n"
    assert InboundMessage.objects.count() == 1 and Ticket.objects.count() == 1


def test_a_retry_builds_the_same_bytes_whatever_anymails_boundaries():
    event = payload()
    view = provider_inbound.PostmarkInbound()
    first = provider_inbound.message_bytes(event, view.esp_to_anymail_event(event).message)
    again = provider_inbound.message_bytes(event, view.esp_to_anymail_event(json.loads(json.dumps(event))).message)
    assert first == again and b"multipart/mixed" in first


def test_the_raw_mime_is_taken_when_postmark_sends_it(webhook):
    event = payload(RawEmail=RAW_EMAIL)
    response = webhook(event)
    assert response.content == b"filed\n"
    row = InboundMessage.objects.get()
    assert bytes(row.raw) == b"Return-Path: <alice@acme.example>\n" + RAW_EMAIL.encode()
    assert row.ticket.description == "The restore of job 42 fails with error 17." and row.received_at == RECEIVED


def test_without_a_received_header_the_webhooks_first_arrival_is_the_received_time(webhook):
    event = payload()
    event["Headers"] = [h for h in event["Headers"] if h["Name"] != "Received"]
    assert webhook(event).content == b"filed\n"
    assert InboundMessage.objects.get().received_at == LATER


@pytest.mark.parametrize("secret", ["postmark:wrong", "", None], ids=["wrong", "empty", "missing"])
def test_a_bad_secret_is_a_401_and_no_row(webhook, secret):
    response = webhook(payload(), secret=secret)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic ")
    assert not InboundMessage.objects.exists() and not Ticket.objects.exists()


def test_without_a_secret_the_webhook_is_off(webhook, settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": ""}
    assert webhook(payload()).status_code == 404
    assert not InboundMessage.objects.exists()


@pytest.mark.parametrize(
    "body", ["not json", "[1, 2]", json.dumps({"RecordType": "Delivery"}), json.dumps({"Headers": "x"})]
)
def test_what_is_not_an_inbound_payload_is_a_400(webhook, body):
    assert webhook(body).status_code == 400
    assert not InboundMessage.objects.exists()


def test_a_message_that_could_not_be_stored_is_a_503_that_postmark_retries(webhook, monkeypatch):
    def down(*args, **kwargs):
        raise OperationalError("the database is down")

    monkeypatch.setattr(provider_inbound, "ingest", down)
    response = webhook(payload())
    assert response.status_code == 503 and response["Retry-After"] == "60"
    monkeypatch.undo()
    assert webhook(payload()).content == b"filed\n"


def test_a_message_larger_than_a_forms_post_is_taken(webhook, settings):
    # Django reads at most DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) of a request's body for a form.
    screen = b"\x89PNG\r\n\x1a\n" + b"\x00" * 3_400_000  # 4.5 MB in base64
    event = payload()
    event["Attachments"] = [{"Name": "screen.png", "Content": base64.b64encode(screen).decode(),
                             "ContentType": "image/png", "ContentLength": len(screen)}]  # fmt: skip
    assert len(json.dumps(event)) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = webhook(event)
    assert (response.status_code, response.content) == (200, b"filed\n")
    (attachment,) = InboundMessage.objects.get().ticket.attachments.all()
    assert (attachment.original_name, attachment.size) == ("screen.png", len(screen))
    # Over the ingest's own limit, the message is refused with its header kept; past what any
    # provider posts, a 413 (nothing read).
    settings.INBOUND_MAX_BYTES = 2 * 1024 * 1024
    again = payload(MessageID="another", Subject="Again", Attachments=event["Attachments"])
    again["Headers"][-1]["Value"] = "<again@acme.example>"  # its Message-ID
    response = webhook(again)
    assert response.content == b"refused\n" and InboundMessage.objects.get(subject="Again").outcome == "refused"
    settings.INBOUND_MAX_BYTES = 1024 * 1024
    assert webhook(event).status_code == 413


def test_it_rejects_get(webhook, client, settings):
    assert client.get(URL).status_code == 405


def test_odd_but_real_payloads_are_taken_never_a_500_or_a_lost_message(webhook):
    """A subject with a line break (an encoded =0A decodes to one), a lone surrogate, a NUL in the
    MessageID: anymail refused to build them (a 400, the message lost once Postmark stops) or the
    database refused them (a 503 for ever)."""
    outcomes = [
        webhook(payload(Subject="Restore fails\nBcc: eve@evil.example", MessageID="a1")),
        webhook(payload(Subject="Restore \ud800 fails", MessageID="a2\x00", Headers=[])),
        webhook(payload(TextBody="Error \ud800 17", MessageID="a3", Headers=[])),
    ]
    assert [r.status_code for r in outcomes] == [200, 200, 200]
    subjects = sorted(Ticket.objects.values_list("subject", flat=True))
    assert subjects == ["Restore fails Bcc: eve@evil.example", "Restore of job 42 fails", "Restore \ufffd fails"]
    # Garbage is a 400, never a 500: no text at all, a body nested beyond reading, no length.
    assert webhook(payload(Subject=None, TextBody=None, HtmlBody=None, MessageID="a4")).status_code == 400
    assert webhook("[" * 100_000).status_code == 400
