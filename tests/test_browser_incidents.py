"""Incidents in a real browser (Playwright driving Debian's Chromium against the live server):
Alice sees the dashboard's banner of an open incident on her contract, follows it to the incident
page (its timeline, her service, her uptime so far, her linked ticket) and the link to her uptime;
Sam, a support agent, reads the incident in the admin (its timeline, its linked tickets) and links
a ticket from the queue. axe-core finds no serious or critical violation on the customer's pages;
each step leaves a screenshot in var/screenshots/. The live server runs on the real clock."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from contracts.incidents.services import incident_open, incident_post_update
from contracts.models import Outage
from tickets.models import Ticket
from tickets.services import ticket_open

from .factories import ContractFactory
from .test_browser import assert_accessible, month_start, today

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def incident_world(acme, alice, bob, lena):
    now = timezone.now()
    contract = ContractFactory(
        organisation=acme, reference="KAL-0001", name="Cloud Backup for Acme", contacts=[alice, bob],
        starts_on=month_start(today(), 3),
    )  # fmt: skip
    outage = Outage.objects.create(title="Backup API errors", starts_at=now - timedelta(minutes=40))
    outage.services.set(contract.services.all())
    incident = incident_open(
        outage=outage, title="Backups failing on the Nairobi cluster", status="investigating",
        body="Scheduled backups fail with a storage error. We are investigating.", actor=lena,
        now=now - timedelta(minutes=35),
    )  # fmt: skip
    incident_post_update(
        incident=incident, status="identified", actor=lena, now=now - timedelta(minutes=10),
        body="A storage node is full. We are moving data to a new node; backups will resume as it fills.",
    )  # fmt: skip
    ticket = ticket_open(
        user=alice, contract=contract, service=contract.services.get(), priority="P2",
        subject="Last night's backup failed", description="Job 12 failed at 02:00.", now=now - timedelta(minutes=30),
    )  # fmt: skip
    Ticket.objects.filter(pk=ticket.pk).update(incident=incident)
    other = ticket_open(
        user=bob, contract=contract, service=contract.services.get(), priority="P3",
        subject="Backup report shows errors", description="Red rows since this morning.", now=now - timedelta(minutes=5),
    )  # fmt: skip
    return contract, incident, ticket, other


def test_alice_sees_the_banner_and_follows_it_to_the_incident(logged_in_page, screenshot, alice, incident_world):
    contract, incident, ticket, _ = incident_world
    page = logged_in_page(alice)
    page.wait_for_load_state("load")
    banner = page.locator("section.incident-banner")
    assert banner.count() == 1
    assert "Incident: Backups failing on the Nairobi cluster" in banner.inner_text()
    assert "Identified" in banner.inner_text() and "Cloud Backup" in banner.inner_text()
    screenshot(page, "incident-banner")
    assert_accessible(page, "dashboard with an incident")

    banner.get_by_role("link", name="Follow the incident").click()
    page.wait_for_url(re.compile(rf"/incidents/{incident.pk}/$"))
    assert page.get_by_role("heading", level=1).inner_text() == "Backups failing on the Nairobi cluster"
    updates = page.locator("ol.timeline > li")
    assert updates.count() == 2 and "A storage node is full" in updates.first.inner_text()  # newest first
    assert page.get_by_role("link", name=re.compile("Last night's backup failed")).count() == 1
    screenshot(page, "incident-page")
    assert_accessible(page, "incident page")

    page.get_by_role("link", name=re.compile("your uptime so far this month")).click()
    page.wait_for_url(re.compile(rf"/contracts/{contract.pk}/uptime/"))


def test_sam_reads_the_incident_in_the_admin_and_links_a_ticket_from_the_queue(
    logged_in_page, screenshot, sam, incident_world
):
    _, incident, ticket, other = incident_world
    page = logged_in_page(sam)
    page.wait_for_url(re.compile(r"/admin/$"))
    page.goto("/admin/contracts/incident/")
    assert page.get_by_role("link", name="Backups failing on the Nairobi cluster").count() == 1
    screenshot(page, "incident-admin-list")
    page.get_by_role("link", name="Backups failing on the Nairobi cluster").click()
    page.wait_for_url(re.compile(rf"/admin/contracts/incident/{incident.pk}/change/"))
    body = page.locator("#content").inner_text()
    assert "A storage node is full" in body and "Last night's backup failed" in body
    screenshot(page, "incident-admin-page")

    page.goto("/admin/tickets/ticket/")
    page.locator(f'input[name="_selected_action"][value="{other.pk}"]').check()
    page.locator('select[name="action"]').select_option("link_to_incident")
    page.get_by_role("button", name="Go").click()
    page.wait_for_url(re.compile(r"/admin/tickets/ticket/$"))
    assert other.subject in page.locator("#content").inner_text()  # the selected ticket, before linking
    page.locator('select[name="incident"]').select_option(str(incident.pk))
    screenshot(page, "incident-queue-link-ask")
    page.get_by_role("button", name="Link to the incident").click()
    page.wait_for_load_state("load")
    assert "1 ticket(s) linked" in page.locator("ul.messagelist").inner_text()
    screenshot(page, "incident-queue-linked")
    assert Ticket.objects.get(pk=other.pk).incident_id == incident.pk
