"""The vulnerability channel is two-way and sealed (issue Trust, item 9): only security staff see a
report's text anywhere; staff replies reach the reporter by email, threaded, with the report's reply
address, and the reporter's answers reach the report; a report from a customer's address is not the
customer's; the public form is limited and puts no submitter's words in a subject."""

import re
from datetime import datetime, timedelta
from email import message_from_bytes
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail, signing
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from portal.core.audit import audit
from portal.models import AuditEntry, OutboxMessage
from tickets import security_mail
from tickets.attachments import validate_upload
from tickets.models import SecurityReport, Ticket, TicketMessage
from tickets.security import security_report_find, security_report_receive, security_report_submit
from tickets.services import ticket_reply, ticket_set_status
from tickets.sweeps import check_sla_deadlines, escalate_due_tickets

pytestmark = pytest.mark.django_db
STO = ZoneInfo("Europe/Stockholm")
FILED = datetime(2026, 12, 11, 15, 0, tzinfo=STO)  # a Friday afternoon: acknowledged by Monday 10:00
SECRET_WORDS = "Stored XSS in the claims CSV export"


def report(email="eve@research.example", *, summary=SECRET_WORDS, at=FILED, source=None) -> Ticket:
    with time_machine.travel(at, tick=False):
        return security_report_submit(
            email=email, name="Eve", summary=summary, details="The body of the report: payload.", source=source
        )


def post_report(client, email="eve@research.example", summary=SECRET_WORDS, name="Eve", ip="203.0.113.7"):
    body = {"name": name, "email": email, "summary": summary, "details": "Steps to reproduce."}
    return client.post("/security/report/", body, REMOTE_ADDR=ip)


def upload(name, body):
    f = SimpleUploadedFile(name, body)
    f.checked_type = validate_upload(f)  # what the forms do before the services
    return f


def sent(django_capture_on_commit_callbacks, run):
    """The emails `run` sends (the outbox's workers run eagerly on commit), parsed as received."""
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        result = run()
    return result, [message_from_bytes(m.message().as_bytes()) for m in mail.outbox]


# --- 3. A report from an address, not from an account ------------------------------------------
def test_a_report_with_a_customers_address_is_not_attached_to_the_customer(client, alice, sol):
    ticket = report(email="ALICE@acme.example")
    assert ticket.created_by != alice and not ticket.created_by.is_active
    assert not ticket.created_by.has_usable_password()
    assert ticket.security_report.reporter_email == "ALICE@acme.example"
    alice.refresh_from_db()
    assert alice.is_active and alice.organisation.slug == "acme"
    # Every report is filed by the same account: no account per address is made either.
    other = report(email="mallory@evil.example")
    assert other.created_by == ticket.created_by
    # Staff read the address as an address, not as Alice (of Acme).
    client.force_login(sol)
    page = client.get(f"/admin/tickets/ticket/{ticket.pk}/change/").content.decode()
    assert "Eve &lt;ALICE@acme.example&gt; (an address, not an account" in page


# --- 4. The public form: limited, and no submitter's words in a subject --------------------------
def test_the_receipt_has_a_fixed_subject_and_none_of_the_submitters_words(client, django_capture_on_commit_callbacks):
    spam = "Cheap watches at shop.example"
    with time_machine.travel(FILED, tick=False):
        response, messages = sent(
            django_capture_on_commit_callbacks,
            lambda: post_report(client, email="victim@example.org", summary=spam, name="Visit shop.example"),
        )
    assert response.status_code == 302
    ticket = Ticket.objects.get()
    [receipt] = [m for m in messages if m["To"] == "victim@example.org"]
    assert receipt["Subject"] == f"Your vulnerability report #{ticket.pk}"
    whole = receipt.as_string()
    assert "shop.example" not in whole and "Cheap watches" not in whole
    assert "If you did not send a vulnerability report" in whole


def test_the_form_is_limited_per_address_whatever_its_spelling(client):
    for n in range(3):
        assert post_report(client, ip=f"198.51.100.{n}").status_code == 302
    with time_machine.travel(datetime.now(STO) + timedelta(hours=2), tick=False):
        for spelling in ("eve@research.example", "EVE+again@Research.example"):
            response = post_report(client, email=spelling, ip="198.51.100.99")
            assert response.status_code == 429
            assert int(response["Retry-After"]) == pytest.approx(22 * 3600, abs=120)
            assert (
                "We have received 3 reports from this email address in the last 24 hours" in response.content.decode()
            )
    assert Ticket.objects.count() == 3
    with time_machine.travel(datetime.now(STO) + timedelta(days=1, minutes=5), tick=False):
        assert post_report(client, ip="198.51.100.99").status_code == 302


