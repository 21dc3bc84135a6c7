"""Times on the staff site (portal.core.staff_time): a staff member types and reads moments in their
own timezone, named on every date-time field with UTC beside the value, across a change of summer
time too; the admin writes moments and durations as the portal does, never "9 Dec 2026, 8 p.m." or
"1 day, 12:00:00"."""

import re
from datetime import UTC, date, datetime, timedelta
from html import unescape

import pytest
import time_machine
from django.urls import reverse

from contracts.models import SLA, MaintenanceWindow
from contracts.services import sla_version_draft
from portal.core.staff_time import DurationInWords

from .factories import ServiceFactory

pytestmark = pytest.mark.django_db

ADD = reverse("admin:contracts_maintenancewindow_add")
LIST = reverse("admin:contracts_maintenancewindow_changelist")
STO = "Europe/Stockholm"


def text(response) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def window(day: str, start: str, end: str, services, **extra) -> dict:
    return {
        "title": "Storage upgrade", "description": "Disks.", "services": [s.pk for s in services],
        "starts_at_0": day, "starts_at_1": start, "ends_at_0": day, "ends_at_1": end, "impact": "downtime", **extra,
    }  # fmt: skip


@pytest.fixture(autouse=True)
def frozen():
    """A week before Stockholm's clocks go forward (sessions last 12 hours: log in at the frozen time)."""
    with time_machine.travel(datetime(2027, 3, 20, 12, 0, tzinfo=UTC), tick=False):
        yield


@pytest.fixture
def stockholm_lead(client, lena):
    lena.timezone = STO
    lena.save(update_fields=["timezone"])
    client.force_login(lena)
    return client


def test_a_window_typed_in_stockholm_time_across_the_spring_change_is_stored_and_shown_right(stockholm_lead):
    backup = ServiceFactory(name="Cloud Backup", slug="cloud-backup")
    assert "Europe/Stockholm time" in text(stockholm_lead.get(ADD))  # the field names its zone
    # 01:30 is still winter time (UTC+1); at 02:00 the clocks jump to 03:00 (UTC+2).
    stockholm_lead.post(ADD, window("2027-03-28", "01:30:00", "03:30:00", [backup], _save="Save"))
    w = MaintenanceWindow.objects.get()
    assert (w.starts_at, w.ends_at) == (
        datetime(2027, 3, 28, 0, 30, tzinfo=UTC),
        datetime(2027, 3, 28, 1, 30, tzinfo=UTC),
    )
    page = text(stockholm_lead.get(reverse("admin:contracts_maintenancewindow_change", args=[w.pk])))
    listed = text(stockholm_lead.get(LIST))
    assert "Europe/Stockholm time: 2027-03-28 01:30 (UTC+01:00), 2027-03-28 00:30 UTC" in page
    assert "Europe/Stockholm time: 2027-03-28 03:30 (UTC+02:00), 2027-03-28 01:30 UTC" in page
    assert "2027-03-28 01:30 (UTC+01:00) 2027-03-28 03:30 (UTC+02:00)" in listed  # the list's starts and ends
    assert "a.m." not in listed and "p.m." not in listed


@pytest.mark.parametrize(("day", "moment"), [("2027-03-28", "02:30:00"), ("2027-10-31", "02:30:00")])
def test_a_moment_that_does_not_exist_or_happens_twice_in_stockholm_is_refused(stockholm_lead, day, moment):
    """02:30 on the spring change never happens; on the autumn change it happens twice."""
    backup = ServiceFactory(name="Cloud Backup", slug="cloud-backup")
    response = stockholm_lead.post(ADD, window(day, moment, "04:00:00", [backup], _save="Save"))
    assert response.status_code == 200 and not MaintenanceWindow.objects.exists()
    assert "couldn’t be interpreted in time zone Europe/Stockholm" in text(response)


def test_staff_without_a_timezone_work_in_utc_and_say_so(client, lena):
    client.force_login(lena)
    assert "UTC time (UTC)" in text(client.get(ADD))


def test_published_terms_show_durations_and_moments_as_the_portal_writes_them(client, ada):
    client.force_login(ada)
    version = SLA.objects.get(template_key="kaluari-cloud-backup").versions.get()
    page = text(client.get(reverse("admin:contracts_slaversion_change", args=[version.pk])))
    assert "Maintenance notice: 48 h" in page and "Maintenance annual cap: 12 h" in page
    # Its effective moment in the SLA's own time (midnight in Nairobi), UTC beside it; ada works in UTC.
    assert "Effective from: 2025-01-01 00:00 (UTC+03:00), 2024-12-31 21:00 UTC" in page
    assert "day," not in page and ":00:00" not in page  # no timedelta's repr


def test_a_draft_shows_durations_in_words_and_takes_them_so(client, ada):
    sla = SLA.objects.get(template_key="kaluari-cloud-backup")
    draft = sla_version_draft(sla=sla, effective_on=date(2027, 5, 1), actor=ada)
    client.force_login(ada)
    page = client.get(reverse("admin:contracts_slaversion_change", args=[draft.pk])).content.decode()
    assert (
        'name="maintenance_notice" value="48 h"' in page and 'name="priorities-0-first_response" value="15 min"' in page
    )
    field = DurationInWords()
    assert field.clean("1 day 12 hours") == field.clean("36 h") == field.clean("1 12:00:00") == timedelta(hours=36)


def test_the_staff_dashboard_shows_the_staff_members_own_time(stockholm_lead):
    page = text(stockholm_lead.get(reverse("admin:staff_dashboard")))
    assert "As of 2027-03-20 13:00 (UTC+01:00)" in page


def test_the_moments_on_their_own_pages_are_in_their_time(stockholm_lead, lena, ayo):
    from contracts.people.invitations import invitation_create
    from tickets.models import CannedReply

    from .factories import OrganisationFactory, UserFactory

    now = datetime(2027, 3, 20, 12, 0, tzinfo=UTC)
    CannedReply.objects.create(name="Restore steps", body="Try again.", owner=lena, created_at=now, updated_at=now)
    assert "2027-03-20 13:00 (UTC+01:00)" in text(stockholm_lead.get(reverse("admin:tickets_cannedreply_changelist")))
    org = OrganisationFactory(name="Acme", slug="acme")
    UserFactory(email="alice@acme.example", organisation=org, last_login=datetime(2027, 3, 20, 11, 0, tzinfo=UTC))
    ayo.timezone = STO  # an account manager: the people of an organisation
    ayo.save(update_fields=["timezone"])
    stockholm_lead.force_login(ayo)
    invitation_create(organisation=org, email="erin@acme.example", role="member", actor=ayo)  # for 7 days
    people = text(stockholm_lead.get(reverse("admin:contracts_organisation_people", args=[org.pk])))
    assert "alice@acme.example" in people and "2027-03-20 12:00 (UTC+01:00)" in people
    assert "erin@acme.example (Customer member), expires 2027-03-27 13:00 (UTC+01:00)" in people
