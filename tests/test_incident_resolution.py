"""Resolving an incident ends its outage: staff post identified, monitoring, resolved and leave the
outage's end to the update ("The outage ended at", default the update's moment). The status page's
banner, its components, summary.json and the customer's uptime then agree with "Resolved"; the end
goes through the outage service (audited, a closed month it touches judged again). An end before
the outage's start or in the future is the field's error. Frozen clocks."""

import json
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from contracts.incidents.services import IncidentError, incident_open, incident_post_update
from contracts.models import Incident, Outage
from credits.figures import month_so_far
from portal.models import AuditEntry

from .factories import ContractFactory
from .test_incident_links import _timeline_management, _timeline_management_empty

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def acme_c(acme, alice, backup):
    return ContractFactory(organisation=acme, reference="KAL-0001", name="Cloud Backup for Acme", services=[backup],
                           contacts=[alice])  # fmt: skip


@pytest.fixture
def outage(backup):
    o = Outage.objects.create(title="Backup down", starts_at=NOW)
    o.services.set([backup])
    return o


def at(moment, fn, **kwargs):
    with time_machine.travel(moment, tick=False):
        return fn(**kwargs)


def summary(moment) -> dict:
    with time_machine.travel(moment, tick=False):
        response = Client().get("/status/api/v2/summary.json")
    assert response.status_code == 200
    return json.loads(response.content)


def status_page(moment) -> str:
    with time_machine.travel(moment, tick=False):
        return Client().get("/status/").content.decode()


def test_a_resolving_update_ends_the_open_outage_and_the_status_page_and_uptime_agree(outage, acme_c, backup, lena):
    incident = at(NOW + MINUTE, incident_open, outage=outage, title="Backups failing", status="investigating",
                  body="Looking.", actor=lena)  # fmt: skip
    for minutes, status in ((5, "identified"), (10, "monitoring"), (20, "resolved")):
        at(NOW + minutes * MINUTE, incident_post_update, incident=incident, status=status, body=f"Now {status}.",
           actor=lena)  # fmt: skip
    outage.refresh_from_db()
    assert outage.ends_at == NOW + 20 * MINUTE  # the resolving update's moment, nothing typed

    doc = summary(NOW + 40 * MINUTE)
    assert doc["status"]["indicator"] == "none" and doc["incidents"] == []
    assert [c["status"] for c in doc["components"]] == ["operational"]
    assert "Some services are having an outage" not in status_page(NOW + 40 * MINUTE)
    # Two days later the customer's month counts the 20 minutes, not 2,880.
    assert month_so_far(contract=acme_c, now=NOW + timedelta(days=2)).down_minutes == 20
    change = AuditEntry.objects.get(action="outage.changed", target_id=str(outage.pk))
    assert change.before["ends_at"] is None and change.actor_id == lena.pk


def test_the_end_staff_give_is_kept_and_an_end_already_recorded_is_not_touched(outage, backup, lena):
    incident = at(NOW + MINUTE, incident_open, outage=outage, title="Backups failing", status="investigating",
                  body="Looking.", actor=lena)  # fmt: skip
    at(NOW + 60 * MINUTE, incident_post_update, incident=incident, status="resolved", body="Fixed at 09:25.",
       outage_ended_at=NOW + 25 * MINUTE, actor=lena)  # fmt: skip
    outage.refresh_from_db()
    assert outage.ends_at == NOW + 25 * MINUTE
    # A later correction, resolved again: the outage keeps the end it has.
    at(NOW + 90 * MINUTE, incident_post_update, incident=incident, status="resolved", body="Correction.",
       outage_ended_at=NOW + 80 * MINUTE, actor=lena)  # fmt: skip
    outage.refresh_from_db()
    assert outage.ends_at == NOW + 25 * MINUTE


