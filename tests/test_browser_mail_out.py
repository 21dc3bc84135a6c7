"""Email out in a real browser, staff side: Sam answers Alice's ticket and sets it to waiting on
customer in one go (one email goes), then reads the addresses our email bounced from and the
outbox's bounced emails. Screenshots in var/screenshots/, axe-core on each page."""

import email
import email.policy
import re
from pathlib import Path

import pytest
from django.utils import timezone

from portal.core.bounces import bounce_receive, verp_address
from portal.models import OutboxMessage
from tickets.models import Ticket
from tickets.services import ticket_open

from .test_browser import assert_accessible
from .test_browser_staff import text

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SAMPLES = Path(__file__).parent / "bounces"


def visit(page, screenshot, name: str) -> None:
    page.wait_for_load_state("load")
    screenshot(page, name)
    assert_accessible(page, name)


def test_sam_replies_and_sets_waiting_then_reads_the_bounces(logged_in_page, screenshot, acme_contract, alice, sam):
    ticket = ticket_open(
        user=alice, contract=acme_contract, service=acme_contract.services.get(), priority="P3",
        subject="Restore fails", description="Error 17 on every restore.",
    )  # fmt: skip
    page = logged_in_page(sam)
    page.wait_for_url(re.compile(r"/admin/$"))
    page.goto(f"/admin/tickets/ticket/{ticket.pk}/change/")
    form = page.locator("#reply-form")
    form.get_by_label("Body").fill("Which backup set fails? Please send us the agent's log.")
    form.get_by_label("And set the status to").select_option("waiting")
    visit(page, screenshot, "50-staff-reply-and-set-waiting")
    form.get_by_role("button", name="Send").click()
    page.wait_for_load_state("load")
    assert "Reply sent to the customer. Status: waiting on customer." in text(page.locator(".messagelist"))
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.WAITING
    to_alice = OutboxMessage.objects.filter(to=alice.email).exclude(key__contains=":filed")
    assert [m.template for m in to_alice] == ["ticket_reply"]  # one email, not a reply and a status email

    # Alice's mailbox refuses it: the DSN comes back to the reply's return path.
    row = to_alice.get()
    raw = (SAMPLES / "postfix_dsn.eml").read_text().replace("{verp}", verp_address(row.pk)).replace("{to}", row.to)
    dsn = email.message_from_string(raw.replace("{message_id}", row.message_id), policy=email.policy.default)
    bounce_receive(message=dsn, now=timezone.now())
    page.goto("/admin/portal/bouncedaddress/")
    visit(page, screenshot, "51-staff-bounced-addresses")
    listed = text(page.locator("#result_list"))
    assert alice.email in listed and "5.1.1" in listed and "User unknown" in listed
    page.goto("/admin/portal/outboxmessage/?bounced=yes")
    visit(page, screenshot, "52-staff-outbox-bounced")
    assert row.key in text(page.locator("#result_list"))
