"""The layout's navigation (portal.site.context_processors): its links, and the one that says where the
user is (aria-current), from the name of the URL being served."""

import re

import pytest
from django.urls import reverse, set_script_prefix

from portal.site.context_processors import NAV, nav_section, nav_urls

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("url_name", "current"),
    [
        ("dashboard", "dashboard"),
        ("ticket-list", "ticket-list"), ("ticket-detail", "ticket-list"), ("ticket-new", "ticket-list"),
        ("maintenance-list", "maintenance-list"),
        ("claim-list", "claim-list"), ("claim-detail", "claim-list"), ("contract-uptime", "claim-list"),
        ("contract-list", "contract-list"), ("contract-detail", "contract-list"),
        ("account", "account"),
        ("status", None), ("login", None), (None, None), ("tickets", None), ("contract-", None),
    ],
)  # fmt: skip
def test_each_page_marks_its_section(url_name, current):
    assert nav_section(url_name) == current


def test_the_links_are_the_urls_reversed(settings):
    urls = nav_urls("/", settings.ROOT_URLCONF)
    assert urls["ticket_list"] == reverse("ticket-list") and urls["logout"] == reverse("logout")
    assert {k.replace("_", "-") for k in urls} == {*NAV, "logout", "status"}


def test_the_links_follow_the_script_prefix(client, alice):
    """Served under a path (the WSGI handler sets the prefix from SCRIPT_NAME; Django's test client
    does not), the links carry it, as {% url %} did."""
    client.force_login(alice)
    set_script_prefix("/portal/")
    try:
        page = client.get("/account/").content.decode()
    finally:
        set_script_prefix("/")
    assert '<a href="/portal/account/" aria-current="page">' in page and 'action="/portal/accounts/logout/"' in page


def current_links(html: str) -> list[str]:
    return re.findall(r'<a href="([^"]+)" aria-current="page">', html)


def test_a_page_shows_its_section_as_current(client, alice):
    client.force_login(alice)
    assert current_links(client.get(reverse("ticket-list")).content.decode()) == [reverse("ticket-list")]
    assert current_links(client.get(reverse("account")).content.decode()) == [reverse("account")]
    page = client.get(reverse("dashboard")).content.decode()
    assert current_links(page) == [reverse("dashboard")]
    assert f'<form method="post" action="{reverse("logout")}">' in page and f'href="{reverse("status")}"' in page


def test_the_favicon_is_linked_from_the_portal_the_status_page_and_the_admin(client):
    for url in (reverse("login"), reverse("admin:login"), reverse("status")):
        body = client.get(url).content.decode()
        assert 'rel="icon" href="/static/favicon.svg" type="image/svg+xml"' in body, url
        assert 'rel="icon" href="/static/favicon.png" type="image/png"' in body, url
