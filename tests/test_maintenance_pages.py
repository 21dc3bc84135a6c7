"""The customer's maintenance page and the organisation's iCal feed: only the organisation's
windows, times in the contract's timezone, and a secret feed URL that only a customer admin can
create, replace or turn off. A member who tries gets 403 (the page is theirs, the role is not)."""

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse
from icalendar import Calendar

from contracts.maintenance.services import window_cancel, window_publish
from contracts.maintenance.sweep import maintenance_notices_send_due
from contracts.models import SLA, Organisation

from .factories import ContractFactory, ServiceFactory

pytestmark = pytest.mark.django_db

NBO = ZoneInfo("Africa/Nairobi")
NOW = datetime(2026, 10, 5, 12, 0, tzinfo=NBO)
H = timedelta(hours=1)
DAY = timedelta(days=1)
LIST = reverse("maintenance-list")
ROTATE = reverse("maintenance-ical-rotate")
REVOKE = reverse("maintenance-ical-revoke")


@pytest.fixture
def backup(db):
    return ServiceFactory(name="Cloud Backup", slug="cloud-backup")


@pytest.fixture
def assistant(db):
    return ServiceFactory(name="AI Assistant", slug="ai-assistant")


@pytest.fixture
def globex_ai(globex, charlie, assistant):
    klart = SLA.objects.get(template_key="klart-ai")
    return ContractFactory(
        organisation=globex, reference="KLA-0001", sla=klart, currency="SEK", services=[assistant], contacts=[charlie]
    )


def publish(title, services, start, hours=2, published=None):
    with time_machine.travel(published or start - 10 * DAY, tick=False):
        return window_publish(
            title=title, description=f"{title}: details for customers.", services=services,
            starts_at=start, ends_at=start + hours * H,
        )  # fmt: skip


@pytest.fixture
def windows(acme_contract, globex_ai, backup, assistant):
    """Acme is on Cloud Backup, Globex on the AI Assistant."""
    acme_only = publish("Backup storage upgrade", [backup], datetime(2026, 10, 11, 23, 0, tzinfo=NBO))
    maintenance_notices_send_due(now=acme_only.starts_at - 48 * H)  # announced in time: keeps the rules
    return {
        "acme_only": acme_only,
        "daytime": publish("Daytime patch", [backup], datetime(2026, 10, 20, 14, 0, tzinfo=NBO)),
        "globex_only": publish("Model rollout", [assistant], datetime(2026, 10, 12, 22, 0, tzinfo=NBO)),
        "both": publish("Network change", [backup, assistant], datetime(2026, 10, 14, 23, 0, tzinfo=NBO)),
        "past": publish("Old upgrade", [backup], datetime(2026, 8, 1, 23, 0, tzinfo=NBO)),
        "too_old": publish("Ancient upgrade", [backup], datetime(2026, 6, 1, 23, 0, tzinfo=NBO)),
    }


def page(client, user):
    client.force_login(user)
    with time_machine.travel(NOW, tick=False):
        response = client.get(LIST)
    assert response.status_code == 200
    return response


def section(response, heading_id) -> str:
    html = response.content.decode()
    found = re.search(rf'<section aria-labelledby="{heading_id}">(.*?)</section>', html, re.S)
    assert found, heading_id
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", found.group(1))).split())


def rotate(client, user):
    client.force_login(user)
    response = client.post(ROTATE)
    user.organisation.refresh_from_db()
    return response


def feed(client, token):
    client.logout()  # the feed needs no login: its URL is the secret
    with time_machine.travel(NOW, tick=False):
        return client.get(reverse("maintenance-ical", args=[token]))


# --- The page -----------------------------------------------------------------------------------
def test_anonymous_is_sent_to_login(client):
    response = client.get(LIST)
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_staff_are_sent_to_the_admin(client, sam):
    client.force_login(sam)
    assert client.get(LIST).url == reverse("admin:index")


def test_alice_sees_her_organisations_windows_in_nairobi_time(client, alice, windows):
    response = page(client, alice)
    upcoming, past = section(response, "upcoming-h"), section(response, "past-h")
    assert "Backup storage upgrade" in upcoming and "Network change" in upcoming and "Daytime patch" in upcoming
    assert "2026-10-11 23:00 (UTC+03:00) – 2026-10-12 01:00 (UTC+03:00)" in upcoming
    assert "Model rollout" not in response.content.decode()  # Globex's service only
    assert upcoming.index("Backup storage upgrade") < upcoming.index("Network change") < upcoming.index("Daytime patch")
    assert "Old upgrade" in past and "Ancient upgrade" not in response.content.decode()  # older than 90 days
    # Whether each keeps the contract's rules: announced in time and off-peak / in daytime.
    assert "KAL-0001: Keeps every rule: nothing counted as downtime" in upcoming
    assert "KAL-0001: 120 minutes counted as downtime (outside off-peak hours)" in upcoming
    # Only Acme's own services are named, even on a window that touches Globex's too.
    row = upcoming[upcoming.index("Network change") :]
    assert "Cloud Backup" in row and "AI Assistant" not in row


