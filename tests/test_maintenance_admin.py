"""Staff schedule maintenance in the admin: "Preview rules" shows, for every contract the window
touches, whether it keeps that contract's maintenance rules and what it costs, before anything is
saved; saving publishes (or revises) the window; the cancel action tells everyone who was told."""

import re
from datetime import UTC, date, datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.messages import WARNING
from django.urls import reverse

from contracts.maintenance.judging import NOTICE_LEAD
from contracts.maintenance.services import window_publish
from contracts.maintenance.sweep import maintenance_notices_send_due
from contracts.models import MaintenanceNotice, MaintenanceWindow
from portal.models import OutboxMessage

from .factories import ContractFactory, ServiceFactory

pytestmark = pytest.mark.django_db

NBO = ZoneInfo("Africa/Nairobi")
H = timedelta(hours=1)
ADD = reverse("admin:contracts_maintenancewindow_add")


@pytest.fixture
def backup(db):
    return ServiceFactory(name="Cloud Backup", slug="cloud-backup")


@pytest.fixture
def staff_client(client, lena):
    client.force_login(lena)
    return client


def change_url(window) -> str:
    return reverse("admin:contracts_maintenancewindow_change", args=[window.pk])


def form(start: datetime, end: datetime, services, **extra) -> dict:
    """The add/change form as a browser submits it: the admin's split date and time, in UTC."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    return {
        "title": "Storage upgrade",
        "description": "Backups are paused while we swap disks.",
        "services": [s.pk for s in services],
        "starts_at_0": f"{start:%Y-%m-%d}",
        "starts_at_1": f"{start:%H:%M:%S}",
        "ends_at_0": f"{end:%Y-%m-%d}",
        "ends_at_1": f"{end:%H:%M:%S}",
        "impact": "downtime",
        **extra,
    }


def text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def rules_table(response) -> tuple[str, list[list[str]]]:
    """The heading and the rows (cell texts) of the rules table on the page."""
    html = response.content.decode()
    found = re.search(r'<fieldset class="module" id="maintenance-rules">(.*?)</fieldset>', html, re.S)
    assert found, "no rules table on the page"
    heading = text(re.search(r"<h2>(.*?)</h2>", found.group(1), re.S).group(1))
    rows = [
        [text(cell) for cell in re.findall(r"<td>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr class=\"rules-[a-z]+\">(.*?)</tr>", found.group(1), re.S)
    ]
    return heading, rows


def nothing_written():
    return not (
        MaintenanceWindow.objects.exists() or MaintenanceNotice.objects.exists() or OutboxMessage.objects.exists()
    )


# --- Preview ------------------------------------------------------------------------------------
def test_the_add_form_offers_a_preview(staff_client):
    html = staff_client.get(ADD).content.decode()
    assert '<input type="submit" value="Preview rules" name="_preview"' in html
    assert "maintenance-rules" not in html  # nothing to judge yet


def test_preview_of_a_window_running_past_offpeak_counts_the_hour_outside_it(staff_client, acme_contract, backup):
    # Kaluari (Nairobi, off-peak 22:00-06:00, 48 h notice, 12 h a year): 05:00-07:00, 3 days ahead.
    start = datetime(2026, 10, 11, 5, 0, tzinfo=NBO)
    with time_machine.travel(start - 72 * H, tick=False):
        response = staff_client.post(ADD, form(start, start + 2 * H, [backup], _preview="Preview rules"))
    assert response.status_code == 200
    assert nothing_written()
    heading, rows = rules_table(response)
    assert heading == "Maintenance rules per contract: preview of the values above (nothing is saved)"
    assert len(rows) == 1
    contract, local, notice, offpeak, kept, downtime, why = rows[0]
    assert contract.startswith("KAL-0001 Cloud Backup for Acme")
    assert local.startswith("2026-10-11 05:00 (UTC+03:00) – 2026-10-11 07:00 (UTC+03:00)")
    assert notice.startswith("yes goes out 2026-10-09 04:55 (UTC+03:00), 48 h 5 min before the start (48 h needed)")
    assert (offpeak.split()[0], kept, downtime) == ("60", "60", "60")
    assert why == "60 minutes counted as downtime (outside off-peak hours)"
    # The form comes back as submitted, with no error, ready to save.
    html = response.content.decode()
    assert 'value="Storage upgrade"' in html and "Please correct" not in html


def test_preview_of_a_window_published_30_hours_ahead_breaks_the_notice_rule(staff_client, acme_contract, backup):
    start = datetime(2026, 10, 11, 23, 0, tzinfo=NBO)
    with time_machine.travel(start - 30 * H, tick=False):
        response = staff_client.post(ADD, form(start, start + 2 * H, [backup], _preview="Preview rules"))
    assert nothing_written()
    [row] = rules_table(response)[1]
    assert row[2].startswith("no goes out 2026-10-10 17:00 (UTC+03:00), 30 h before the start (48 h needed)")
    assert row[5] == "120"
    assert row[6] == "120 minutes counted as downtime (notice shorter than 48 h)"


def test_preview_counts_the_contracts_earlier_windows_against_the_annual_cap(
    staff_client, acme_contract, globex_contract, backup, lena
):
    # March: two 5-hour off-peak windows, announced in time, keep the rules: 10 of the 12 hours.
    for day in (2, 9):
        start = datetime(2026, 3, day, 22, 0, tzinfo=NBO)
        with time_machine.travel(datetime(2026, 2, 1, tzinfo=NBO), tick=False):
            window_publish(
                title=f"March {day}", description="", services=[backup], starts_at=start, ends_at=start + 5 * H
            )
        maintenance_notices_send_due(now=start - 48 * H)
    start = datetime(2026, 10, 11, 23, 0, tzinfo=NBO)
    with time_machine.travel(start - 5 * 24 * H, tick=False):
        response = staff_client.post(ADD, form(start, start + 3 * H, [backup], _preview="Preview rules"))
    assert MaintenanceWindow.objects.count() == 2  # the preview added none
    rows = rules_table(response)[1]
    # Every contract on Cloud Backup is judged (Globex's is on it too, under the same terms).
    assert [r[0].split()[0] for r in rows] == ["KAL-0001", "KLA-0001"]
    for row in rows:  # 23:00-02:00 is all off-peak, but only 2 of the year's 12 hours are left
        assert (row[4], row[5]) == ("120", "60")
        assert row[6] == "60 minutes counted as downtime (annual cap of 12 h used up)"


def test_preview_with_invalid_values_shows_the_error_and_no_table(staff_client, acme_contract, backup):
    start = datetime(2026, 10, 11, 23, 0, tzinfo=NBO)
    response = staff_client.post(ADD, form(start, start - H, [backup], _preview="Preview rules"))
    assert response.status_code == 200
    assert "The window must end after it starts." in response.content.decode()
    assert "maintenance-rules" not in response.content.decode()
    assert nothing_written()


# --- Saving -------------------------------------------------------------------------------------
def test_saving_publishes_the_window_and_warns_of_the_broken_rules(staff_client, acme_contract, backup, lena):
    start = datetime(2026, 10, 11, 5, 0, tzinfo=NBO)
    now = start - 72 * H
    with time_machine.travel(now, tick=False):
        response = staff_client.post(ADD, form(start, start + 2 * H, [backup], _save="Save"), follow=True)
    assert response.redirect_chain[0][1] == 302
    w = MaintenanceWindow.objects.get()
    assert (w.revision, w.published_at, w.created_by, w.status) == (1, now, lena, "scheduled")
    assert w.notice_due_at == start - 48 * H - NOTICE_LEAD and w.reminder_due_at == start - H
    assert list(w.services.all()) == [backup]
    messages = [(m.level, m.message) for m in response.context["messages"]]
    assert (WARNING, "KAL-0001: 60 minutes counted as downtime (outside off-peak hours).") in messages
    assert not MaintenanceNotice.objects.exists()  # notices go out from the sweep

    # The change page shows the same judgement, read-only, for the saved window.
    with time_machine.travel(now + H, tick=False):
        page = staff_client.get(change_url(w))
    heading, [row] = rules_table(page)
    assert heading == "Maintenance rules per contract: as saved"
    assert row[6] == "60 minutes counted as downtime (outside off-peak hours)"


def saved_window(backup, start, now):
    with time_machine.travel(now, tick=False):
        return window_publish(
            title="Storage upgrade", description="Backups are paused while we swap disks.",
            services=[backup], starts_at=start, ends_at=start + 2 * H,
        )  # fmt: skip


def test_changing_the_start_in_the_admin_is_a_new_revision_and_the_description_is_not(
    staff_client, acme_contract, backup
):
    start = datetime(2026, 10, 11, 23, 0, tzinfo=NBO)
    w = saved_window(backup, start, start - 10 * 24 * H)
    now = start - 5 * 24 * H
    with time_machine.travel(now, tick=False):
        staff_client.post(change_url(w), form(start, start + 2 * H, [backup], description="Now with restores."))
        w.refresh_from_db()
        assert (w.revision, w.description) == (1, "Now with restores.")
        later = start + 24 * H
        response = staff_client.post(change_url(w), form(later, later + 2 * H, [backup]))
    assert response.status_code == 302
    w.refresh_from_db()
    assert (w.revision, w.published_at, w.starts_at, w.notice_due_at) == (2, now, later, later - 48 * H - NOTICE_LEAD)


def snapshot(window) -> dict:
    stored = MaintenanceWindow.objects.get(pk=window.pk)
    fields = {f.attname: getattr(stored, f.attname) for f in MaintenanceWindow._meta.concrete_fields}
    return {**fields, "services": sorted(stored.services.values_list("pk", flat=True))}


def test_preview_on_the_change_page_saves_nothing(staff_client, acme_contract, backup):
    start = datetime(2026, 10, 11, 23, 0, tzinfo=NBO)
    w = saved_window(backup, start, start - 10 * 24 * H)
    maintenance_notices_send_due(now=start - 48 * H)  # announced in time: the rules are kept
    before = snapshot(w)
    with time_machine.travel(start - 30 * H, tick=False):
        page = staff_client.get(change_url(w))
        assert rules_table(page)[1][0][6] == "Keeps every rule: nothing counted as downtime"
        assert rules_table(page)[1][0][2].startswith("yes sent 2026-10-09 23:00 (UTC+03:00), 48 h before the start")
        # Moving it an hour later now would be a new notice, 31 h ahead: too late for the hour it
        # adds; the hour the first notice announced in time keeps it.
        later = start + H
        response = staff_client.post(change_url(w), form(later, later + 2 * H, [backup], _preview="Preview rules"))
        # A new title alone keeps the notice already sent.
        same = staff_client.post(change_url(w), form(start, start + 2 * H, [backup], title="New title", _preview="1"))
    assert response.status_code == 200
    assert rules_table(response)[1][0][6] == "60 minutes counted as downtime (notice shorter than 48 h for part of it)"
    assert rules_table(response)[1][0][2].startswith("no sent 2026-10-09 23:00 (UTC+03:00), 49 h before the start")
    assert rules_table(same)[1][0][6] == "Keeps every rule: nothing counted as downtime"
    assert snapshot(w) == before
    assert MaintenanceNotice.objects.count() == 1


def test_the_rules_table_judges_only_the_contracts_running_at_the_window(staff_client, acme_contract, globex, backup):
    ContractFactory(
        organisation=globex, reference="KAL-OLD", name="Old backup", services=[backup],
        starts_on=date(2024, 1, 1), ends_on=date(2025, 12, 31),
    )  # fmt: skip
    start = datetime(2026, 10, 11, 23, 0, tzinfo=NBO)
    with time_machine.travel(start - 10 * 24 * H, tick=False):
        response = staff_client.post(ADD, form(start, start + 2 * H, [backup], _preview="Preview rules"))
        w = saved_window(backup, start, start - 10 * 24 * H)
        page = staff_client.get(change_url(w))
    for table in (rules_table(response), rules_table(page)):
        assert [row[0].split()[0] for row in table[1]] == [acme_contract.reference]


# --- Cancelling ---------------------------------------------------------------------------------
def test_the_cancel_action_tells_the_notified_contacts_and_leaves_a_read_only_window(
    staff_client, acme_contract, alice, bob, backup, mailoutbox, django_capture_on_commit_callbacks
):
    start = datetime(2026, 10, 11, 23, 0, tzinfo=NBO)
    w = saved_window(backup, start, start - 10 * 24 * H)
    maintenance_notices_send_due(now=start - 48 * H)
    changelist = reverse("admin:contracts_maintenancewindow_changelist")
    assert "delete_selected" not in staff_client.get(changelist).content.decode()
    with time_machine.travel(start - 24 * H, tick=False), django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            changelist, {"action": "cancel_windows", "_selected_action": [str(w.pk)]}, follow=True
        )
    assert any("is cancelled; 2 email(s) queued" in str(m) for m in response.context["messages"])
    cancellations = [m for m in mailoutbox if m.subject.startswith("Cancelled: maintenance")]
    assert sorted(m.to[0] for m in cancellations) == [alice.email, bob.email]
    w.refresh_from_db()
    assert w.status == "cancelled"
    page = staff_client.get(change_url(w)).content.decode()
    assert 'name="_save"' not in page and 'name="_preview"' not in page and "deletelink" not in page
    assert "Nothing counted as downtime (cancelled)" in text(page)
    # Changing it anyway is refused.
    assert staff_client.post(change_url(w), form(start, start + 2 * H, [backup])).status_code == 403


def test_the_cancel_action_refuses_a_window_that_has_started_and_cancels_the_others(
    staff_client, acme_contract, alice, bob, backup, mailoutbox, django_capture_on_commit_callbacks
):
    start = datetime(2026, 10, 11, 23, 0, tzinfo=NBO)
    started = saved_window(backup, start, start - 10 * 24 * H)
    later = saved_window(backup, start + 7 * 24 * H, start - 10 * 24 * H)
    maintenance_notices_send_due(now=start - 48 * H)
    maintenance_notices_send_due(now=start + 5 * 24 * H)  # the later window's notice
    started.refresh_from_db()
    later.refresh_from_db()
    changelist = reverse("admin:contracts_maintenancewindow_changelist")
    with time_machine.travel(start + H, tick=False), django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            changelist, {"action": "cancel_windows", "_selected_action": [str(started.pk), str(later.pk)]}, follow=True
        )
    messages = [(m.level_tag, str(m)) for m in response.context["messages"]]
    assert (
        "error",
        f"“{started}” was not cancelled: This window has already started: it can no longer be cancelled. "
        "Correct its times instead (an end moved to the moment the work stopped).",
    ) in messages
    assert ("success", f"“{later}” is cancelled; 2 email(s) queued.") in messages
    started.refresh_from_db()
    later.refresh_from_db()
    assert (started.status, later.status) == ("scheduled", "cancelled")
    cancellations = [m for m in mailoutbox if m.subject.startswith("Cancelled: maintenance")]
    assert (
        sorted(m.subject for m in cancellations)
        == ["Cancelled: maintenance on 2026-10-18 23:00 (UTC+03:00): Storage upgrade"] * 2
    )  # the later window's, to Alice and Bob


def test_a_window_nobody_was_told_of_can_be_deleted(staff_client, ada, acme_contract, backup):
    start = datetime(2026, 10, 11, 23, 0, tzinfo=NBO)
    w = saved_window(backup, start, start - 10 * 24 * H)
    assert "deletelink" not in staff_client.get(change_url(w)).content.decode()  # a lead cancels; no role deletes
    staff_client.force_login(ada)  # a superuser may delete it
    assert "deletelink" in staff_client.get(change_url(w)).content.decode()
    maintenance_notices_send_due(now=start - 48 * H)
    assert "deletelink" not in staff_client.get(change_url(w)).content.decode()
