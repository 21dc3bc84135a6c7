"""Outages in the admin (the cause audited through outage_set_cause, timeline updates, filters) and
the Service admin's webhook token rotation."""

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.admin.models import LogEntry
from django.contrib.messages import SUCCESS
from django.urls import reverse

from contracts.choices import Cause
from contracts.models import Outage, OutageCauseChange, Service
from contracts.outages.alerts import service_for_webhook_token
from contracts.outages.services import OutageError, outage_set_cause

from .factories import ServiceFactory
from .test_admin import form_data, messages_of

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def staff_client(client, ayo):
    client.force_login(ayo)  # an account manager: records outages and sets their cause
    return client


@pytest.fixture
def security_client(client, sol):
    client.force_login(sol)  # security staff rotate a service's webhook token
    return client


@pytest.fixture
def backup():
    return ServiceFactory(name="Cloud Backup", slug="cloud-backup")


@pytest.fixture
def incident(backup):
    row = Outage.objects.create(
        title="Backups failing", starts_at=NOW - timedelta(hours=2), ends_at=NOW - timedelta(hours=1),
        description="Backups to the Nairobi region failed.",
    )  # fmt: skip
    row.services.set([backup])
    return row


def change_url(outage) -> str:
    return reverse("admin:contracts_outage_change", args=[outage.pk])


def change_form(client, outage) -> dict[str, list[str]]:
    response = client.get(change_url(outage))
    assert response.status_code == 200
    return form_data(response.content.decode(), "outage_form")


# --- The cause, audited ----------------------------------------------------------------------------
def test_changing_the_cause_in_the_admin_is_audited(staff_client, ayo, incident):
    data = change_form(staff_client, incident)
    assert data["cause"] == ["unplanned"]
    data["cause"] = ["ddos"]
    response = staff_client.post(change_url(incident), data)
    assert response.status_code == 302, response.context and response.context["errors"]

    incident.refresh_from_db()
    assert incident.cause == Cause.DDOS
    change = OutageCauseChange.objects.get()
    assert (change.outage, change.actor, change.at, change.old, change.new) == (incident, ayo, NOW, "unplanned", "ddos")


def test_a_second_change_records_its_own_old_cause(staff_client, incident):
    for cause in ("ddos", "third_party"):
        data = change_form(staff_client, incident)
        data["cause"] = [cause]
        assert staff_client.post(change_url(incident), data).status_code == 302
    assert list(OutageCauseChange.objects.values_list("old", "new")) == [("unplanned", "ddos"), ("ddos", "third_party")]


def test_saving_without_changing_the_cause_records_nothing(staff_client, incident):
    data = change_form(staff_client, incident)
    data["title"] = ["Backups to Nairobi failing"]
    assert staff_client.post(change_url(incident), data).status_code == 302
    incident.refresh_from_db()
    assert incident.title == "Backups to Nairobi failing"
    assert not OutageCauseChange.objects.exists()


def test_an_outage_recorded_with_an_excluded_cause_is_audited(staff_client, ayo, backup):
    data = {
        "title": ["Upstream DNS provider down"],
        "services": [str(backup.pk)],
        "starts_at_0": ["2026-11-01"],
        "starts_at_1": ["10:00:00"],
        "ends_at_0": ["2026-11-01"],
        "ends_at_1": ["10:30:00"],
        "cause": ["third_party"],
        "description": [""],
        "updates-TOTAL_FORMS": ["1"],
        "updates-INITIAL_FORMS": ["0"],
        "updates-0-at_0": ["2026-11-01"],
        "updates-0-at_1": ["10:10:00"],
        "updates-0-body": ["Our DNS provider is investigating."],
        "cause_changes-TOTAL_FORMS": ["0"],
        "cause_changes-INITIAL_FORMS": ["0"],
    }
    response = staff_client.post(reverse("admin:contracts_outage_add"), data)
    assert response.status_code == 302, response.context and response.context["errors"]
    outage = Outage.objects.get()
    assert outage.cause == Cause.THIRD_PARTY and outage.source == Outage.Source.STAFF
    assert list(outage.services.all()) == [backup]
    assert list(outage.updates.values_list("body", flat=True)) == ["Our DNS provider is investigating."]
    assert list(outage.cause_changes.values_list("actor", "old", "new")) == [(ayo.pk, "unplanned", "third_party")]


def test_the_change_page_shows_the_cause_changes_read_only(staff_client, ayo, incident):
    outage_set_cause(outage=incident, actor=ayo, cause=Cause.FORCE_MAJEURE, now=NOW - timedelta(minutes=5))
    response = staff_client.get(change_url(incident))
    html = response.content.decode()
    section = re.search(r'id="cause_changes-group".*?</fieldset>', html, re.S).group(0)
    assert "Unplanned outage" in section and "Force majeure" in section and "Ayo AM" in section
    assert "<select" not in section and '<input type="text"' not in section
    data = form_data(html, "outage_form")
    # Only the row's hidden keys are submitted: nothing of the change itself is a form field.
    assert {k for k in data if k.startswith("cause_changes-0-")} == {"cause_changes-0-id", "cause_changes-0-outage"}