def test_the_form_is_limited_per_submitter(client):
    for n in range(10):
        assert post_report(client, email=f"r{n}@research.example").status_code == 302
    response = post_report(client, email="r10@research.example")
    assert response.status_code == 429 and "from your network address" in response.content.decode()
    assert post_report(client, email="r10@research.example", ip="203.0.113.8").status_code == 302
    # The submitter's IP address is not stored, only a keyed hash of it.
    assert not SecurityReport.objects.filter(source_key__contains="203.0.113").exists()
    assert SecurityReport.objects.filter(source_key="").count() == 0


# --- 1. Only security staff see a report's text ----------------------------------------------
def test_breach_and_warning_emails_of_a_report_go_to_security_staff_alone(
    sam, lena, sol, settings, django_capture_on_commit_callbacks
):
    ticket = report()
    for at in (datetime(2026, 12, 14, 10, 1, tzinfo=STO), datetime(2026, 12, 21, 10, 1, tzinfo=STO)):
        with time_machine.travel(at, tick=False):
            check_sla_deadlines()
            escalate_due_tickets()
    rows = list(OutboxMessage.objects.filter(key__startswith=f"ticket:{ticket.pk}:"))
    templates = {r.template for r in rows}
    # The at-risk warning and the breach; a report's resolution target is its limit, so its "target
    # passed" warning crosses with the breach and is not emailed apart (tickets.sweeps).
    assert {"ticket_breach_staff", "ticket_at_risk"} <= templates and "ticket_warning" not in templates
    assert {r.to for r in rows} == {sol.email}  # not the queue, not the support lead, not the ladder's roles
    for row in rows:
        subject, _, _ = _rendered(row)
        assert SECRET_WORDS not in subject and "Vulnerability report" in subject


def test_without_security_staff_a_reports_emails_go_to_the_security_address(settings):
    ticket = report()
    with time_machine.travel(datetime(2026, 12, 14, 10, 1, tzinfo=STO), tick=False):
        check_sla_deadlines()
    tos = set(OutboxMessage.objects.filter(key__startswith=f"ticket:{ticket.pk}:").values_list("to", flat=True))
    assert tos == {settings.SECURITY_CONTACT_EMAIL}


def _rendered(row):
    from portal.core.delivery import outbox_render

    return outbox_render(row)


def test_the_outbox_admin_shows_a_reports_emails_to_security_staff_alone(client, sam, lena, ayo, sol):
    ticket = report()
    with time_machine.travel(FILED + timedelta(hours=1), tick=False):
        ticket_reply(ticket=ticket, author=sol, body="Thanks, we reproduce it.")
    with time_machine.travel(datetime(2026, 12, 21, 10, 1, tzinfo=STO), tick=False):
        check_sla_deadlines()
    rows = OutboxMessage.objects.filter(to__in=["eve@research.example", sol.email])
    assert {"security_report_receipt", "security_report_staff", "security_report_reply", "ticket_breach_staff"} <= {
        r.template for r in rows
    }
    for staff in (sam, lena, ayo):
        client.force_login(staff)
        listing = client.get("/admin/portal/outboxmessage/").content.decode()
        assert "eve@research.example" not in listing and f"security-report:{ticket.pk}" not in listing
        found = client.get("/admin/portal/outboxmessage/", {"q": "eve@research"}).content.decode()
        assert "0 outbox messages" in found or "eve@research.example</td>" not in found
        for row in rows:
            page = client.get(f"/admin/portal/outboxmessage/{row.pk}/change/")
            assert page.status_code == 302  # Django's "doesn't exist" for a row outside one's queryset
    client.force_login(sol)
    listing = client.get("/admin/portal/outboxmessage/").content.decode()
    assert "eve@research.example" in listing
    page = client.get(f"/admin/portal/outboxmessage/{rows.get(template='security_report_staff').pk}/change/")
    assert "The body of the report: payload." in page.content.decode()


def test_the_audit_log_names_a_report_without_its_words():
    ticket = report()
    entry = audit(actor=None, action="test.touched", target=ticket)
    assert AuditEntry.objects.get(pk=entry.pk).target_repr == f"#{ticket.pk} Vulnerability report"


