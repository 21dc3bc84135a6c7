"""Email as real mail clients send it (issue "Support channels": the customer's words and files
reach the ticket). A reply keeps everything its writer typed above the quoted history: lists,
"Thanks," in a sentence, a "PS", pasted output; only the history, a sign-off with its short
signature, a "-- " signature and "Sent from my iPhone" go. Every file reaches the ticket however
the client nested it (Apple Mail, Gmail's pasted screenshot, S/MIME and PGP signatures, a forwarded
message), text is read in the charset clients mean, and a text too long says where it was cut.
Alice at Acme writes to support@kaluari.com; clocks are frozen."""

import base64

import pytest
import time_machine

from tickets.inbound import parse
from tickets.inbound.quotes import latest_reply
from tickets.inbound.route import MAX_TEXT, with_refused
from tickets.models import Ticket

from .test_inbound import LATER, RECEIVED, mail, take

H = b"From: Alice <alice@acme.example>\r\nTo: support@kaluari.com\r\nSubject: x\r\nMessage-ID: <a@b>\r\nMIME-Version: 1.0\r\n"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def frozen():
    with time_machine.travel(LATER, tick=False):
        yield


def b64(data: bytes) -> bytes:
    return base64.encodebytes(data)


def read(raw: bytes) -> parse.Content:
    return parse.content(parse.parse(raw), max_file_bytes=10 * 1024 * 1024)


def names(content: parse.Content) -> list[str]:
    return [f.name for f in content.files]


# --- What a reply keeps --------------------------------------------------------------------------
KEPT_WHOLE = [
    "These jobs fail since the upgrade:\n- nightly backup\n- weekly restore test\nPlease call me on +46 8 123 456.",
    "Hi Sam,\n\nThanks, the restore works. However the export still fails with code 7.\n\nAlice",
    'The error output is:\n\n--\nTraceback (most recent call last):\n  File "x.py", line 1\nValueError: bad\n--\n\n'
    "What should I do?",
    "Hi,\n\nThe restore fails.\n\nRegards,\nAlice\n\nPS: also the export fails with code 7 since Friday.",
    "The temperature reads\n-5 degrees in the rack which is odd.",
    "The console shows:\nWarning: the mail queue is over 90% and mail is delayed\nplease check.",
    "The job report says:\nSubject: nightly\nDate: 2026-12-05 02:00\nStatus: failed at step 3, disk full on /var\n\n"
    "Can you check?",
    "I ran backupctl with the option\n--force and it worked.",
    "Forwarding what our vendor said. Please advise.\n\n---------- Forwarded message ---------\n"
    "From: Vendor <v@vendor2.example>\nDate: Mon, 7 Dec 2026 at 09:00\nSubject: Firmware\n\nFirmware 3.1 breaks the agent.",
    "On Mon, 7 Dec 2026 at 10:00, Sam <support@kaluari.com> wrote:\n> Which version do you run?\n\n4.2.1\n\n"
    "> Which OS?\n\nUbuntu 24.04",
]


@pytest.mark.parametrize("written", KEPT_WHOLE)
def test_a_reply_keeps_every_word_its_writer_typed(written):
    assert latest_reply(written) == written


GMAIL = "On Mon, 7 Dec 2026 at 10:00, Sam Support <support@kaluari.com> wrote:\n> Please try again.\n>\n> Sam\n"
OUTLOOK = (
    "From: Kaluari Support <support@kaluari.com>\nSent: Monday, December 7, 2026 10:00 AM\n"
    "To: Alice <alice@acme.example>\nSubject: RE: [#12] Restore fails\n\nPlease send logs.\n"
)
SWEDISH = (
    "Från: Kaluari Support <support@kaluari.com>\nSkickat: den 7 december 2026 10:00\n"
    "Till: Alice <alice@acme.example>\nÄmne: SV: [#12] Restore fails\n\nSkicka loggar.\n"
)


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        ("  indented:\n    step 1\n\n" + GMAIL, "  indented:\n    step 1"),
        ("The logs are attached.\n\nBest regards\nAlice\n\n" + OUTLOOK, "The logs are attached."),
        ("The logs are attached.\n\n________________________________\n" + OUTLOOK, "The logs are attached."),
        ("Loggarna bifogas.\n\nMed vänliga hälsningar\nAlice\n\n" + SWEDISH, "Loggarna bifogas."),
        ("Yes please close it.\n\nSent from my iPhone\n\n" + GMAIL, "Yes please close it."),
        ("Restore still fails.\n\n-- \nAlice Achieng\nAcme IT | +254 700 000", "Restore still fails."),
        ("Please close it.\n\nKind regards,\nAlice\nAcme IT", "Please close it."),
        ("Works now.\n\n-----Original Message-----\nFrom: Sam\nSent: today\n\nTry again.", "Works now."),
        ("It works.\n\n> Please try again.\n> Sam", "It works."),
    ],
)
def test_a_reply_loses_its_history_sign_off_and_signature(written, kept):
    assert latest_reply(written) == kept


