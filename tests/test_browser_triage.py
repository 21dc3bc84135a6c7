"""Proven in a real browser: Sam opens the triage list of email in, reads a message held because its
sender may not open tickets, and files it for Alice; the ticket's clock starts when the message came.
Each step leaves a screenshot in var/screenshots/ and passes axe-core."""

import re
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime

import pytest
from django.utils import timezone

from tickets.inbound.service import ingest
from tickets.models import InboundMessage, Ticket

from .test_browser import assert_accessible

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def visit(page, screenshot, name: str) -> None:
    page.wait_for_load_state("load")
    screenshot(page, name)
    assert_accessible(page, name)


def test_sam_files_a_held_email_for_alice(logged_in_page, screenshot, acme_contract, alice, bob, sam):
    acme_contract.support_contacts.set([alice])
    came = timezone.now().replace(microsecond=0) - timedelta(hours=1)
    msg = EmailMessage()
    msg["Received"] = f"from mx.acme.example by mx.vendor.example; {format_datetime(came)}"
    msg["From"], msg["To"], msg["Subject"] = "Bob Barasa <bob@acme.example>", "support@kaluari.com", "Restore stuck"
    msg["Message-ID"] = "<bob-1@acme.example>"
    msg.set_content("The restore of last night's set has been at 40% since 09:00.\n\nBob")
    held = ingest(msg.as_bytes(), received_at=came, source="pipe")
    assert held.kind == "held"

    page = logged_in_page(sam)
    page.goto("/admin/tickets/inboundmessage/?outcome__exact=held")
    visit(page, screenshot, "triage-01-held-list")
    page.locator("#result_list tbody a").first.click()
    visit(page, screenshot, "triage-02-held-message")
    form = page.locator("#file-form")
    form.get_by_label("Contract").select_option(str(acme_contract.pk))
    form.get_by_label("For (the customer's email address)").fill("alice@acme.example")
    form.get_by_role("button", name="File").click()
    page.wait_for_url(re.compile(r"/admin/tickets/inboundmessage/\d+/change/$"))
    visit(page, screenshot, "triage-03-filed")
    row = InboundMessage.objects.get(pk=held.inbound_id)
    assert row.outcome == "filed" and Ticket.objects.get().filed_at == came


def test_sol_files_held_security_mail_as_a_report(logged_in_page, screenshot, monkeypatch, sol):
    """Mail to the security address is held only when taking it failed; security staff see it
    alone, with two choices: a vulnerability report (the usual receipt to its sender) or discard."""
    from tickets.inbound import route

    came = timezone.now().replace(microsecond=0) - timedelta(minutes=20)
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "Eve <eve@research.example>", "security@vendor.example", "SQL injection"
    msg["Message-ID"] = "<sqli-1@research.example>"
    msg.set_content("The ticket search takes a quote and answers with a database error.\n\nEve")
    with monkeypatch.context() as patched:
        patched.setattr(route, "route", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
        held = ingest(msg.as_bytes(), received_at=came, source="pipe")
    assert held.kind == "held"

    page = logged_in_page(sol)
    page.goto("/admin/tickets/inboundmessage/?outcome__exact=held")
    visit(page, screenshot, "triage-04-security-staffs-list")
    assert "eve@research.example" in page.locator("#result_list").inner_text()
    page.locator("#result_list tbody a").first.click()
    page.get_by_role("heading", name="File as a vulnerability report").wait_for()
    visit(page, screenshot, "triage-05-held-security-mail")
    assert page.locator("#attach-form").count() == 0 and page.locator("#file-form").count() == 0
    page.get_by_role("button", name="File the report").click()
    page.get_by_text("Filed as a vulnerability report.").wait_for()
    visit(page, screenshot, "triage-06-security-mail-filed")
    report = Ticket.objects.get()
    assert (report.kind, report.filed_at, report.subject) == ("security", came, "SQL injection")