def test_the_audit_cannot_be_edited_through_the_form(staff_client, ayo, incident):
    outage_set_cause(outage=incident, actor=ayo, cause=Cause.FORCE_MAJEURE)
    data = change_form(staff_client, incident)
    data["cause_changes-0-new"] = ["ddos"]  # forged
    data["cause_changes-0-DELETE"] = ["on"]
    assert staff_client.post(change_url(incident), data).status_code == 302
    assert list(OutageCauseChange.objects.values_list("old", "new")) == [("unplanned", "force_majeure")]


def test_set_cause_to_the_same_cause_records_nothing(ayo, incident):
    assert outage_set_cause(outage=incident, actor=ayo, cause=Cause.UNPLANNED, now=NOW) is None
    assert not OutageCauseChange.objects.exists()


def test_set_cause_refuses_an_unknown_cause(ayo, incident):
    with pytest.raises(OutageError):
        outage_set_cause(outage=incident, actor=ayo, cause="gremlins", now=NOW)
    incident.refresh_from_db()
    assert incident.cause == Cause.UNPLANNED and not OutageCauseChange.objects.exists()


def test_set_cause_compares_with_the_stored_cause_not_a_stale_copy(ayo, incident):
    stale = Outage.objects.get(pk=incident.pk)
    outage_set_cause(outage=incident, actor=ayo, cause=Cause.DDOS, now=NOW)
    outage_set_cause(outage=stale, actor=ayo, cause=Cause.THIRD_PARTY, now=NOW)
    assert list(OutageCauseChange.objects.values_list("old", "new")) == [("unplanned", "ddos"), ("ddos", "third_party")]


# --- The change list ---------------------------------------------------------------------------------
@pytest.fixture
def listed(backup, incident, ayo):
    ongoing = Outage.objects.create(
        title="Restores hanging", starts_at=NOW - timedelta(minutes=30), source=Outage.Source.ALERTMANAGER,
        fingerprint="c5d9d2a1e0f4b8a7",
    )  # fmt: skip
    ongoing.services.set([backup])
    outage_set_cause(outage=incident, actor=ayo, cause=Cause.DDOS, now=NOW)
    return incident, ongoing


@pytest.mark.parametrize(
    ("query", "titles"),
    [
        ({}, {"Backups failing", "Restores hanging"}),
        ({"ongoing": "yes"}, {"Restores hanging"}),
        ({"ongoing": "no"}, {"Backups failing"}),
        ({"cause__exact": "ddos"}, {"Backups failing"}),  # the sidebar's links
        ({"source__exact": "alertmanager"}, {"Restores hanging"}),
        ({"q": "c5d9d2a1"}, {"Restores hanging"}),
        ({"q": "nairobi"}, {"Backups failing"}),
    ],
)
def test_changelist_filters_and_search(staff_client, listed, query, titles):
    response = staff_client.get(reverse("admin:contracts_outage_changelist"), query)
    assert response.status_code == 200
    assert {o.title for o in response.context["cl"].result_list} == titles


def test_changelist_shows_ongoing(staff_client, listed):
    html = staff_client.get(reverse("admin:contracts_outage_changelist")).content.decode()
    assert "Ongoing" in html and "Cloud Backup" in html


# --- Webhook tokens -----------------------------------------------------------------------------------
def rotate(client, *services):
    return client.post(
        reverse("admin:contracts_service_changelist"),
        {"action": "rotate_webhook_token", "_selected_action": [str(s.pk) for s in services]},
        follow=True,
    )


def test_rotating_a_token_stores_its_hash_and_shows_it_once(security_client, backup):
    response = rotate(security_client, backup)
    ((level, message),) = messages_of(response)
    assert level == SUCCESS
    token = re.search(r"\(cloud-backup\): (\S+) — copy it now", message).group(1)
    assert len(token) >= 43  # token_urlsafe(32)

    backup.refresh_from_db()
    assert backup.webhook_token_hash == hashlib.sha256(token.encode()).hexdigest()
    stored = Service.objects.filter(pk=backup.pk).values().get()
    assert not any(token in str(value) for value in stored.values())
    assert service_for_webhook_token(token=token) == backup
    assert LogEntry.objects.get(object_id=str(backup.pk)).get_change_message() == "Rotated the webhook token."

    # Shown once: the next page carries no message, and nowhere the token.
    again = security_client.get(reverse("admin:contracts_service_changelist"))
    assert token not in again.content.decode()


def test_rotating_again_replaces_the_token(security_client, backup):
    first = re.search(r": (\S+) — copy", messages_of(rotate(security_client, backup))[0][1]).group(1)
    second = re.search(r": (\S+) — copy", messages_of(rotate(security_client, backup))[0][1]).group(1)
    assert first != second
    assert service_for_webhook_token(token=first) is None
    assert service_for_webhook_token(token=second) == backup


def test_each_selected_service_gets_its_own_token(security_client):
    services = [ServiceFactory(name=f"S{i}", slug=f"s{i}") for i in range(3)]
    response = rotate(security_client, *services)
    assert len(messages_of(response)) == 3
    assert len(set(Service.objects.values_list("webhook_token_hash", flat=True))) == 3