def test_a_reply_written_below_the_quote_is_kept_whole():
    written = GMAIL + "\nI tried again and it still fails with error 42."
    assert latest_reply(written) == written.strip()


def test_an_emailed_reply_with_steps_reaches_the_ticket_whole(frozen, acme_contract, alice, sam, mailoutbox):
    ticket = Ticket.objects.get(pk=take(mail()).ticket_id)
    steps = "These fail since the upgrade:\n- nightly backup\n- weekly restore test\n\nThanks,\nAlice\n\n" + GMAIL
    raw = mail(subject=f"RE: AW: [#{ticket.pk}] Restore fails", body=steps, message_id="<r2@acme.example>")
    assert take(raw).kind == "replied"
    assert ticket.messages.get().body == "These fail since the upgrade:\n- nightly backup\n- weekly restore test"


# --- Every file, however nested ------------------------------------------------------------------
APPLE_ALT_MIXED = (
    H
    + b"""Content-Type: multipart/alternative; boundary="Apple-Mail=_A"

--Apple-Mail=_A
Content-Transfer-Encoding: 7bit
Content-Type: text/plain; charset=us-ascii

Here is the report.

report.pdf

And the second part after the file.

--Apple-Mail=_A
Content-Type: multipart/mixed; boundary="Apple-Mail=_B"

--Apple-Mail=_B
Content-Type: text/html; charset=us-ascii

<html><body><div>Here is the report.</div></body></html>
--Apple-Mail=_B
Content-Disposition: inline; filename=report.pdf
Content-Type: application/pdf; name="report.pdf"
Content-Transfer-Encoding: base64

"""
    + b64(PDF)
    + b"""--Apple-Mail=_B
Content-Type: text/html; charset=us-ascii

<html><body><div>And the second part after the file.</div></body></html>
--Apple-Mail=_B--

--Apple-Mail=_A--
"""
)
APPLE_PLAIN_MIXED = (
    H
    + b"""Content-Type: multipart/mixed; boundary="Apple-Mail=_C"

--Apple-Mail=_C
Content-Type: text/plain; charset=us-ascii

Here is the report.

--Apple-Mail=_C
Content-Disposition: inline; filename=report.pdf
Content-Type: application/pdf; name="report.pdf"
Content-Transfer-Encoding: base64

"""
    + b64(PDF)
    + b"""--Apple-Mail=_C
Content-Type: text/plain; charset=us-ascii

And the second part after the file: it fails every night.
--Apple-Mail=_C--
"""
)
GMAIL_INLINE_IMAGE = (
    H
    + b"""Content-Type: multipart/mixed; boundary="000mixed"

--000mixed
Content-Type: multipart/related; boundary="000rel"

--000rel
Content-Type: multipart/alternative; boundary="000alt"

--000alt
Content-Type: text/plain; charset="UTF-8"

See the screenshot:
[image: screen.png]
--000alt
Content-Type: text/html; charset="UTF-8"

<div>See the screenshot:<div><img src="cid:ii_1" alt="screen.png"></div></div>
--000alt--
--000rel
Content-Type: image/png; name="screen.png"
Content-Disposition: inline; filename="screen.png"
Content-Transfer-Encoding: base64
Content-ID: <ii_1>
X-Attachment-Id: ii_1

"""
    + b64(PNG)
    + b"""--000rel--
--000mixed
Content-Type: application/pdf; name="log.pdf"
Content-Disposition: attachment; filename="log.pdf"
Content-Transfer-Encoding: base64

"""
    + b64(PDF)
    + b"""--000mixed--
"""
)
SMIME_SIGNED = (
    H
    + b"""Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="sig"

--sig
Content-Type: multipart/mixed; boundary="inner"

--inner
Content-Type: text/plain; charset=utf-8

Signed message with the log attached.
--inner
Content-Type: application/pdf; name="log.pdf"
Content-Disposition: attachment; filename="log.pdf"
Content-Transfer-Encoding: base64

"""
    + b64(PDF)
    + b"""--inner--

--sig
Content-Type: application/pkcs7-signature; name="smime.p7s"
Content-Disposition: attachment; filename="smime.p7s"
Content-Transfer-Encoding: base64

MIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCABgkqhkiG9w0BBwEAAKCAMIIF
--sig--
"""
)
PGP_SIGNED_PLAIN = (
    H
    + b"""Content-Type: multipart/signed; micalg=pgp-sha256; protocol="application/pgp-signature"; boundary="pgp"

--pgp
Content-Type: text/plain; charset=utf-8

Signed with PGP, nothing attached.
--pgp
Content-Type: application/pgp-signature; name="signature.asc"
Content-Description: OpenPGP digital signature
Content-Disposition: attachment; filename="signature.asc"

-----BEGIN PGP SIGNATURE-----
iQEzBAEBCAAdFiEE
-----END PGP SIGNATURE-----
--pgp--
"""
)
FWD_RFC822 = (
    H
    + b"""Content-Type: multipart/mixed; boundary="fw"

--fw
Content-Type: text/plain; charset=utf-8

See the vendor's email attached.
--fw
Content-Type: message/rfc822; name="Firmware.eml"
Content-Disposition: attachment; filename="Firmware.eml"

From: Vendor <v@vendor2.example>
To: alice@acme.example
Subject: Firmware
Content-Type: text/plain

Firmware 3.1 breaks the agent.
--fw--
"""
)
INLINE_TXT_AFTER_ALT = (
    H
    + b"""Content-Type: multipart/mixed; boundary="it"

--it
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=utf-8

Log inline below.
--alt
Content-Type: text/html; charset=utf-8

<p>Log inline below.</p>
--alt--
--it
Content-Type: text/plain; charset=utf-8; name="agent.log"
Content-Disposition: inline; filename="agent.log"

ERROR 42 disk full
--it--
"""
)
HTML_TABLE = (
    H
    + b"""Content-Type: text/html; charset=utf-8

<table><tr><th>Job</th><th>Status</th></tr><tr><td>nightly</td><td>failed</td></tr></table><p>Line one<br>Line two</p>
"""
)


