"""Proven in a real browser: a visitor subscribes to the status page by email with no account (the
form on /status/), confirms with the button on the link's page, and unsubscribes from the manage
page. Screenshots in var/screenshots/ (status-subscribe-form.png, status-subscribe-sent.png,
status-subscription-confirm.png, status-subscription-confirmed.png, status-subscription-manage.png,
status-subscription-unsubscribed.png); axe-core and the CSP pass."""

import pytest
from django.conf import settings

from contracts.models import StatusSubscriber
from contracts.subscribers.services import confirm_url

from .factories import ServiceFactory
from .test_browser import assert_accessible

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def path_of(url: str) -> str:
    return url.removeprefix(settings.PORTAL_BASE_URL)


def test_a_visitor_subscribes_confirms_and_unsubscribes(logged_in_page, screenshot):
    ServiceFactory(name="Cloud Backup", slug="cloud-backup")
    ServiceFactory(name="AI Assistant", slug="ai-assistant")
    page = logged_in_page(None)
    page.goto("/status/")
    form = page.locator("section.subscribe")
    form.get_by_label("Your email").fill("eve@example.org")
    form.get_by_label("Cloud Backup").check()
    form.scroll_into_view_if_needed()
    screenshot(page, "status-subscribe-form")
    assert_accessible(page, "status-subscribe-form")
    form.get_by_role("button", name="Subscribe").click()
    page.wait_for_url("**/status/subscribe/sent/")
    screenshot(page, "status-subscribe-sent")
    assert "Check your inbox" in page.locator("h1").inner_text()

    sub = StatusSubscriber.objects.get()
    assert [s.name for s in sub.services.all()] == ["Cloud Backup"] and sub.confirmed_at is None
    page.goto(path_of(confirm_url(sub)))  # the link of the email (a mail scanner's GET changes nothing)
    screenshot(page, "status-subscription-confirm")
    assert_accessible(page, "status-subscription-confirm")
    assert "Cloud Backup" in page.locator("main").inner_text()
    sub.refresh_from_db()
    assert sub.confirmed_at is None
    page.get_by_role("button", name="Confirm my subscription").click()
    page.get_by_role("status").wait_for()
    screenshot(page, "status-subscription-confirmed")
    assert "now gets status updates for Cloud Backup" in page.get_by_role("status").inner_text()
    sub.refresh_from_db()
    assert sub.active

    page.get_by_role("link", name="Choose your services or unsubscribe").click()
    page.wait_for_load_state("load")
    assert page.get_by_label("Cloud Backup").is_checked() and not page.get_by_label("AI Assistant").is_checked()
    assert "(incidents and scheduled maintenance) for Cloud Backup." in page.locator("main").inner_text()
    screenshot(page, "status-subscription-manage")
    assert_accessible(page, "status-subscription-manage")
    page.get_by_role("button", name="Stop all status updates").click()
    page.get_by_role("status").wait_for()
    screenshot(page, "status-subscription-unsubscribed")
    assert_accessible(page, "status-subscription-unsubscribed")
    assert "we no longer send status updates to eve@example.org" in page.get_by_role("status").inner_text()
    sub.refresh_from_db()
    assert not sub.active
    assert "/status/subscriptions/" in page.url
