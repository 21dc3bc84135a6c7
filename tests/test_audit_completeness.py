"""Every change that moves a deadline, a figure or a right is audited with before and after (issue
Trust, item 4). What the other test files audit already: users, roles, groups, permissions,
passwords (tests/test_staff_access.py), API tokens (test_api_tokens.py), SLA terms and versions
(test_audit.py, test_sla_versions.py), a calendar's closed dates (test_sla_versions.py), outages and
their causes (test_outages.py), claims decided and months reopened or judged again (test_audit.py,
test_rejudging.py). Here, what was not: contracts (invoice amount, currency, contacts, services,
SLA), organisations (their escalation contacts), working calendars (hours, timezone, holidays),
maintenance windows (published, changed, cancelled, deleted) and a claim's settlement; an SLA's
name and vendor and a service's name (what customers read beside the terms), a lockout lifted; and
the login lockouts' clean-up action, which needs the permission to lift a lockout."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from axes.models import AccessAttempt
from django.contrib.auth.models import Permission
from django.urls import reverse

from contracts.maintenance.services import window_cancel, window_delete, window_publish, window_update
from contracts.models import SLA, Contract, MaintenanceWindow, Organisation, WorkingCalendar
from contracts.outages.services import outage_record
from credits.closing import close_month
from credits.models import Claim
from credits.services import claim_approve, claim_settle, claim_submit
from portal.models import AuditEntry

from .factories import ServiceFactory, StaffFactory
from .test_admin import form_data

pytestmark = pytest.mark.django_db

NBO = ZoneInfo("Africa/Nairobi")
NOW = datetime(2026, 11, 3, 10, 0, tzinfo=NBO)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def entries(action_prefix: str) -> list[tuple[str, str, dict, dict]]:
    return list(
        AuditEntry.objects.filter(action__startswith=action_prefix)
        .order_by("id")
        .values_list("action", "actor_email", "before", "after")
    )


def change_form(client, url: str, form_id: str) -> dict:
    response = client.get(url)
    assert response.status_code == 200
    return form_data(response.content.decode(), form_id)


def saved(response):
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    return response


# --- Contracts ------------------------------------------------------------------------------------
@pytest.fixture
def ayo_client(client, ayo):
    client.force_login(ayo)
    return client


def test_a_contracts_invoice_currency_contacts_and_sla_changed_in_the_admin_are_audited(
    ayo_client, ayo, acme_contract, alice, bob
):
    url = reverse("admin:contracts_contract_change", args=[acme_contract.pk])
    data = change_form(ayo_client, url, "contract_form")
    klart = SLA.objects.get(template_key="klart-ai")
    data.update(monthly_invoice_amount=["120000.00"], currency=["USD"], contacts=[str(alice.pk)], sla=[str(klart.pk)])
    saved(ayo_client.post(url, data))
    ((action, actor, before, after),) = entries("contract.")
    assert (action, actor) == ("contract.changed", ayo.email)
    assert before == {
        "monthly_invoice_amount": "150000.0000",
        "currency": "KES",
        "contacts": sorted([str(alice), str(bob)]),
        "sla": str(SLA.objects.get(template_key="kaluari-cloud-backup")),
    }
    assert after == {
        "monthly_invoice_amount": "120000.0000",
        "currency": "USD",
        "contacts": [str(alice)],
        "sla": str(klart),
    }


def test_saving_a_contract_unchanged_writes_no_entry(ayo_client, acme_contract):
    url = reverse("admin:contracts_contract_change", args=[acme_contract.pk])
    saved(ayo_client.post(url, change_form(ayo_client, url, "contract_form")))
    assert entries("contract.") == []


def test_a_contract_created_and_deleted_in_the_admin_is_audited(ayo_client, ayo, ada, client, acme, alice):
    url = reverse("admin:contracts_contract_add")
    data = change_form(ayo_client, url, "contract_form")
    backup = ServiceFactory(name="Cloud Backup", slug="cloud-backup")
    data.update(
        organisation=[str(acme.pk)], reference=["KAL-0099"], name=["Backup for Acme"],
        sla=[str(SLA.objects.get(template_key="kaluari-cloud-backup").pk)], starts_on=["2026-11-01"],
        monthly_invoice_amount=["90000"], currency=["KES"], services=[str(backup.pk)], contacts=[str(alice.pk)],
    )  # fmt: skip
    saved(ayo_client.post(url, data))
    contract = Contract.objects.get(reference="KAL-0099")
    ((action, actor, before, after),) = entries("contract.")
    assert (action, actor, before) == ("contract.created", ayo.email, {})
    assert after["monthly_invoice_amount"] == "90000.0000" and after["contacts"] == [str(alice)]
    assert after["services"] == ["Cloud Backup"]
    # Only superusers delete (docs/decisions.md): the entry keeps what the contract was.
    client.force_login(ada)
    saved(client.post(reverse("admin:contracts_contract_delete", args=[contract.pk]), {"post": "yes"}))
    (action, actor, before, after) = entries("contract.")[-1]
    assert (action, actor, after) == ("contract.deleted", ada.email, {})
    assert before["reference"] == "KAL-0099" and before["monthly_invoice_amount"] == "90000.0000"


def test_an_organisations_escalation_contacts_changed_in_the_admin_are_audited(ayo_client, ayo, acme, sam):
    url = reverse("admin:contracts_organisation_change", args=[acme.pk])
    data = change_form(ayo_client, url, "organisation_form")
    data.update(account_manager=[str(ayo.pk)], solutions_manager=[str(sam.pk)])
    saved(ayo_client.post(url, data))
    assert entries("organisation.") == [
        (
            "organisation.changed",
            ayo.email,
            {"account_manager": None, "solutions_manager": None},
            {"account_manager": str(ayo), "solutions_manager": str(sam)},
        )
    ]
    assert Organisation.objects.get(pk=acme.pk).solutions_manager == sam


# --- Working calendars ----------------------------------------------------------------------------
def test_a_calendars_hours_and_timezone_changed_in_the_admin_are_audited(ayo_client, ayo):
    """A calendar no published version uses (a published one's hours are frozen: test_sla_versions)."""
    calendar = WorkingCalendar.objects.create(name="Draft hours", timezone="Africa/Nairobi")
    calendar.hours.create(weekday=0, opens="08:00", closes="17:00")
    url = reverse("admin:contracts_workingcalendar_change", args=[calendar.pk])
    data = change_form(ayo_client, url, "workingcalendar_form")
    data.update({"timezone": ["Europe/Berlin"], "hours-0-closes": ["18:00"]})
    saved(ayo_client.post(url, data))
    assert entries("calendar.") == [
        (
            "calendar.changed",
            ayo.email,
            {"timezone": "Africa/Nairobi", "working_hours": ["Monday 08:00-17:00"]},
            {"timezone": "Europe/Berlin", "working_hours": ["Monday 08:00-18:00"]},
        )
    ]


def test_a_calendar_created_in_the_admin_is_audited_with_its_hours(ayo_client, ayo):
    url = reverse("admin:contracts_workingcalendar_add")
    data = change_form(ayo_client, url, "workingcalendar_form")
    data.update(
        {
            "name": ["Berlin office"], "timezone": ["Europe/Berlin"], "hours-TOTAL_FORMS": ["1"],
            "hours-0-weekday": ["2"], "hours-0-opens": ["09:00"], "hours-0-closes": ["17:00"],
        }
    )  # fmt: skip
    saved(ayo_client.post(url, data))
    ((action, actor, before, after),) = entries("calendar.")
    assert (action, actor, before) == ("calendar.created", ayo.email, {})
    assert after["timezone"] == "Europe/Berlin" and after["working_hours"] == ["Wednesday 09:00-17:00"]


# --- Maintenance windows --------------------------------------------------------------------------
def window_form(start: datetime, end: datetime, services, **extra) -> dict:
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    return {
        "title": "Storage upgrade", "description": "Swap disks.", "services": [s.pk for s in services],
        "starts_at_0": f"{start:%Y-%m-%d}", "starts_at_1": f"{start:%H:%M:%S}",
        "ends_at_0": f"{end:%Y-%m-%d}", "ends_at_1": f"{end:%H:%M:%S}", "impact": "downtime", **extra,
    }  # fmt: skip


def test_a_window_published_changed_and_cancelled_in_the_admin_is_audited(client, lena, acme_contract):
    backup = acme_contract.services.get()
    client.force_login(lena)
    start = datetime(2026, 11, 10, 22, 0, tzinfo=NBO)
    saved(
        client.post(
            reverse("admin:contracts_maintenancewindow_add"), window_form(start, start + timedelta(hours=2), [backup])
        )
    )
    window = MaintenanceWindow.objects.get()
    later = start + timedelta(days=1)
    change = reverse("admin:contracts_maintenancewindow_change", args=[window.pk])
    saved(client.post(change, window_form(later, later + timedelta(hours=2), [backup])))
    changelist = reverse("admin:contracts_maintenancewindow_changelist")
    saved(client.post(changelist, {"action": "cancel_windows", "_selected_action": [window.pk]}))
    log = entries("maintenance.")
    assert [(action, actor) for action, actor, _, _ in log] == [
        ("maintenance.published", lena.email),
        ("maintenance.changed", lena.email),
        ("maintenance.cancelled", lena.email),
    ]
    published, changed, cancelled = (e[2:] for e in log)
    assert published[0] == {} and published[1]["starts_at"] == "2026-11-10 19:00:00+00:00"
    assert published[1]["services"] == ["Cloud Backup"] and published[1]["impact"] == "downtime"
    assert (
        changed[0]["starts_at"] == "2026-11-10 19:00:00+00:00"
        and changed[1]["starts_at"] == "2026-11-11 19:00:00+00:00"
    )
    assert changed[0]["ends_at"] == "2026-11-10 21:00:00+00:00" and changed[1]["ends_at"] == "2026-11-11 21:00:00+00:00"
    assert "title" not in changed[1]  # only what changed
    assert cancelled == ({"status": "scheduled"}, {"status": "cancelled", "cancelled_at": "2026-11-03 07:00:00+00:00"})


def test_a_windows_title_alone_changed_is_audited_and_an_unchanged_save_is_not(lena, acme_contract):
    backup = acme_contract.services.get()
    start = datetime(2026, 11, 10, 22, 0, tzinfo=NBO)
    fields = {"title": "Disks", "description": "Swap.", "services": [backup], "starts_at": start, "ends_at": start + timedelta(hours=2), "impact": "downtime"}  # fmt: skip
    window = window_publish(actor=lena, **fields)
    window_update(window=window, actor=lena, **fields)
    assert [e[0] for e in entries("maintenance.")] == ["maintenance.published"]
    window_update(window=window, actor=lena, **{**fields, "title": "Disks and fans"})
    assert entries("maintenance.")[-1] == (
        "maintenance.changed", lena.email, {"title": "Disks"}, {"title": "Disks and fans"}
    )  # fmt: skip


def test_a_window_deleted_and_one_cancelled_by_a_service_are_audited(lena, acme_contract):
    backup = acme_contract.services.get()
    start = datetime(2026, 12, 20, 22, 0, tzinfo=NBO)
    fields = {"description": "x", "services": [backup], "starts_at": start, "ends_at": start + timedelta(hours=1)}
    gone = window_publish(actor=lena, title="Never told", **fields)
    window_delete(window=gone, actor=lena)
    (action, actor, before, after) = entries("maintenance.")[-1]
    assert (action, actor, after) == ("maintenance.deleted", lena.email, {})
    assert before["title"] == "Never told" and before["services"] == ["Cloud Backup"]
    kept = window_publish(actor=lena, title="Told", **fields)
    window_cancel(window=kept)  # no actor: the system (a command)
    assert entries("maintenance.")[-1][:2] == ("maintenance.cancelled", "")


# --- A claim's settlement -------------------------------------------------------------------------
@pytest.fixture
def approved(acme_contract, alice, ayo) -> Claim:
    """October down for 12 hours (a credit is due), claimed and approved."""
    outage_record(
        actor=ayo, title="Down", services=list(acme_contract.services.all()),
        starts_at=datetime(2026, 10, 10, 8, 0, tzinfo=UTC), ends_at=datetime(2026, 10, 10, 20, 0, tzinfo=UTC),
    )  # fmt: skip
    close_month(month=date(2026, 10, 1), now=NOW)
    claim = claim_submit(user=alice, contract=acme_contract, month=date(2026, 10, 1), note="Down on the 10th.")
    return claim_approve(claim=claim, actor=ayo)


def test_a_claims_settlement_is_audited_with_its_amount(client, approved, ayo):
    claim = approved
    client.force_login(ayo)
    saved(client.post(reverse("admin:credits_claim_settle", args=[claim.pk])))
    claim.refresh_from_db()
    assert claim.status == Claim.Status.SETTLED
    assert entries("claim.settled") == [
        (
            "claim.settled",
            ayo.email,
            {"status": "approved"},
            {"status": "settled", "amount": str(claim.amount), "currency": "KES", "credit_kind": claim.credit_kind},
        )
    ]


def test_settling_through_the_service_is_audited_too(approved, ayo):
    claim_settle(claim=approved, actor=ayo)
    assert [e[:2] for e in entries("claim.settled")] == [("claim.settled", ayo.email)]


# --- The login lockouts' clean-up -----------------------------------------------------------------
def test_the_lockouts_clean_up_needs_the_permission_to_lift_a_lockout(client, sol):
    """django-axes offered its clean-up (which deletes attempts) to whoever could read the list."""
    reader = StaffFactory(email="reader@vendor.example", staff_role="")
    reader.user_permissions.add(Permission.objects.get(codename="view_accessattempt"))
    AccessAttempt.objects.create(
        username="bob@acme.example", ip_address="198.51.100.1", user_agent="x", http_accept="*/*",
        path_info="/accounts/login/", attempt_time=NOW - timedelta(days=30), failures_since_start=5,
    )  # fmt: skip
    url = reverse("admin:axes_accessattempt_changelist")
    for user, offered in ((reader, False), (sol, True)):
        client.force_login(user)
        form = client.get(url).context["action_form"]  # None: no action at all
        actions = [name for name, _ in form.fields["action"].choices] if form else []
        assert ("cleanup_expired_attempts" in actions) is offered, user.email
    client.force_login(reader)
    response = client.post(url, {"action": "cleanup_expired_attempts", "_selected_action": []})
    assert AccessAttempt.objects.count() == 1 and response.status_code in (200, 302)


# --- What customers read of the terms and services; lifting a lockout ---------------------------
def test_an_slas_name_and_vendor_changed_in_the_admin_are_audited(ayo_client, ayo):
    sla = SLA.objects.get(template_key="klart-ai")
    url = reverse("admin:contracts_sla_change", args=[sla.pk])
    data = change_form(ayo_client, url, "sla_form")
    data.update(name=["Klart AI service terms"], vendor=["Klart AB"])
    saved(ayo_client.post(url, data))
    ((action, actor, before, after),) = entries("sla.")
    assert (action, actor) == ("sla.changed", ayo.email)
    assert (before["name"], after["name"], after["vendor"]) == (sla.name, "Klart AI service terms", "Klart AB")
    saved(ayo_client.post(url, data))
    assert len(entries("sla.")) == 1  # saved unchanged: no entry


def test_a_services_name_changed_in_the_admin_is_audited_without_its_token(client, ada):
    service = ServiceFactory(name="Cloud Backup", slug="cloud-backup")
    service.webhook_token_hash = "f" * 64
    service.save()
    client.force_login(ada)
    url = reverse("admin:contracts_service_change", args=[service.pk])
    data = change_form(client, url, "service_form")
    data.update(name=["Cloud Backup and Restore"])
    saved(client.post(url, data))
    ((action, actor, before, after),) = entries("service.")
    assert (action, actor, before["name"], after["name"]) == (
        "service.changed", ada.email, "Cloud Backup", "Cloud Backup and Restore"
    )  # fmt: skip
    assert "webhook_token_hash" not in before and "webhook_token_hash" not in after


def test_lifting_a_login_lockout_is_audited(client, sol):
    attempt = AccessAttempt.objects.create(
        username="bob@acme.example", ip_address="198.51.100.1", user_agent="x", http_accept="*/*",
        path_info="/accounts/login/", failures_since_start=5,
    )  # fmt: skip
    client.force_login(sol)
    response = client.post(reverse("admin:axes_accessattempt_delete", args=[attempt.pk]), {"post": "yes"})
    assert response.status_code == 302 and not AccessAttempt.objects.exists()
    ((action, actor, before, after),) = entries("lockout.")
    assert (action, actor, after) == ("lockout.deleted", sol.email, {})
    assert before == {"username": "bob@acme.example", "ip_address": "198.51.100.1", "failures": 5,
                      "attempt_time": NOW.astimezone(UTC).isoformat()}  # fmt: skip
