"""Proven in a real browser: Sam, a support agent, files a ticket for Alice who called, then logs his
call back to her on the ticket's page as its first response; Alice sees the ticket, its channel and
the call in the portal. Each step leaves a screenshot in var/screenshots/ and passes axe-core. The
live server runs on the real clock, so times are relative to timezone.now()."""

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from portal.domain.formats import in_tz
from tickets.models import Ticket, TicketCall

from .test_browser import assert_accessible

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NBO = ZoneInfo("Africa/Nairobi")


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def visit(page, screenshot, name: str) -> None:
    page.wait_for_load_state("load")
    screenshot(page, name)
    assert_accessible(page, name)


def wall(moment) -> str:
    return moment.astimezone(NBO).strftime("%Y-%m-%dT%H:%M")


def test_staff_file_a_ticket_for_a_caller_and_log_the_call_back(logged_in_page, screenshot, acme_contract, alice, sam):
    now = timezone.now().replace(second=0, microsecond=0)
    page = logged_in_page(sam)
    page.goto("/admin/tickets/ticket/")
    page.get_by_role("link", name="File a ticket for a caller").click()
    visit(page, screenshot, "phone-01-file-for-caller")
    page.locator("#id_channel").select_option("phone")
    page.locator("#id_customer").select_option(str(alice.pk))
    page.locator("#id_contract").select_option(str(acme_contract.pk))
    page.locator("#id_service").select_option(str(acme_contract.services.get().pk))
    page.locator("#id_priority").select_option("P2")
    page.locator("#id_subject").fill("Backup agent stuck on the Mombasa server")
    page.locator("#id_description").fill("Alice called: the agent has shown 'preparing' for an hour.")
    page.get_by_label("The customer reached us at").fill(wall(now - timedelta(minutes=20)))
    page.get_by_role("button", name="File the ticket").click()
    page.wait_for_url(re.compile(r"/admin/tickets/ticket/\d+/change/$"))
    ticket = Ticket.objects.get()
    assert (ticket.channel, ticket.created_by, ticket.filed_at) == ("phone", alice, now - timedelta(minutes=20))

    # Sam called Alice back ten minutes after she called: that is the first response. The form is
    # folded under the conversation until he opens it.
    form = page.locator("#call-form")
    assert not form.is_visible()
    page.locator("#call-details summary").click()
    form.get_by_label("Direction").select_option("outbound")
    form.get_by_label("With").select_option(str(alice.pk))
    form.get_by_label("Started").fill(wall(now - timedelta(minutes=10)))
    form.get_by_label("Duration (minutes)").fill("6")
    form.get_by_label("Notes").fill("Restarted the agent with Alice; the job is running again.")
    form.get_by_label("This call answered the customer").check()
    form.scroll_into_view_if_needed()
    form.screenshot(path=screenshot(page, "phone-02-ticket-page").with_name("phone-02-log-a-call-form.png"))
    form.get_by_role("button", name="Log the call").click()
    page.wait_for_url(re.compile(r"#conversation$"))
    assert "It counts as the first response" in page.locator(".messagelist").inner_text()
    visit(page, screenshot, "phone-03-ticket-with-call")
    ticket.refresh_from_db()
    assert ticket.first_response_at == now - timedelta(minutes=10) and TicketCall.objects.get().answered

    customer = logged_in_page(alice)
    customer.goto(f"/tickets/{ticket.pk}/")
    visit(customer, screenshot, "phone-04-customer-ticket")
    body = " ".join(customer.locator("main").inner_text().split())
    assert "Phone (filed by our support team from your call)" in body
    assert f"Answered at {in_tz(now - timedelta(minutes=10), 'Africa/Nairobi')}" in body
    assert "Sam Support called Alice Achieng" in body and "This call was our first response." in body