def test_the_staff_dashboard_shows_a_reports_breach_to_security_staff_alone(client, sam, sol):
    report()
    with time_machine.travel(datetime(2026, 12, 14, 10, 1, tzinfo=STO), tick=False):
        check_sla_deadlines()
        client.force_login(sam)
        assert SECRET_WORDS not in client.get("/admin/dashboard/").content.decode()
        client.force_login(sol)
        assert SECRET_WORDS in client.get("/admin/dashboard/").content.decode()


# --- 2. Two-way: replies reach the reporter, answers reach the report --------------------------
def test_a_staff_reply_reaches_the_reporter_by_email_threaded_with_the_reply_address(
    client, sol, django_capture_on_commit_callbacks
):
    with time_machine.travel(FILED, tick=False), django_capture_on_commit_callbacks(execute=True):
        ticket = report()
    [receipt] = [message_from_bytes(m.message().as_bytes()) for m in mail.outbox if m.to == ["eve@research.example"]]
    address = security_mail.reply_address(ticket.pk)
    assert address.startswith(f"security+r{ticket.pk}.") and address.endswith("@vendor.example")
    assert (receipt["Reply-To"], receipt["Auto-Submitted"], receipt["In-Reply-To"]) == (
        address, "auto-generated", None
    )  # fmt: skip
    with time_machine.travel(FILED + timedelta(hours=1), tick=False):
        client.force_login(sol)
        response, messages = sent(
            django_capture_on_commit_callbacks,
            lambda: client.post(
                f"/admin/tickets/ticket/{ticket.pk}/reply/", {"body": "We reproduced it; a fix ships Monday."}
            ),
        )
    assert response.status_code == 302
    [reply] = messages
    assert reply["To"] == "eve@research.example"
    assert reply["Subject"] == f"Re: Your vulnerability report #{ticket.pk}"
    assert (reply["Reply-To"], reply["Auto-Submitted"]) == (address, "auto-generated")
    assert reply["In-Reply-To"] == receipt["Message-ID"] and reply["References"] == receipt["Message-ID"]
    assert "We reproduced it; a fix ships Monday." in reply.get_payload()[0].get_payload(decode=True).decode()
    # The reporter stays an address: no account was made or woken for them.
    assert not ticket.created_by.is_active and ticket.created_by.email != "eve@research.example"
    ticket.refresh_from_db()
    assert ticket.first_response_at is not None  # the reply acknowledged the report on its clock


def test_a_staff_replys_files_reach_the_reporter_as_links_for_that_file_alone(
    client, sol, django_capture_on_commit_callbacks
):
    ticket = report()
    patch = SimpleUploadedFile("fix.patch.txt", b"--- a/export.py\n+++ b/export.py\n")
    with time_machine.travel(FILED + timedelta(hours=1), tick=False):
        client.force_login(sol)
        response, [reply] = sent(
            django_capture_on_commit_callbacks,
            lambda: client.post(
                f"/admin/tickets/ticket/{ticket.pk}/reply/", {"body": "Does this patch fix it?", "attachments": patch}
            ),
        )
        assert response.status_code == 302
        note = ticket_reply(
            ticket=ticket, author=sol, body="Internal.", internal=True, files=[upload("notes.txt", b"internal\n")]
        )
    text = reply.get_payload()[0].get_payload(decode=True).decode()
    html = reply.get_payload()[1].get_payload(decode=True).decode()
    [link] = re.findall(r"- fix\.patch\.txt \(32\sbytes\): (\S+)", text)
    assert "each link works for 30 days" in text and f'<a href="{link}">fix.patch.txt</a>' in html
    path = urlsplit(link).path
    client.logout()  # the reporter has no login
    with time_machine.travel(FILED + timedelta(days=29), tick=False):
        response = client.get(path)
        assert response.status_code == 200 and b"".join(response.streaming_content).startswith(b"--- a/export.py")
        assert response["Content-Disposition"] == 'attachment; filename="fix.patch.txt"'
        assert response["X-Content-Type-Options"] == "nosniff" and "sandbox" in response["Content-Security-Policy"]
        token = path.rstrip("/").rsplit("/", 1)[1]
        assert client.get(path.replace(token, token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))).status_code == 404
        # Signed by us but not what a link holds (not two ids): no file, never a 500.
        for held in (["a", {}], [ticket.pk], "a", [ticket.pk, 2**70]):
            wrong = signing.dumps(held, salt="tickets.security_mail.file_link")
            assert client.get(reverse("security-report-file", args=[wrong])).status_code == 404
        # A link to a file it was not made for (an internal note's) is no link, even signed by us.
        internal_link = urlsplit(security_mail.file_link(note.attachments.get())).path
        assert client.get(internal_link).status_code == 404
    with time_machine.travel(FILED + timedelta(days=31), tick=False):
        expired = client.get(path)
    assert expired.status_code == 410 and b"reply to our email" in expired.content