def test_charlie_never_sees_a_window_only_on_acmes_service(client, charlie, windows):
    html = page(client, charlie).content.decode()
    assert "Backup storage upgrade" not in html and "Daytime patch" not in html and "Old upgrade" not in html
    assert "Model rollout" in html and "Network change" in html
    assert "2026-10-12 21:00 (UTC+02:00)" in html  # Klart: Stockholm time (22:00 in Nairobi)


def test_a_cancelled_window_is_shown_as_cancelled(client, alice, windows):
    with time_machine.travel(NOW, tick=False):
        window_cancel(window=windows["acme_only"])
    upcoming = section(page(client, alice), "upcoming-h")
    row = upcoming[upcoming.index("Backup storage upgrade") : upcoming.index("Network change")]
    assert "Cancelled" in row and "Nothing counted as downtime (cancelled)" in row


def test_the_page_is_a_fixed_number_of_queries(client, alice, windows, backup, django_assert_max_num_queries):
    client.force_login(alice)
    for day in range(20):
        publish(f"Extra {day}", [backup], datetime(2026, 11, 1, 23, 0, tzinfo=NBO) + day * DAY)
    with time_machine.travel(NOW, tick=False), django_assert_max_num_queries(12):
        assert client.get(LIST).status_code == 200


# --- The feed -----------------------------------------------------------------------------------
def test_no_feed_until_an_admin_creates_one(client, alice, bob, windows):
    assert alice.organisation.ical_token == ""
    assert "Create a calendar feed URL" in section(page(client, alice), "feed-h")
    member_view = section(page(client, bob), "feed-h")
    assert "no calendar feed" in member_view and "customer admin" in member_view
    assert "Create" not in member_view


def test_the_feed_holds_only_the_organisations_windows_and_parses_back(client, alice, bob, windows):
    with time_machine.travel(NOW, tick=False):
        window_cancel(window=windows["both"])
    assert rotate(client, alice).status_code == 302
    token = alice.organisation.ical_token
    assert len(token) >= 43  # secrets.token_urlsafe(32)
    url = f"http://127.0.0.1:8000/maintenance/ical/{token}.ics"
    assert f'value="{url}"' in page(client, alice).content.decode()
    assert f'value="{url}"' in page(client, bob).content.decode()  # a member sees it too

    response = feed(client, token)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    cal = Calendar.from_ical(response.content)
    events = {str(e["SUMMARY"]): e for e in cal.walk("VEVENT")}
    assert set(events) == {
        "Maintenance: Backup storage upgrade", "Maintenance: Daytime patch", "Cancelled: Maintenance: Network change",
        "Maintenance: Old upgrade",
    }  # fmt: skip
    upgrade = events["Maintenance: Backup storage upgrade"]
    assert str(upgrade["UID"]) == f"maintenance-{windows['acme_only'].pk}@sla-portal.local"
    assert upgrade["SEQUENCE"] == 1 and str(upgrade["STATUS"]) == "CONFIRMED"
    assert upgrade.decoded("DTSTART") == datetime(2026, 10, 11, 20, 0, tzinfo=UTC)
    assert upgrade.decoded("DTEND") == datetime(2026, 10, 11, 22, 0, tzinfo=UTC)
    assert b"DTSTART:20261011T200000Z" in response.content  # UTC, written as such
    assert "Backup storage upgrade: details for customers." in str(upgrade["DESCRIPTION"])
    assert str(events["Cancelled: Maintenance: Network change"]["STATUS"]) == "CANCELLED"
    assert "AI Assistant" not in str(events["Cancelled: Maintenance: Network change"]["DESCRIPTION"])


def test_a_change_raises_the_sequence_and_keeps_the_uid(client, alice, windows):
    from contracts.maintenance.services import window_update

    w = windows["acme_only"]
    rotate(client, alice)
    with time_machine.travel(NOW, tick=False):
        window_update(
            window=w, title=w.title, description=w.description, services=list(w.services.all()),
            starts_at=w.starts_at + DAY, ends_at=w.ends_at + DAY, impact=w.impact,
        )  # fmt: skip
    cal = Calendar.from_ical(feed(client, alice.organisation.ical_token).content)
    [event] = [e for e in cal.walk("VEVENT") if str(e["UID"]) == f"maintenance-{w.pk}@sla-portal.local"]
    assert event["SEQUENCE"] == 2 and event.decoded("DTSTART") == datetime(2026, 10, 12, 20, 0, tzinfo=UTC)


