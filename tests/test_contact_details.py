"""Contact information kept up to date: everyone's own name, phone and timezone (times shown in the
contract's zone with their own beside it where it differs), the organisation's details kept by its
admins, and the quarterly review email with its "Confirm reviewed"."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.template import Context, Template
from django.urls import reverse

from contracts.maintenance.services import window_publish
from contracts.models import Organisation
from contracts.people.review import contacts_review_request_due, quarter_of
from contracts.tasks import request_contacts_reviews
from portal.models import AuditEntry, OutboxMessage, SweepHeartbeat, User
from tickets.services import ticket_open

pytestmark = pytest.mark.django_db

NBO = ZoneInfo("Africa/Nairobi")
NOW = datetime(2026, 11, 3, 10, 0, tzinfo=NBO)


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


# --- One's own details ----------------------------------------------------------------------------
def test_bob_keeps_his_name_phone_and_timezone_current(client, bob, frozen):
    client.force_login(bob)
    page = client.get("/account/")
    assert page.status_code == 200 and b'name="timezone"' in page.content
    # The zones are offered as he types ("Berl" finds Europe/Berlin), not the legacy aliases.
    html = page.content.decode()
    assert 'list="id_timezone_zones"' in html and '<datalist id="id_timezone_zones">' in html
    assert '<option value="Europe/Berlin">' in html and '<option value="US/Eastern">' not in html
    form = {"name": "Bob B. Barasa", "phone": "+254 700 111 222", "timezone": "Europe/Berlin"}
    assert client.post("/account/profile/", form).status_code == 302
    bob.refresh_from_db()
    assert (bob.name, bob.phone, bob.timezone) == ("Bob B. Barasa", "+254 700 111 222", "Europe/Berlin")
    entry = AuditEntry.objects.get(action="user.profile_changed")
    assert entry.after == form and entry.actor == bob


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("timezone", "Mars/Olympus", "is not a known IANA timezone"),
        ("timezone", "EAT+3", "is not a known IANA timezone (e.g. Africa/Nairobi)"),
        ("timezone", "new york", "“new york” is not a known IANA timezone (did you mean America/New_York?)"),
        ("timezone", "Europe", "is not a known IANA timezone"),  # a folder of zones: IsADirectoryError, a 500
        ("timezone", "x" * 300, "characters"),  # longer than a file name: OSError, a 500
        ("phone", "call me maybe", "Use digits"),
        ("name", "  ", "This field is required."),
    ],
)
def test_bad_details_are_400_with_the_fields_message(client, bob, field, value, message):
    client.force_login(bob)
    form = {"name": "Bob", "phone": "", "timezone": "", field: value}
    response = client.post("/account/profile/", form)
    assert response.status_code == 400
    assert f'id="id_{field}_error"'.encode() in response.content and message.encode() in response.content
    assert User.objects.get(pk=bob.pk).name == "Bob Barasa"


def render_when(user, moment, tz):
    return Template("{% load portal_tags %}{% when moment tz %}").render(
        Context({"user": user, "moment": moment, "tz": tz})
    )


def test_times_show_the_contracts_zone_with_ones_own_beside_it_where_it_differs(bob):
    moment = datetime(2026, 11, 3, 23, 30, tzinfo=NBO)
    assert render_when(bob, moment, "Africa/Nairobi") == "2026-11-03 23:30 (UTC+03:00)"
    bob.timezone = "Europe/Berlin"
    assert render_when(bob, moment, "Africa/Nairobi") == (
        '2026-11-03 23:30 (UTC+03:00) <span class="own-tz">(21:30 your time, Europe/Berlin)</span>'
    )
    bob.timezone = "America/New_York"  # another day there
    early = datetime(2026, 11, 3, 2, 0, tzinfo=NBO)
    assert "(2026-11-02 18:00 your time, America/New_York)" in render_when(bob, early, "Africa/Nairobi")
    bob.timezone = "Africa/Addis_Ababa"  # the same clock: nothing beside it
    assert render_when(bob, moment, "Africa/Nairobi") == "2026-11-03 23:30 (UTC+03:00)"
    assert render_when(bob, None, "Africa/Nairobi") == "—"


def test_the_ticket_page_and_dashboard_show_bobs_own_time(client, bob, acme_contract, frozen):
    ticket = ticket_open(user=bob, contract=acme_contract, service=acme_contract.services.get(), priority="P3",
                         subject="Restore fails", description="Since last night.")  # fmt: skip
    client.force_login(bob)
    assert b"your time" not in client.get(f"/tickets/{ticket.pk}/").content
    User.objects.filter(pk=bob.pk).update(timezone="Europe/Berlin")
    page = client.get(f"/tickets/{ticket.pk}/").content.decode()
    assert '2026-11-03 10:00 (UTC+03:00) <span class="own-tz">(08:00 your time, Europe/Berlin)</span>' in page
    assert "your time, Europe/Berlin" in client.get("/").content.decode()


def test_the_maintenance_list_shows_bobs_own_time(client, bob, acme_contract, frozen):
    window_publish(
        title="Disk swap", description="", services=list(acme_contract.services.all()),
        starts_at=datetime(2026, 11, 10, 23, 0, tzinfo=NBO), ends_at=datetime(2026, 11, 11, 1, 0, tzinfo=NBO),
    )  # fmt: skip
    client.force_login(bob)
    assert b"your time" not in client.get("/maintenance/").content
    User.objects.filter(pk=bob.pk).update(timezone="Europe/Berlin")
    page = client.get("/maintenance/").content.decode()
    assert '2026-11-10 23:00 (UTC+03:00) <span class="own-tz">(21:00 your time, Europe/Berlin)</span>' in page
    assert (
        '2026-11-11 01:00 (UTC+03:00) <span class="own-tz">(2026-11-10 23:00 your time, Europe/Berlin)</span>' in page
    )


def test_an_incident_gives_its_moments_in_the_viewers_own_time(client, alice, acme_contract, lena, frozen):
    # An incident spans contracts (and organisations): its moments are the viewer's own, else UTC.
    from contracts.incidents.services import incident_open
    from contracts.models import Outage

    outage = Outage.objects.create(title="Backup API errors", starts_at=datetime(2026, 11, 3, 9, 0, tzinfo=NBO))
    outage.services.set(acme_contract.services.all())
    incident = incident_open(outage=outage, title="Backups failing", status="investigating", body="Looking.",
                             publish=True, actor=lena)  # fmt: skip
    client.force_login(alice)
    page = client.get(f"/incidents/{incident.pk}/").content.decode()
    assert "started 2026-11-03 06:00 (UTC+00:00)" in page
    assert "times of no one contract (an incident, a webhook's deliveries) in UTC." in page  # the footer says so
    User.objects.filter(pk=alice.pk).update(timezone="Europe/Berlin")
    assert "started 2026-11-03 07:00 (UTC+01:00)" in client.get(f"/incidents/{incident.pk}/").content.decode()


# --- The organisation's details ---------------------------------------------------------------------
def test_alice_keeps_the_organisations_details_and_bob_reads_them(client, alice, bob, charlie):
    client.force_login(alice)
    form = {"name": "Acme Savings Ltd", "address": "Moi Avenue 1\nNairobi", "phone": "+254 20 000 000"}
    assert client.post("/organisation/", form).status_code == 302
    org = Organisation.objects.get(pk=alice.organisation_id)
    assert (org.name, org.address, org.phone) == ("Acme Savings Ltd", "Moi Avenue 1\nNairobi", "+254 20 000 000")
    assert AuditEntry.objects.get(action="organisation.details_changed").before["name"] == "Acme Savings"
    taken = client.post("/organisation/", {**form, "name": "globex retail"})
    assert taken.status_code == 400 and b"Another organisation has this name" in taken.content
    assert client.post("/organisation/", {**form, "name": ""}).status_code == 400
    client.force_login(bob)
    page = client.get("/organisation/")
    assert (
        page.status_code == 200
        and b"Moi Avenue 1<br>Nairobi" in page.content
        and b'<form method="post" novalidate' not in page.content
    )
    assert client.post("/organisation/", {**form, "name": "Bob's Co"}).status_code == 403
    assert Organisation.objects.get(pk=alice.organisation_id).name == "Acme Savings Ltd"


# --- The quarterly review ---------------------------------------------------------------------------
def test_each_quarter_the_admins_get_one_review_email_and_confirm(client, alice, bob, charlie, acme_contract, ayo,
                                                                  django_capture_on_commit_callbacks):  # fmt: skip
    with time_machine.travel(datetime(2026, 10, 1, 0, 30, tzinfo=ZoneInfo("UTC")), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            assert request_contacts_reviews() == 2  # Alice (Acme) and Charlie (Globex); Bob is a member
        assert contacts_review_request_due() == 0  # safe to run twice
        assert SweepHeartbeat.objects.get(name="people-contacts-review").last_result == "2"
    rows = OutboxMessage.objects.filter(template="contacts_review").order_by("to")
    acme = alice.organisation
    assert [(r.to, r.key) for r in rows] == [
        ("alice@acme.example", f"contacts-review:{acme.pk}:2026Q4:user:{alice.pk}"),
        ("charlie@globex.example", f"contacts-review:{charlie.organisation_id}:2026Q4:user:{charlie.pk}"),
    ]
    [sent] = [m for m in mail.outbox if m.to == ["alice@acme.example"]]
    assert sent.subject == "Acme Savings: please review your people and contacts (2026Q4)"
    assert "- Bob Barasa <bob@acme.example>, Member" in sent.body
    assert "May open tickets: " in sent.body and "/organisation/review/" in sent.body
    # The next quarter asks again.
    with time_machine.travel(datetime(2027, 1, 1, 0, 30, tzinfo=ZoneInfo("UTC")), tick=False):
        assert contacts_review_request_due() == 2
    assert quarter_of(datetime(2026, 12, 31, 23, 59, tzinfo=ZoneInfo("UTC"))) == "2026Q4"

    with time_machine.travel(NOW, tick=False):
        client.force_login(bob)
        page = client.get("/organisation/review/")
        assert page.status_code == 200 and b"Confirm reviewed" not in page.content
        assert client.post("/organisation/review/").status_code == 403
        client.force_login(alice)
        page = client.get("/organisation/review/")
        assert b"Bob Barasa" in page.content and b"Confirm reviewed" in page.content
        assert client.post("/organisation/review/").status_code == 302
    acme.refresh_from_db()
    assert acme.contacts_reviewed_at == NOW and acme.contacts_reviewed_by == alice
    assert AuditEntry.objects.get(action="organisation.contacts_reviewed").actor == alice
    # Staff see when each organisation last reviewed.
    client.force_login(ayo)
    listing = client.get(reverse("admin:contracts_organisation_changelist")).content.decode()
    # In the staff member's own zone (Ayo has none: UTC), written as the portal writes moments.
    assert "Contacts reviewed at" in " ".join(listing.split()) and "2026-11-03 07:00 (UTC+00:00)" in listing