@pytest.mark.parametrize(
    ("ended", "message"),
    [(-5, "it must end after that"), (0, "it must end after that"), (120, "cannot have ended in the future")],
)
def test_an_end_before_the_start_or_in_the_future_is_refused_and_nothing_is_posted(outage, lena, ended, message):
    incident = at(NOW + MINUTE, incident_open, outage=outage, title="Backups failing", status="investigating",
                  body="Looking.", actor=lena)  # fmt: skip
    with pytest.raises(IncidentError, match=message) as refused:
        at(NOW + 60 * MINUTE, incident_post_update, incident=incident, status="resolved", body="Fixed.",
           outage_ended_at=NOW + ended * MINUTE, actor=lena)  # fmt: skip
    assert refused.value.field == "outage_ended_at"
    outage.refresh_from_db()
    incident.refresh_from_db()
    assert outage.ends_at is None and incident.status == "investigating" and incident.updates.count() == 1


def test_a_draft_resolved_ends_the_outage_at_once_and_waits_for_staff(outage, lena):
    """A draft's resolving update ends the outage when it is written (the end is a fact about the
    service); the draft, like one whose outage an alert closed, is no longer published by the delay."""
    incident = at(NOW + MINUTE, incident_open, outage=outage, title="Backups failing", status="investigating",
                  body="Looking.", actor=lena, publish=False)  # fmt: skip
    Incident.objects.filter(pk=incident.pk).update(publish_due_at=NOW + 16 * MINUTE)
    incident.refresh_from_db()
    at(NOW + 10 * MINUTE, incident_post_update, incident=incident, status="resolved", body="Fixed.", actor=lena)
    outage.refresh_from_db()
    incident.refresh_from_db()
    assert outage.ends_at == NOW + 10 * MINUTE
    assert incident.published_at is None and incident.publish_due_at is None


def test_an_incident_opened_resolved_ends_its_outage(outage, lena):
    at(NOW + 60 * MINUTE, incident_open, outage=outage, title="Backups failed", status="resolved",
       body="Backups failed for 30 minutes.", outage_ended_at=NOW + 30 * MINUTE, actor=lena)  # fmt: skip
    outage.refresh_from_db()
    assert outage.ends_at == NOW + 30 * MINUTE


def test_resolving_late_judges_again_the_closed_month_the_outage_ran_into(acme_c, backup, lena):
    """An outage open at October's close counted to the month's end; the incident resolved in
    November with the real end (31 October 23:20) reopens October, which closes on 20 minutes."""
    from credits.closing import close_month
    from credits.models import MonthlyUptime

    start = datetime(2026, 10, 31, 20, 0, tzinfo=UTC)  # 23:00 in Nairobi, the contract's zone
    o = Outage.objects.create(title="Backup down", starts_at=start)
    o.services.set([backup])
    incident = at(start + MINUTE, incident_open, outage=o, title="Backups failing", status="investigating",
                  body="Looking.", actor=lena)  # fmt: skip
    close_month(month=date(2026, 10, 1), now=NOW)
    row = MonthlyUptime.objects.get(contract=acme_c, month=date(2026, 10, 1))
    assert row.status == MonthlyUptime.Status.CLOSED and row.down_minutes == 60
    at(NOW, incident_post_update, incident=incident, status="resolved", body="Fixed.",
       outage_ended_at=start + 20 * MINUTE, actor=lena)  # fmt: skip
    row.refresh_from_db()
    assert row.status == MonthlyUptime.Status.REOPENED
    close_month(month=date(2026, 10, 1), now=NOW)
    row.refresh_from_db()
    assert row.down_minutes == 20


def _post(client, incident, moment, **fields):
    data = {"title": incident.title, "new_status": "", "new_body": "", "seen_last": incident.updates.count(),
            **fields, **_timeline_management(incident)}  # fmt: skip
    with time_machine.travel(moment, tick=False):
        return client.post(reverse("admin:contracts_incident_change", args=[incident.pk]), data, follow=True)


