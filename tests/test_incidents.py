"""Incidents (issue 20, items 1-3): staff publish an outage as an incident and post updates; each
published update emails the contacts of every contract on an affected service once, threaded per
incident; a draft from an alert waits for staff or its delay; impact and scope decide whose uptime
an outage counts in, and a customer-scoped outage is shown to its customers only. Frozen clocks;
emails asserted as sent, headers included."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.core import mail

from contracts.choices import Impact
from contracts.incidents.mail import incident_of_address
from contracts.incidents.services import (
    DRAFT_DELAY,
    IncidentError,
    incident_open,
    incident_post_update,
    incident_publish,
    incidents_draft_for_alerts,
    incidents_publish_due,
    outage_set_impact,
)
from contracts.models import Incident, IncidentStatus, IncidentUpdate, Outage
from credits.figures import month_so_far
from portal.models import AuditEntry, OutboxMessage, WebhookDelivery, WebhookEndpoint

from .factories import ContractFactory, ServiceFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def backup(db):
    return ServiceFactory(name="Cloud Backup", slug="cloud-backup")


@pytest.fixture
def assistant(db):
    return ServiceFactory(name="AI Assistant", slug="ai-assistant")


@pytest.fixture
def acme_on_backup(acme, alice, bob, backup):
    return ContractFactory(organisation=acme, reference="KAL-0001", name="Cloud Backup for Acme", services=[backup],
                           contacts=[alice, bob])  # fmt: skip


@pytest.fixture
def globex_on_assistant(globex, charlie, assistant):
    return ContractFactory(organisation=globex, reference="KLA-0001", name="AI Assistant for Globex",
                           services=[assistant], contacts=[charlie])  # fmt: skip


@pytest.fixture
def outage(backup):
    o = Outage.objects.create(title="Backup API errors", starts_at=NOW - 30 * MINUTE)
    o.services.set([backup])
    return o


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """Call at a frozen moment, running what commits trigger (the outbox's sending)."""

    def call(at, fn, **kwargs):
        with time_machine.travel(at, tick=False), django_capture_on_commit_callbacks(execute=True):
            return fn(**kwargs)

    return call


def _to(user):
    return [m for m in mail.outbox if m.to == [user.email]]


def test_staff_publish_an_incident_and_two_updates_alice_and_bob_get_three_threaded_emails_charlie_none(
    run, outage, acme_on_backup, globex_on_assistant, alice, bob, charlie, lena
):
    incident = run(NOW, incident_open, outage=outage, title="Backups failing", status=IncidentStatus.INVESTIGATING,
                   body="We are looking into failed backups.", actor=lena)  # fmt: skip
    run(NOW + 20 * MINUTE, incident_post_update, incident=incident, status=IncidentStatus.IDENTIFIED,
        body="A storage node is full; we are moving data.", actor=lena, after=1)  # fmt: skip
    run(NOW + 60 * MINUTE, incident_post_update, incident=incident, status=IncidentStatus.RESOLVED,
        body="Backups run again.", actor=lena, after=2)  # fmt: skip

    assert _to(charlie) == []
    for person in (alice, bob):
        first, second, third = _to(person)
        assert [m.subject for m in (first, second, third)] == ["Incident: Backups failing"] * 3
        ids = [m.extra_headers["Message-ID"] for m in (first, second, third)]
        assert [i.split("@")[0] for i in ids] == [f"<incident-{incident.pk}.{n}.{person.pk}" for n in (1, 2, 3)]
        assert "In-Reply-To" not in first.extra_headers
        assert second.extra_headers["In-Reply-To"] == ids[0] and second.extra_headers["References"] == ids[0]
        assert third.extra_headers["In-Reply-To"] == ids[0]
        assert third.extra_headers["References"] == f"{ids[0]} {ids[1]}"
        reply_to = {m.extra_headers["Reply-To"] for m in (first, second, third)}
        assert len(reply_to) == 1 and incident_of_address(reply_to.pop(), person.email) == incident.pk
        assert third.extra_headers["Auto-Submitted"] == "auto-generated"
        assert "List-Unsubscribe" in first.extra_headers  # incidents are a choice a member may turn off
        assert "Backups run again." in third.body and "Resolved" in third.body
        assert "Resolved (2026-11-10 13:00 (UTC+03:00))" in third.body  # the contract's timezone (Nairobi)
        assert f"/incidents/{incident.pk}/" in first.body
    assert len(mail.outbox) == 6
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED and incident.resolved_at == NOW + 60 * MINUTE
    assert list(incident.updates.values_list("number", "published_at")) == [
        (1, NOW), (2, NOW + 20 * MINUTE), (3, NOW + 60 * MINUTE)
    ]  # fmt: skip
    assert set(AuditEntry.objects.filter(target_id=str(incident.pk)).values_list("action", flat=True)) >= {
        "incident.opened", "incident.published", "incident.updated"
    }  # fmt: skip


def test_a_person_on_two_affected_contracts_gets_one_email_per_update(run, outage, acme, alice, backup, lena):
    ContractFactory(organisation=acme, services=[backup], contacts=[alice])
    ContractFactory(organisation=acme, services=[backup], contacts=[alice])
    run(NOW, incident_open, outage=outage, title="Backups failing", status="investigating", body="Looking.", actor=lena)
    assert len(_to(alice)) == 1


def test_two_staff_publishing_at_once_send_nothing_twice(run, outage, acme_on_backup, alice, bob, lena, ayo):
    incident = run(NOW, incident_open, outage=outage, title="Backups failing", status="investigating",
                   body="Looking.", actor=lena, publish=False)  # fmt: skip
    assert mail.outbox == []
    run(NOW + MINUTE, incident_publish, incident=incident, actor=lena)
    with pytest.raises(IncidentError, match="published already"):
        run(NOW + MINUTE, incident_publish, incident=Incident.objects.get(pk=incident.pk), actor=ayo)
    assert len(mail.outbox) == 2  # Alice and Bob, once each

    # Both read update 1 and post: the second is refused, not sent unaware of the first.
    run(NOW + 2 * MINUTE, incident_post_update, incident=incident, status="identified", body="Found it.", actor=lena,
        after=1)  # fmt: skip
    with pytest.raises(IncidentError, match="posted meanwhile"):
        run(NOW + 2 * MINUTE, incident_post_update, incident=incident, status="identified", body="Found.", actor=ayo,
            after=1)  # fmt: skip
    assert len(mail.outbox) == 4 and IncidentUpdate.objects.filter(incident=incident).count() == 2

    # The publishing function itself sends an update once, however often it is called.
    from contracts.incidents.publishing import update_publish

    update = IncidentUpdate.objects.get(incident=incident, number=2)
    assert run(NOW + 3 * MINUTE, update_publish, update=update) == 0
    assert len(mail.outbox) == 4 and OutboxMessage.objects.count() == 4


def test_a_sent_update_never_changes_a_correction_is_a_new_update(run, outage, acme_on_backup, alice, lena):
    incident = run(NOW, incident_open, outage=outage, title="Backups failing", status="investigating",
                   body="Cloud Backup is down.", actor=lena)  # fmt: skip
    run(NOW + MINUTE, incident_post_update, incident=incident, status="investigating",
        body="Correction: only scheduled backups fail.", actor=lena)  # fmt: skip
    assert list(incident.updates.values_list("body", flat=True)) == [
        "Cloud Backup is down.", "Correction: only scheduled backups fail."
    ]  # fmt: skip
    assert [m.body.count("Correction") for m in _to(alice)] == [0, 1]


def test_an_alert_drafts_an_incident_published_by_the_sweep_after_the_delay(run, outage, acme_on_backup, alice, bob):
    [draft] = incidents_draft_for_alerts(outages=[outage], now=NOW)
    assert draft.published_at is None and draft.publish_due_at == NOW + DRAFT_DELAY
    assert run(NOW + DRAFT_DELAY - MINUTE, incidents_publish_due) == 0 and mail.outbox == []
    assert run(NOW + DRAFT_DELAY, incidents_publish_due) == 1
    assert sorted(m.to[0] for m in mail.outbox) == [alice.email, bob.email]
    assert "reported by our monitoring" in mail.outbox[0].body
    assert run(NOW + DRAFT_DELAY + MINUTE, incidents_publish_due) == 0 and len(mail.outbox) == 2


def test_an_update_emits_the_incident_updated_webhook_to_affected_organisations(
    run, outage, acme_on_backup, globex_on_assistant, acme, globex, lena
):
    for org in (acme, globex):
        WebhookEndpoint.objects.create(organisation=org, url=f"https://{org.slug}.example/hook",
                                       events=["incident.updated"], secret="s" * 32, created_at=NOW)  # fmt: skip
    run(NOW, incident_open, outage=outage, title="Backups failing", status="investigating", body="Looking.", actor=lena)
    [delivery] = WebhookDelivery.objects.all()
    assert delivery.endpoint.organisation == acme and delivery.event == "incident.updated"
    assert delivery.payload["data"]["incident"]["title"] == "Backups failing"
    assert delivery.payload["data"]["update"]["body"] == "Looking."
    assert (
        delivery.payload["data"]["incident"]["url"]
        == f"{settings.PORTAL_BASE_URL}/incidents/{delivery.payload['data']['incident']['id']}/"
    )


def test_a_partial_outage_is_told_to_its_scoped_contracts_only_and_each_hears_of_its_services(
    run, acme, globex, alice, charlie, backup, assistant, lena
):
    ContractFactory(organisation=acme, services=[backup], contacts=[alice])
    g = ContractFactory(organisation=globex, services=[backup, assistant], contacts=[charlie])
    for org in (acme, globex):
        WebhookEndpoint.objects.create(organisation=org, url=f"https://{org.slug}.example/hook",
                                       events=["incident.updated"], secret="s" * 32, created_at=NOW)  # fmt: skip
    o = Outage.objects.create(title="Slow restores", starts_at=NOW - 10 * MINUTE)
    o.services.set([backup])
    outage_set_impact(outage=o, impacts={backup.pk: Impact.PARTIAL}, contracts=[g], customer_scoped=False,
                      actor=lena, now=NOW)  # fmt: skip
    run(NOW, incident_open, outage=o, title="Slow restores", status="investigating", body="Looking.", actor=lena)
    assert {m.to[0] for m in mail.outbox} == {charlie.email}
    [delivery] = WebhookDelivery.objects.all()
    assert delivery.endpoint.organisation == globex
    assert delivery.payload["data"]["incident"]["services"] == ["Cloud Backup"]


# --- Impact and scope in uptime ------------------------------------------------------------------
def _down(contract, at):
    return month_so_far(contract=contract, now=at).down_minutes


def test_major_is_down_for_all_partial_for_the_scoped_degraded_for_none(run, acme, globex, backup, lena):
    a = ContractFactory(organisation=acme, services=[backup])
    g = ContractFactory(organisation=globex, services=[backup])
    o = Outage.objects.create(title="Slow", starts_at=NOW - 60 * MINUTE, ends_at=NOW - 30 * MINUTE)
    o.services.set([backup])
    assert (_down(a, NOW), _down(g, NOW)) == (30, 30)  # major: everyone on the service

    run(NOW, outage_set_impact, outage=o, impacts={backup.pk: Impact.PARTIAL}, contracts=[a], customer_scoped=False,
        actor=lena)  # fmt: skip
    assert (_down(a, NOW), _down(g, NOW)) == (30, 0)

    run(NOW, outage_set_impact, outage=o, impacts={backup.pk: Impact.DEGRADED}, contracts=[a], customer_scoped=False,
        actor=lena)  # fmt: skip
    assert (_down(a, NOW), _down(g, NOW)) == (0, 0)
    entry = AuditEntry.objects.filter(action="outage.impact_changed").latest("pk")
    assert entry.before["impacts"] == {str(backup.pk): "partial"} and entry.after["impacts"] == {
        str(backup.pk): "degraded"
    }


def test_the_incident_carries_its_outages_worst_impact_whatever_changes_its_services(run, backup, assistant, lena):
    from contracts.outages.services import outage_update

    o = Outage.objects.create(title="Slow", starts_at=NOW - 60 * MINUTE)
    o.services.set([backup])
    run(NOW, outage_set_impact, outage=o, impacts={backup.pk: Impact.DEGRADED}, contracts=[], customer_scoped=False,
        actor=lena)  # fmt: skip
    o.refresh_from_db()
    incident = run(NOW, incident_open, outage=o, title="Slow backups", status="investigating", body="Looking.",
                   actor=lena)  # fmt: skip
    assert Incident.objects.get(pk=incident.pk).impact == Impact.DEGRADED
    # The assistant joins the outage, down (major unless said otherwise): the incident is major.
    run(NOW, outage_update, outage=o, title=o.title, services=[backup, assistant], starts_at=o.starts_at, ends_at=None,
        description="", actor=lena)  # fmt: skip
    assert Incident.objects.get(pk=incident.pk).impact == Impact.MAJOR
    run(NOW, outage_update, outage=o, title=o.title, services=[backup], starts_at=o.starts_at, ends_at=None,
        description="", actor=lena)  # fmt: skip
    assert Incident.objects.get(pk=incident.pk).impact == Impact.DEGRADED


def test_a_customer_scoped_outage_counts_only_for_its_contract_and_is_seen_only_by_its_customers(
    run, client, acme, globex, alice, charlie, backup, lena
):
    a = ContractFactory(organisation=acme, services=[backup])
    g = ContractFactory(organisation=globex, services=[backup])
    o = Outage.objects.create(title="Acme's tenant down", starts_at=NOW - 60 * MINUTE, ends_at=NOW - 50 * MINUTE)
    o.services.set([backup])
    run(NOW, outage_set_impact, outage=o, impacts={}, contracts=[a], customer_scoped=True, actor=lena)
    assert (_down(a, NOW), _down(g, NOW)) == (10, 0)

    incident = run(NOW, incident_open, outage=o, title="Your tenant was down", status="resolved", body="Fixed.",
                   actor=lena)  # fmt: skip
    assert [m.to[0] for m in mail.outbox] == [alice.email]  # Charlie is on the service, not in the scope

    with time_machine.travel(NOW, tick=False):
        client.force_login(alice)
        assert client.get(f"/incidents/{incident.pk}/").status_code == 200
        assert client.get(f"/api/v1/outages/{o.pk}/").status_code in (200, 401, 403)
        client.force_login(charlie)
        assert client.get(f"/incidents/{incident.pk}/").status_code == 404
        assert b"Your tenant was down" not in client.get("/incidents/").content
        client.logout()
        assert b"Acme&#x27;s tenant down" not in client.get("/status/").content
        assert b"tenant" not in client.get("/status/").content


def test_an_impact_change_that_touches_a_closed_month_reopens_it(run, acme, backup, lena):
    from credits.closing import close_month
    from credits.models import MonthlyUptime

    a = ContractFactory(organisation=acme, services=[backup])
    o = Outage.objects.create(title="October", starts_at=datetime(2026, 10, 10, 9, tzinfo=UTC),
                              ends_at=datetime(2026, 10, 10, 10, tzinfo=UTC))  # fmt: skip
    o.services.set([backup])
    from datetime import date

    close_month(month=date(2026, 10, 1), now=NOW)
    row = MonthlyUptime.objects.get(contract=a, month=date(2026, 10, 1))
    assert row.status == MonthlyUptime.Status.CLOSED and row.down_minutes == 60
    run(NOW, outage_set_impact, outage=o, impacts={backup.pk: Impact.DEGRADED}, contracts=[], customer_scoped=False,
        actor=lena)  # fmt: skip
    row.refresh_from_db()
    assert row.status == MonthlyUptime.Status.REOPENED
    close_month(month=date(2026, 10, 1), now=NOW)
    row.refresh_from_db()
    assert row.status == MonthlyUptime.Status.CLOSED and row.down_minutes == 0


def test_a_contract_is_affected_from_its_own_first_day_to_its_own_last_in_its_zone(
    run, acme, alice, bob, globex, charlie, backup, lena
):
    """Kaluari's contracts run on Nairobi's calendar: at 30 November 22:30 UTC it is 1 December 01:30
    there, so a contract starting on 1 December is running and one that ended on 30 November is not."""
    from datetime import date

    from contracts.incidents.publishing import affected_contracts

    starting = ContractFactory(organisation=acme, services=[backup], contacts=[alice], starts_on=date(2026, 12, 1))
    ended = ContractFactory(organisation=globex, services=[backup], contacts=[charlie], starts_on=date(2026, 1, 1),
                            ends_on=date(2026, 11, 30))  # fmt: skip
    at = datetime(2026, 11, 30, 22, 30, tzinfo=UTC)
    o = Outage.objects.create(title="Backup API errors", starts_at=at - 30 * MINUTE)
    o.services.set([backup])
    incident = run(at, incident_open, outage=o, title="Backups failing", status="investigating", body="Looking.",
                   actor=lena)  # fmt: skip
    assert list(affected_contracts(incident, at)) == [starting]
    assert sorted(m.to[0] for m in mail.outbox) == [alice.email, bob.email]  # Acme's people; not Charlie
    assert list(affected_contracts(incident, at - 3 * 60 * MINUTE)) == [ended]  # 30 November 22:30 in Nairobi