def test_apple_mails_file_inside_its_alternative_is_kept_and_its_text_read_once():
    content = read(APPLE_ALT_MIXED)
    assert names(content) == ["report.pdf"]
    assert content.text == "Here is the report.\n\nreport.pdf\n\nAnd the second part after the file."


def test_apple_mails_text_after_a_file_is_more_text():
    content = read(APPLE_PLAIN_MIXED)
    assert names(content) == ["report.pdf"]
    assert content.text == "Here is the report.\n\nAnd the second part after the file: it fails every night."


def test_a_screenshot_pasted_in_gmail_is_a_file_beside_the_attachment():
    assert names(read(GMAIL_INLINE_IMAGE)) == ["log.pdf", "screen.png"]  # attached first, then inline


def test_a_signed_message_keeps_its_files_and_no_signature_is_refused():
    smime = read(SMIME_SIGNED)
    assert (smime.text, names(smime), smime.problems) == ("Signed message with the log attached.", ["log.pdf"], [])
    pgp = read(PGP_SIGNED_PLAIN)
    assert (pgp.text, names(pgp), pgp.problems) == ("Signed with PGP, nothing attached.", [], [])


def test_a_forwarded_message_is_read_with_its_sender_and_subject():
    content = read(FWD_RFC822)
    assert content.text == (
        "See the vendor's email attached.\n\n---------- Forwarded message ----------\n"
        "From: Vendor <v@vendor2.example>\nSubject: Firmware\nTo: alice@acme.example\n\nFirmware 3.1 breaks the agent."
    )
    assert content.problems == []