def test_an_internal_note_on_a_report_emails_nobody(sol, django_capture_on_commit_callbacks):
    ticket = report()
    _, messages = sent(
        django_capture_on_commit_callbacks,
        lambda: ticket_reply(ticket=ticket, author=sol, body="Internal: looks real.", internal=True),
    )
    assert messages == []


def test_the_reply_address_is_unguessable_and_read_back(settings):
    first, second = report(), report(email="frank@research.example")
    a, b = security_mail.reply_address(first.pk), security_mail.reply_address(second.pk)
    token_a = a.split(".", 1)[1].split("@")[0]
    assert len(token_a) == 20 and token_a != b.split(".", 1)[1].split("@")[0]
    assert security_mail.report_id_of_address(a) == first.pk
    assert security_mail.report_id_of_address(f"Eve Researcher <{a.upper()}>") == first.pk  # case folded on the way
    forged = a.replace(f"+r{first.pk}.", f"+r{second.pk}.")  # another report's number with this token
    assert security_mail.report_id_of_address(forged) is None
    assert security_mail.report_id_of_address(a.replace("@vendor.example", "@evil.example")) is None
    assert security_mail.report_id_of_address(a.replace("security+", "support+")) is None
    assert security_mail.report_id_of_address("security@vendor.example") is None
    # A rotated SECRET_KEY: the old addresses still work while the old key is a fallback.
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-key-" + "x" * 50
    assert security_mail.report_id_of_address(a) == first.pk
    assert security_mail.reply_address(first.pk) != a
    settings.SECRET_KEY_FALLBACKS = []
    assert security_mail.report_id_of_address(a) is None
    assert security_mail.is_security_address("Security+anything@Vendor.example")
    assert not security_mail.is_security_address("support@vendor.example")


def test_an_answer_by_email_reaches_its_report_once_and_the_thread_goes_on(
    sam, lena, sol, django_capture_on_commit_callbacks
):
    ticket = report()
    receipt_id = OutboxMessage.objects.get(key=f"security-report:{ticket.pk}:reporter:receipt").message_id
    address = security_mail.reply_address(ticket.pk)
    found = security_report_find(recipients=[f"Security team <{address}>"], sender="eve@research.example")
    assert found.ticket_id == ticket.pk
    answer_at = FILED + timedelta(hours=2)
    with time_machine.travel(answer_at, tick=False):
        message, messages = sent(
            django_capture_on_commit_callbacks,
            lambda: security_report_receive(
                report=found, sender="eve@research.example", body="Here is a second payload.",
                message_id="<answer-1@research.example>",
            ),
        )  # fmt: skip
    assert message.ticket_id == ticket.pk and message.author == ticket.created_by and not message.internal
    assert message.created_at == answer_at
    # Security staff hear of it; the queue and the support lead do not.
    assert {m["To"] for m in messages} == {sol.email}
    assert SECRET_WORDS not in messages[0]["Subject"] and "Here is a second payload." in messages[0].as_string()
    # The same message ingested twice is put once.
    assert security_report_receive(report=found, sender="eve@research.example", body="Here is a second payload.",
                                   message_id="<answer-1@research.example>") is None  # fmt: skip
    assert TicketMessage.objects.filter(ticket=ticket).count() == 1
    # Staff's next reply answers the reporter's message, in the same thread.
    _, messages = sent(
        django_capture_on_commit_callbacks, lambda: ticket_reply(ticket=ticket, author=sol, body="Got it.")
    )
    [reply] = messages
    assert reply["In-Reply-To"] == "<answer-1@research.example>"
    assert reply["References"].split() == [receipt_id, "<answer-1@research.example>"]


