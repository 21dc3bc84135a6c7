"""In a browser: a staff list asked for with a filter it does not offer, or a value its filter
refuses, is a 400 page that says which and why, with the way back to the list (the staff site's
lists, portal.core.admin_lookups)."""

import pytest

from .test_browser import assert_accessible

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_refused_filter_says_why_and_leads_back_to_the_list(logged_in_page, screenshot, lena, acme_contract):
    page = logged_in_page(lena)
    response = page.goto("/admin/tickets/ticket/?assignee__id__exact=%C2%B2")
    assert response.status == 400
    assert page.get_by_role("alert").inner_text() == (
        "This list cannot be shown with these filters: “²” is none of the staff members it offers."
    )
    screenshot(page, "refused-filter-queue")
    assert_accessible(page, "refused-filter-queue")
    response = page.goto("/admin/contracts/outage/?starts_at__year=9999")
    assert response.status == 400
    assert "9999 is no date this list can be filtered by" in page.get_by_role("alert").inner_text()
    page.get_by_role("link", name="Show all outages").click()
    page.wait_for_url("**/admin/contracts/outage/")
    assert page.get_by_role("heading", name="Outages").is_visible()
