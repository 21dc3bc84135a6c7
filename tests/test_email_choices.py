"""The preferences page (account section) and the unsubscribe link of every optional email (RFC
8058): a GET only shows a page, a POST of its button or a mail client's one-click POST changes
exactly the preference the signed token names; a forged or expired token is a clear 400."""

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import signing
from django.test import Client
from django.urls import reverse

from portal.core.notify_rules import Choice
from portal.core.unsubscribe import token_for, unsubscribe_url
from portal.models import NotificationPreference

pytestmark = pytest.mark.django_db
NBO = ZoneInfo("Africa/Nairobi")
SENT = datetime(2026, 12, 11, 16, 0, tzinfo=NBO)
PAGE = reverse("notification-preferences")


def link(user, choice=Choice.MAINTENANCE):
    with time_machine.travel(SENT, tick=False):
        return reverse("unsubscribe", args=[token_for(user, choice)])


def ticked(page: str, name: str) -> bool:
    box = re.search(rf'<input type="checkbox" name="{name}"[^>]*>', page)
    assert box, f"no box {name}"
    return " checked" in box[0]


def chosen(user) -> dict[str, bool]:
    return dict(NotificationPreference.objects.filter(user=user).values_list("kind", "enabled"))


# --- The link -----------------------------------------------------------------------------------------
def test_a_get_shows_a_confirmation_and_changes_nothing(client, bob):
    with time_machine.travel(SENT + timedelta(days=2), tick=False):
        response = client.get(link(bob))
    assert response.status_code == 200
    assert (
        b"Stop sending <strong>bob@acme.example</strong> emails about <strong>maintenance</strong>?" in response.content
    )
    assert b"Stop these emails</button>" in response.content
    assert "no-store" in response["Cache-Control"]
    assert chosen(bob) == {}


def test_the_pages_button_turns_off_that_kind_only_without_a_session_and_can_be_undone(bob):
    browser = Client(enforce_csrf_checks=True)
    on_page = link(bob)
    with time_machine.travel(SENT + timedelta(days=2), tick=False):
        response = browser.post(on_page, {"action": "unsubscribe"})
    assert response.status_code == 200
    assert b"we no longer send <strong>bob@acme.example</strong> emails about maintenance" in response.content
    pref = NotificationPreference.objects.get(user=bob)
    assert (pref.kind, pref.enabled, pref.via, pref.updated_at) == (
        "maintenance",
        False,
        "link",
        SENT + timedelta(days=2),
    )
    browser.post(on_page, {"action": "subscribe"})
    assert chosen(bob) == {"maintenance": True}


def test_a_one_click_post_acts_without_session_or_csrf(bob, alice):
    mail_client = Client(enforce_csrf_checks=True)
    response = mail_client.post(
        link(bob, Choice.CREDIT), "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    assert chosen(bob) == {"credit": False} and chosen(alice) == {}
    assert NotificationPreference.objects.get(user=bob).via == "one_click"


def test_the_url_is_https_on_the_portals_address(settings, bob):
    settings.PORTAL_BASE_URL = "https://portal.example"
    url = unsubscribe_url(bob, Choice.INCIDENT)
    assert url.startswith("https://portal.example/email/unsubscribe/")


@pytest.mark.parametrize(
    "token",
    [
        "nonsense",
        signing.dumps({"u": 1, "c": "maintenance"}, salt="another.salt"),
        signing.dumps(
            {"u": 1, "c": "maintenance"}, salt="portal.unsubscribe", key="not-our-secret-key-at-all-0123456789"
        ),
    ],
    ids=["nonsense", "another-salt", "another-key"],  # the tokens carry the time: not an id both workers collect
)
def test_a_forged_token_is_a_clear_400_for_get_and_post(client, bob, token):
    for response in (client.get(f"/email/unsubscribe/{token}/"), client.post(f"/email/unsubscribe/{token}/")):
        assert response.status_code == 400
        assert b"This link is not valid" in response.content and b"Nothing was changed." in response.content
    assert not NotificationPreference.objects.exists()


def test_a_token_naming_another_kind_or_no_one_is_refused(client, bob):
    for data in ({"u": bob.pk, "c": "password_reset"}, {"u": 10**9, "c": "maintenance"}, ["not", "a", "dict"]):
        response = client.post(f"/email/unsubscribe/{signing.dumps(data, salt='portal.unsubscribe')}/")
        assert response.status_code == 400 and b"no longer names an account" in response.content
    assert not NotificationPreference.objects.exists()


def test_an_expired_token_is_a_clear_400(client, bob):
    url = link(bob)
    with time_machine.travel(SENT + timedelta(days=179), tick=False):
        assert client.get(url).status_code == 200
    with time_machine.travel(SENT + timedelta(days=181), tick=False):
        response = client.post(url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and b"This link has expired" in response.content
    assert not NotificationPreference.objects.exists()


# --- The page -----------------------------------------------------------------------------------------
def test_the_page_says_what_cannot_be_turned_off(client, acme_contract, alice):
    client.force_login(alice)
    response = client.get(PAGE)
    assert response.status_code == 200
    body = response.content.decode()
    assert "You are a designated contact of KAL-0001: a designated contact of a contract always gets" in body
    assert "The receipt of a ticket you file yourself always comes." in body
    assert "A breach of a P1 ticket you filed yourself always comes." in body
    assert "Password resets and invitations." in body
    assert 'name="contact_review"' in body  # a customer admin's


def test_saving_records_only_what_changed(client, acme_contract, bob):
    client.force_login(bob)
    page = client.get(PAGE).content.decode()
    assert ticked(page, "ticket_mine") and not ticked(page, "ticket_org") and ticked(page, "maintenance")
    assert 'name="contact_review"' not in page  # a member gets no contact reviews
    # As the browser sends it: the boxes left ticked, maintenance and credits unticked.
    left_on = ["ticket_mine", "breach", "incident", "sla_change"]
    response = client.post(PAGE, dict.fromkeys(left_on, "on"))
    assert response.status_code == 302 and response["Location"] == PAGE
    assert chosen(bob) == {"maintenance": False, "credit": False}
    assert set(NotificationPreference.objects.values_list("via", flat=True)) == {"page"}
    page = client.get(PAGE).content.decode()
    assert not ticked(page, "maintenance") and ticked(page, "incident") and "Your email choices are saved." in page


def test_the_page_needs_a_login_and_staff_choose_nothing_there(client, sam):
    assert client.get(PAGE)["Location"].startswith("/accounts/login/")
    client.force_login(sam)
    response = client.get(PAGE)
    assert b"follow your staff role" in response.content
    assert client.post(PAGE, {"maintenance": "on"}).status_code == 200
    assert not NotificationPreference.objects.exists()