def test_an_answer_is_found_by_the_message_it_answers_from_the_reporters_address_only():
    ticket = report()
    receipt_id = OutboxMessage.objects.get(key=f"security-report:{ticket.pk}:reporter:receipt").message_id
    staff_id = OutboxMessage.objects.filter(key__startswith=f"security-report:{ticket.pk}:staff:").first()
    assert security_report_find(in_reply_to=receipt_id, sender="Eve <EVE@research.example>").ticket_id == ticket.pk
    assert security_report_find(references=f"<x@y> {receipt_id}", sender="eve@research.example") is not None
    assert security_report_find(in_reply_to=receipt_id, sender="mallory@evil.example") is None
    assert security_report_find(in_reply_to="<unknown@x>", sender="eve@research.example") is None
    if staff_id is not None:  # a staff notification is no message to the reporter
        assert security_report_find(in_reply_to=staff_id.message_id, sender="eve@research.example") is None


def test_an_answer_to_a_closed_report_opens_it_again(sol):
    ticket = report()
    ticket_set_status(ticket=ticket, actor=sol, status=Ticket.Status.CLOSED)
    found = security_report_find(recipients=[security_mail.reply_address(ticket.pk)])
    security_report_receive(report=found, sender="eve@research.example", body="It still works on your new build.")
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.OPEN and ticket.messages.count() == 1


# --- Reports filed before: from the account the form made, or a customer's -------------------
def test_the_migration_gives_earlier_reports_their_address_and_detaches_the_accounts(alice):
    import importlib

    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    from portal.models import User

    migration = importlib.import_module("tickets.migrations.0007_reports_from_addresses")
    first, second = report(), report(email="someone@research.example")
    account = first.created_by
    old_reporter = User.objects.create(
        email="eve@research.example", name="Eve", organisation=first.organisation, customer_role="member",
        is_active=False,
    )  # fmt: skip
    receipt = OutboxMessage.objects.get(key=f"security-report:{first.pk}:reporter:receipt")
    OutboxMessage.objects.filter(pk=receipt.pk).update(key=f"security-report:{first.pk}:receipt")  # the old key
    SecurityReport.objects.all().delete()
    Ticket.objects.filter(pk=first.pk).update(created_by=old_reporter)
    Ticket.objects.filter(pk=second.pk).update(created_by=alice)  # typed with Alice's address, before
    User.objects.filter(pk=account.pk).delete()

    state = MigrationExecutor(connection).loader.project_state()  # the models as the database has them now
    migration.reports_from_addresses(state.apps, None)

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.created_by == second.created_by and first.created_by.email == "reporter@security-reports.invalid"
    assert not first.created_by.is_active and not first.created_by.has_usable_password()
    assert (first.security_report.reporter_email, first.security_report.reporter_name) == (
        "eve@research.example",
        "Eve",
    )
    assert first.security_report.thread == [{"id": receipt.message_id, "at": receipt.created_at.isoformat()}]
    assert second.security_report.reporter_email == alice.email
    assert User.objects.filter(pk=alice.pk, is_active=True).exists()  # Alice keeps her account
    assert not User.objects.filter(pk=old_reporter.pk).exists()  # the form's account for Eve is gone
    actions = sorted(AuditEntry.objects.values_list("action", "target_id"))
    assert actions == sorted([
        ("security_report.filer", str(first.pk)), ("security_report.filer", str(second.pk)),
        ("user.deleted", str(old_reporter.pk)),
    ])  # fmt: skip
    # The next staff reply threads with the old receipt.
    assert security_mail.thread_ids(first.security_report) == [receipt.message_id]


def test_the_outbox_admin_hides_a_reports_emails_however_often_a_request_asks(rf, sam):
    """The hidden rows were kept on the request as an empty Q (`|=` makes a new one): every
    question after a request's first (its template filter, for one) saw every row."""
    from django.contrib import admin

    from portal.models import OutboxMessage as Row

    report()
    request = rf.get("/admin/portal/outboxmessage/")
    request.user = sam
    outbox_admin = admin.site._registry[Row]
    first, second = outbox_admin.get_queryset(request), outbox_admin.get_queryset(request)
    assert first.count() == second.count() == 0
    assert Row.objects.filter(template__startswith="security_report").count() == 2


def test_any_staff_email_of_a_report_goes_to_security_staff_whoever_it_names(ayo, sol):
    """Klart's terms (the reports') have no escalation ladder, so a report never escalates; were one
    added, its emails would go through the same door as breaches and warnings."""
    from tickets import notify

    ticket = report()
    [email] = notify.to_addresses([ayo.email, "support@vendor.example"], "k", "ticket_escalated_staff", {}, ticket)
    assert email.to == sol.email
    assert notify.to_customers(ticket, "k", "ticket_reply", {}, kind=None) == []