def test_a_named_inline_log_after_an_html_body_is_a_file():
    content = read(INLINE_TXT_AFTER_ALT)
    assert (content.text, names(content)) == ("Log inline below.", ["agent.log"])


def test_an_html_tables_cells_stay_apart():
    assert read(HTML_TABLE).text.startswith("Job | Status\n\nnightly | failed")


def test_apple_mails_files_reach_the_ticket(frozen, acme_contract, alice, mailoutbox):
    raw = APPLE_ALT_MIXED.replace(
        b"From: Alice", b"Received: from mx by mx.vendor.example; Tue, 03 Nov 2026 07:00:00 +0000\r\nFrom: Alice"
    )
    ticket = Ticket.objects.get(pk=take(raw, received=RECEIVED).ticket_id)
    assert [a.original_name for a in ticket.attachments.all()] == ["report.pdf"]
    assert "[Not attached" not in ticket.description


# --- Charsets as clients mean them -----------------------------------------------------------------
def plain(charset: str, data: bytes) -> bytes:
    ctype = f"Content-Type: text/plain; charset={charset}\r\n" if charset else "Content-Type: text/plain\r\n"
    return H + ctype.encode() + b"Content-Transfer-Encoding: 8bit\r\n\r\n" + data + b"\r\n"


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (plain("iso-8859-1", "“Restore” fails – costs €500/day".encode("cp1252")), "“Restore” fails – costs €500/day"),
        (plain("", "Grüße, die Sicherung schlägt fehl.".encode()), "Grüße, die Sicherung schlägt fehl."),
        (plain("", "Grüße".encode("cp1252")), "Grüße"),
        (plain("iso-8859-8-i", "הגיבוי נכשל".encode("iso8859_8")), "הגיבוי נכשל"),
        (plain("unknown-8bit", "Grüße".encode()), "Grüße"),
    ],
)
def test_text_is_read_in_the_charset_its_client_meant(raw, text):
    content = read(raw)
    assert (content.text, content.problems) == (text, [])


# --- Long text -------------------------------------------------------------------------------------
def test_a_text_too_long_is_cut_where_it_says_and_keeps_the_refused_files_notice():
    stored = with_refused("word " * 6000, ["“tool.exe” is an executable file, which is not accepted"])
    assert len(stored) <= MAX_TEXT
    assert "[Cut here: the message was longer than 20,000 characters.]" in stored
    assert stored.endswith("[Not attached: “tool.exe” is an executable file, which is not accepted]")
    assert with_refused("short", []) == "short"


def alternative(plain: str, html: str) -> bytes:
    return (
        H
        + (
            'Content-Type: multipart/alternative; boundary="ad"\r\n\r\n--ad\r\nContent-Type: text/plain; charset=utf-8\r\n'
            f"\r\n{plain}\r\n--ad\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--ad--\r\n"
        ).encode()
    )


def test_a_plain_part_that_only_points_to_the_html_gives_way_to_it():
    placeholder = alternative("(This email requires an HTML capable client.)", "<p>Backup fails with error 42.</p>")
    assert read(placeholder).text == "Backup fails with error 42."
    same = alternative("Backup fails with error 42.", "<p><b>Backup</b> fails with error 42.</p>")
    assert read(same).text == "Backup fails with error 42."


def test_outlooks_table_cells_wrapped_in_paragraphs_stay_on_their_row():
    html = (
        "<table><tr><td><p class=MsoNormal>backup01<o:p></o:p></p></td><td><p class=MsoNormal>nightly</p></td>"
        "<td><div>failed</div></td></tr><tr><td><p>backup02</p></td><td><p>weekly</p></td><td><p>ok</p></td></tr>"
        "</table>"
    )
    assert parse.html_to_text(html) == "backup01 | nightly | failed\n\nbackup02 | weekly | ok"


def test_a_sentence_after_a_sign_off_is_the_writers():
    written = "The restore works now.\n\nThanks!\n\nOne more thing: backup02 still fails."
    assert latest_reply(written) == written
    assert latest_reply("It works.\n\nThanks!\nAlice Achieng\nHead of IT, Acme Savings") == "It works."


