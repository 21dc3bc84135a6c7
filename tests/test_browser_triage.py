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