def test_the_update_form_asks_when_the_outage_ended_in_the_staff_zone_and_refuses_a_bad_end(client, outage, lena):
    lena.timezone = "Africa/Nairobi"
    lena.save(update_fields=["timezone"])
    incident = at(NOW + MINUTE, incident_open, outage=outage, title="Backups failing", status="investigating",
                  body="Looking.", actor=lena)  # fmt: skip
    client.force_login(lena)
    with time_machine.travel(NOW + 30 * MINUTE, tick=False):
        page = client.get(reverse("admin:contracts_incident_change", args=[incident.pk])).content.decode()
    assert "The outage ended at" in page and "Africa/Nairobi time" in page

    # 08:00 Nairobi is 05:00 UTC, before the outage's start (09:00 UTC): the field says so.
    response = _post(client, incident, NOW + 30 * MINUTE, new_status="resolved", new_body="Fixed.",
                     outage_ended_at_0="2026-11-10", outage_ended_at_1="08:00")  # fmt: skip
    assert response.context["adminform"].form.errors["outage_ended_at"] == [
        "The outage started at 2026-11-10 09:00 UTC: it must end after that."
    ]
    outage.refresh_from_db()
    assert outage.ends_at is None and incident.updates.count() == 1

    # 12:20 Nairobi is 09:20 UTC.
    response = _post(client, incident, NOW + 30 * MINUTE, new_status="resolved", new_body="Fixed.",
                     outage_ended_at_0="2026-11-10", outage_ended_at_1="12:20")  # fmt: skip
    assert "successfully" in response.content.decode()
    outage.refresh_from_db()
    incident.refresh_from_db()
    assert outage.ends_at == NOW + 20 * MINUTE and incident.status == "resolved"
    with time_machine.travel(NOW + 31 * MINUTE, tick=False):
        page = client.get(reverse("admin:contracts_incident_change", args=[incident.pk])).content.decode()
    assert "The outage ended at" not in page  # ended: nothing more to ask


def test_the_add_form_refuses_an_end_in_the_future_for_an_incident_opened_resolved(client, outage, lena):
    client.force_login(lena)
    data = {"outage": outage.pk, "title": "Backups failed", "status": "resolved", "body": "Over.",
            "publish_now": "on", "outage_ended_at_0": "2026-11-10", "outage_ended_at_1": "11:00",
            **_timeline_management_empty()}  # fmt: skip
    with time_machine.travel(NOW + 30 * MINUTE, tick=False):
        response = client.post(reverse("admin:contracts_incident_add"), data, follow=True)
    assert response.context["adminform"].form.errors["outage_ended_at"] == [
        "The outage cannot have ended in the future."
    ]
    assert not Incident.objects.exists()
    data["outage_ended_at_1"] = "09:15"
    with time_machine.travel(NOW + 30 * MINUTE, tick=False):
        response = client.post(reverse("admin:contracts_incident_add"), data, follow=True)
    assert "successfully" in response.content.decode()
    outage.refresh_from_db()
    assert outage.ends_at == NOW + 15 * MINUTE and Incident.objects.get().status == "resolved"


def test_resolving_an_open_outage_needs_the_right_to_change_outages(client, outage, lena):
    from django.contrib.auth.models import Permission

    from .factories import StaffFactory

    writer = StaffFactory(email="writer@vendor.example", name="Incident Writer", staff_role="")
    writer.user_permissions.set(Permission.objects.filter(
        content_type__app_label="contracts",
        codename__in=["view_incident", "add_incident", "change_incident", "publish_incident", "view_outage"],
    ))  # fmt: skip
    incident = at(NOW + MINUTE, incident_open, outage=outage, title="Backups failing", status="investigating",
                  body="Looking.", actor=lena)  # fmt: skip
    client.force_login(writer)
    response = _post(client, incident, NOW + 30 * MINUTE, new_status="resolved", new_body="Fixed.")
    assert "you may not change outages" in response.content.decode()
    outage.refresh_from_db()
    assert outage.ends_at is None and incident.updates.count() == 1
    response = _post(client, incident, NOW + 30 * MINUTE, new_status="monitoring", new_body="Watching.")
    assert "successfully" in response.content.decode() and incident.updates.count() == 2
