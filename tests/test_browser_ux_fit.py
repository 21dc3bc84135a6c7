"""Pages that fit the screen, in a real browser (as tests/test_browser_fit.py: document.scrollWidth
against the viewport), with the demo's longer names: the filing forms were 419 px wide on a 390-px
phone (a contract's name stretched its select), the customer's ticket list at 1024 px cut its last
column (what to do now), and the staff dashboard and ticket page pushed a phone's page sideways.
And the staff's date and time inputs have labels (a screen reader named none of the four)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from tickets.services import ticket_assign, ticket_open

from .factories import ContractFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
PAGE_WIDTH = "() => [document.documentElement.scrollWidth, innerWidth]"


@pytest.fixture
def contract(acme, alice, bob):
    """The demo's contract, named as `make run` names it."""
    return ContractFactory(
        organisation=acme, reference="KAL-0001", name="Cloud Backup for Acme Savings", contacts=[alice, bob]
    )


@pytest.fixture
def tickets(contract, alice, sam):
    made = []
    for priority, subject in (("P2", "Restores from the Frankfurt vault stop at 40%"), ("P3", "Agent offline")):
        t = ticket_open(
            user=alice, contract=contract, service=contract.services.get(), priority=priority, subject=subject,
            description="Details.", now=timezone.now(),
        )  # fmt: skip
        ticket_assign(ticket=t, actor=sam, assignee=sam)
        made.append(t)
    return made


@pytest.mark.parametrize("path", ["/tickets/new/", "/claims/new/"])
def test_the_filing_forms_fit_a_phone(logged_in_page, screenshot, alice, contract, path):
    """The contract <select> is as wide as its box, not its longest choice."""
    page = logged_in_page(alice, viewport=PHONE)
    page.goto(path)
    screenshot(page, "phone-filing" + path.replace("/", "-"))
    assert page.evaluate(PAGE_WIDTH) == [PHONE["width"], PHONE["width"]]
    box = page.locator("#id_contract").bounding_box()
    assert box["x"] + box["width"] <= PHONE["width"]


def test_the_ticket_list_shows_what_to_do_now_at_1024_px(logged_in_page, screenshot, alice, tickets):
    """At 1024 px the whole ticket list is in view, what to do now (the level, whom to call) too."""
    page = logged_in_page(alice, viewport={"width": 1024, "height": 768})
    page.goto("/tickets/")
    screenshot(page, "tickets-1024-demo-names")
    wrap = page.locator("table.tickets").locator("xpath=..")
    assert wrap.evaluate("e => e.scrollWidth <= e.clientWidth"), wrap.evaluate("e => [e.scrollWidth, e.clientWidth]")
    last = page.locator("table.tickets thead th").last.bounding_box()
    assert last["x"] + last["width"] <= 1024


@pytest.mark.parametrize("which", ["dashboard", "ticket"])
def test_the_staff_day_fits_a_phone(logged_in_page, screenshot, sam, tickets, which):
    """A wide table (the dashboard's lists and sweeps, a ticket's audit trail) scrolls in its section."""
    page = logged_in_page(sam, viewport=PHONE)
    url = (
        reverse("admin:staff_dashboard")
        if which == "dashboard"
        else reverse("admin:tickets_ticket_change", args=[tickets[0].pk])
    )
    assert page.goto(url).status == 200
    screenshot(page, f"phone-staff-{which}")
    assert page.evaluate(PAGE_WIDTH) == [PHONE["width"], PHONE["width"]]


@pytest.mark.parametrize("changelist", ["contracts_maintenancewindow", "contracts_outage"])
def test_the_start_and_end_inputs_are_labelled(logged_in_page, screenshot, lena, changelist):
    """A moment's date and time inputs are labelled by their \"Date:\" and \"Time:\"."""
    page = logged_in_page(lena)
    assert page.goto(reverse(f"admin:{changelist}_add")).status == 200
    screenshot(page, f"staff-moment-labels-{changelist}")
    unlabelled = page.evaluate(
        """() => ['id_starts_at_0', 'id_starts_at_1', 'id_ends_at_0', 'id_ends_at_1']
             .filter(id => { const e = document.getElementById(id);
                             return e && !e.labels.length && !e.getAttribute('aria-label'); })"""
    )
    assert unlabelled == []
    assert page.locator("label[for=id_starts_at_1]").inner_text() == "Time:"