def test_utf8_labelled_ascii_is_read_as_utf8():
    assert read(plain("us-ascii", "Grüße aus Malmö".encode())).text == "Grüße aus Malmö"


def test_attached_files_come_before_a_signatures_inline_logos(frozen, acme_contract, alice, mailoutbox):
    logos = b"".join(
        b'--rel\r\nContent-Type: image/png; name="image00%d.png"\r\nContent-Disposition: inline; '
        b'filename="image00%d.png"\r\nContent-ID: <image00%d>\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        % (n, n, n)
        + b64(PNG)
        for n in range(1, 4)
    )
    files = b"".join(
        b'--mixed\r\nContent-Type: application/pdf; name="log%d.pdf"\r\nContent-Disposition: attachment; '
        b'filename="log%d.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n' % (n, n) + b64(PDF)
        for n in range(1, 6)
    )
    raw = (
        b"Received: from mx by mx.vendor.example; Tue, 03 Nov 2026 07:00:00 +0000\r\n" + H
        + b'Content-Type: multipart/mixed; boundary="mixed"\r\n\r\n--mixed\r\n'
        + b'Content-Type: multipart/related; boundary="rel"\r\n\r\n--rel\r\n'
        + b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>Five logs attached.</p><img src=\"cid:image001\">\r\n"
        + logos + b"--rel--\r\n" + files + b"--mixed--\r\n"
    )  # fmt: skip
    ticket = Ticket.objects.get(pk=take(raw, received=RECEIVED).ticket_id)
    assert sorted(a.original_name for a in ticket.attachments.all()) == [f"log{n}.pdf" for n in range(1, 6)]
    assert "image001.png" in ticket.description and "[Not attached" in ticket.description


# --- The other channels read messages the same way -------------------------------------------------
def test_an_empty_plain_part_gives_way_to_the_html():
    """A provider's webhook built without a text field: anymail makes an empty plain part."""
    assert read(alternative("", "<p>Backup fails with error 42.</p>")).text == "Backup fails with error 42."


def test_a_photo_sent_alone_is_a_file():
    photo = H + b'Content-Type: image/png; name="IMG_0412.png"\r\nContent-Disposition: inline; filename="IMG_0412.png"'
    photo += b"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(PNG)
    content = read(photo)
    assert (content.text, names(content)) == ("", ["IMG_0412.png"])


def test_a_security_report_by_email_keeps_its_files_and_an_answer_loses_its_quote(frozen, acme_contract, alice):
    from tickets import security_mail

    first = take(mail(sender="eve@research.example", to="security@vendor.example", subject="XSS in search",
                      body="PoC attached.", files=[("poc.png", PNG, "image/png")]))  # fmt: skip
    report = Ticket.objects.get(pk=first.ticket_id)
    assert [a.original_name for a in report.attachments.all()] == ["poc.png"]
    answer = "The second payload is attached.\n\nOn Tue, 3 Nov 2026, Security wrote:\n> Thank you for reporting."
    take(mail(sender="eve@research.example", to=security_mail.reply_address(report.pk), subject="Re: report",
              body=answer, message_id="<m2@research.example>", files=[("poc2.png", PNG, "image/png")]),
         received=LATER)  # fmt: skip
    message = report.messages.get()
    assert message.body == "The second payload is attached."
    assert [a.original_name for a in message.attachments.all()] == ["poc2.png"]


def test_staff_emails_name_the_files_the_customer_sent(frozen, acme_contract, alice, sam, mailoutbox):
    from portal.core.delivery import outbox_send_due

    ticket = Ticket.objects.get(
        pk=take(mail(body="The job log is attached.", files=[("job-42.png", PNG, "image/png")])).ticket_id
    )
    reply = mail(subject=f"Re: [#{ticket.pk}] Restore fails", body="And the screen.", message_id="<r9@acme.example>",
                 files=[("screen.png", PNG, "image/png")])  # fmt: skip
    take(reply, received=LATER)
    outbox_send_due()
    staff = [m for m in mailoutbox if m.to == ["support-queue@vendor.example"]]
    bodies = [m.body for m in staff]
    assert any("The job log is attached." in b and "Files: job-42.png" in b for b in bodies)
    assert any("And the screen." in b and "Files: screen.png" in b for b in bodies)