def test_charlies_feed_holds_only_globexs_windows(client, charlie, windows):
    rotate(client, charlie)
    cal = Calendar.from_ical(feed(client, charlie.organisation.ical_token).content)
    assert {str(e["SUMMARY"]) for e in cal.walk("VEVENT")} == {
        "Maintenance: Model rollout",
        "Maintenance: Network change",
    }


def test_rotating_the_token_makes_the_old_url_404(client, alice, windows):
    rotate(client, alice)
    old = alice.organisation.ical_token
    client.force_login(alice)
    response = client.post(ROTATE, follow=True)
    assert "the old one no longer works" in response.content.decode()
    new = Organisation.objects.get(pk=alice.organisation_id).ical_token
    assert new != old
    assert feed(client, old).status_code == 404
    assert feed(client, new).status_code == 200


def test_turning_the_feed_off_makes_its_url_404(client, alice, windows):
    rotate(client, alice)
    token = alice.organisation.ical_token
    client.force_login(alice)
    client.post(REVOKE)
    assert Organisation.objects.get(pk=alice.organisation_id).ical_token == ""
    assert feed(client, token).status_code == 404


@pytest.mark.parametrize("token", ["x" * 43, "short", "a" * 64])
def test_an_unknown_token_is_404(client, acme, token):
    assert feed(client, token).status_code == 404


def test_an_empty_token_never_opens_a_feed(client, acme, globex):
    # Organisations without a feed have an empty token: no URL reaches them.
    assert client.get("/maintenance/ical/.ics").status_code == 404


def test_a_member_cannot_rotate_or_turn_off_the_feed(client, alice, bob, windows):
    rotate(client, alice)
    token = alice.organisation.ical_token
    client.force_login(bob)
    assert client.post(ROTATE).status_code == 403
    assert client.post(REVOKE).status_code == 403
    assert Organisation.objects.get(pk=alice.organisation_id).ical_token == token
    assert "Replace the URL" not in page(client, bob).content.decode()


@pytest.mark.parametrize("url", [ROTATE, REVOKE])
def test_it_rejects_get(client, alice, url):
    client.force_login(alice)
    assert client.get(url).status_code == 405


def test_staff_cannot_rotate_a_feed(client, sam):
    client.force_login(sam)
    assert client.post(ROTATE).status_code == 403


def test_a_window_under_way_is_upcoming_and_in_progress(client, alice, acme_contract, backup):
    publish("Running now", [backup], NOW - H)
    upcoming = section(page(client, alice), "upcoming-h")
    assert "Running now" in upcoming and "In progress" in upcoming


def test_line_breaks_and_controls_in_names_leave_a_valid_feed(client, alice, windows, backup):
    """An organisation's name with a CR/LF broke the feed: icalendar refuses an unescaped line break
    in X-WR-CALNAME (a 500), and a lone CR or another control character went out raw. Names are
    one line (their breaks folded into a space); a description keeps its lines, escaped."""
    Organisation.objects.filter(pk=alice.organisation_id).update(
        name="Acme\r\nSavings\rLtd\x0b\x1f"
    )  # no NUL: PostgreSQL text refuses it
    backup.name = "Cloud\nBackup\u2028EU"
    backup.save()
    w = windows["acme_only"]
    type(w).objects.filter(pk=w.pk).update(
        title="Storage\r\nupgrade\x85now", description="Line one\r\nLine two\rthree\x07"
    )
    rotate(client, alice)
    response = feed(client, alice.organisation.ical_token)
    assert response.status_code == 200
    raw = response.content
    lines = raw.split(b"\r\n")
    assert lines[-1] == b""  # every line ends in CRLF ...
    for line in lines[:-1]:  # ... and holds no other line break or control character (RFC 5545 3.1, 3.3.11)
        text = line.decode()
        assert not any(ord(c) < 32 and c != "\t" or ord(c) == 127 or c in "\x85\u2028\u2029" for c in text), line
    cal = Calendar.from_ical(raw)
    assert str(cal["X-WR-CALNAME"]) == "Acme Savings Ltd: maintenance"
    [event] = [e for e in cal.walk("VEVENT") if str(e["UID"]).startswith(f"maintenance-{w.pk}@")]
    assert str(event["SUMMARY"]) == "Maintenance: Storage upgrade now"
    description = str(event["DESCRIPTION"])
    assert description.startswith("Services: Cloud Backup EU\n")
    assert "Line one\nLine two\nthree\n" in description
