"""Maintenance notices end to end: a window published by staff is announced when it enters its
48-hour horizon (at once, and marked short notice, when published later), reminded an hour before
it starts, announced again when its time or services change, and its cancellation is told to
everyone who heard of it. Frozen clocks; emails asserted as outbox rows and as sent mail."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from contracts.maintenance.judging import NOTICE_LEAD as LEAD
from contracts.maintenance.selectors import contract_maintenance_exclusions
from contracts.maintenance.services import window_cancel, window_publish, window_update
from contracts.maintenance.sweep import maintenance_notices_send_due
from contracts.models import SLA, MaintenanceNotice, MaintenanceWindow
from portal.models import OutboxMessage

from .factories import ContractFactory, ServiceFactory, UserFactory

pytestmark = pytest.mark.django_db

NBO = ZoneInfo("Africa/Nairobi")
PUBLISHED = datetime(2026, 10, 1, 9, 0, tzinfo=NBO)
START = datetime(2026, 10, 11, 23, 0, tzinfo=NBO)  # a Sunday night, inside Kaluari's 22:00-06:00 off-peak
H = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def backup(db):
    return ServiceFactory(name="Cloud Backup", slug="cloud-backup")


@pytest.fixture
def assistant(db):
    return ServiceFactory(name="AI Assistant", slug="ai-assistant")


@pytest.fixture
def globex_ai(globex, charlie, assistant):
    """Charlie's contract: Klart, on the AI Assistant only (never on Acme's Cloud Backup)."""
    klart = SLA.objects.get(template_key="klart-ai")
    return ContractFactory(
        organisation=globex, reference="KLA-0001", sla=klart, currency="SEK", services=[assistant], contacts=[charlie]
    )


@pytest.fixture
def sweep(django_capture_on_commit_callbacks):
    def run(at):
        with time_machine.travel(at, tick=False), django_capture_on_commit_callbacks(execute=True):
            return maintenance_notices_send_due()

    return run


def publish(at, services, start=START, hours=2, **kwargs):
    with time_machine.travel(at, tick=False):
        return window_publish(
            title=kwargs.pop("title", "Backup storage upgrade"),
            description=kwargs.pop("description", "Backups and restores are unavailable while we swap disks."),
            services=services, starts_at=start, ends_at=start + hours * H, **kwargs,
        )  # fmt: skip


def update(window, at, **changes):
    window = MaintenanceWindow.objects.get(pk=window.pk)
    fields = {
        "title": window.title, "description": window.description, "services": list(window.services.all()),
        "starts_at": window.starts_at, "ends_at": window.ends_at, "impact": window.impact, **changes,
    }  # fmt: skip
    with time_machine.travel(at, tick=False):
        return window_update(window=window, **fields)


def keys(kind):
    return set(OutboxMessage.objects.filter(key__contains=f":{kind}:").values_list("key", flat=True))


def key(window, revision, kind, contract, user):
    return f"maintenance:{window.pk}:r{revision}:{kind}:contract:{contract.pk}:user:{user.pk}"


def sent_to(user):
    return [m for m in mail.outbox if m.to == [user.email]]


# --- Announcements ------------------------------------------------------------------------------
def test_a_window_published_ten_days_ahead_is_announced_48_hours_before_its_start(
    acme_contract, alice, bob, globex_ai, charlie, backup, sweep
):
    w = publish(PUBLISHED, [backup])
    assert w.revision == 1 and w.published_at == PUBLISHED
    assert w.notice_due_at == START - 48 * H - LEAD and w.reminder_due_at == START - H

    assert sweep(START - 48 * H - LEAD - MINUTE) == 0
    assert not OutboxMessage.objects.exists() and mail.outbox == []

    assert sweep(START - 48 * H - LEAD) == 1  # one notice row: the one contract on Cloud Backup
    notice = MaintenanceNotice.objects.get()
    assert (notice.contract, notice.revision, notice.kind, notice.sent_at, notice.short_notice) == (
        acme_contract, 1, "announce", START - 48 * H - LEAD, False,
    )  # fmt: skip
    assert keys("announce") == {key(w, 1, "announce", acme_contract, u) for u in (alice, bob)}
    assert sorted(m.to[0] for m in mail.outbox) == [alice.email, bob.email]
    to_alice = sent_to(alice)[0]
    assert to_alice.subject == "Scheduled maintenance on 2026-10-11 23:00 (UTC+03:00): Backup storage upgrade"
    assert "Starts:      2026-10-11 23:00 (UTC+03:00)" in to_alice.body
    assert "Ends:        2026-10-12 01:00 (UTC+03:00)" in to_alice.body
    assert "Services:    Cloud Backup" in to_alice.body
    assert "Impact:      Downtime (services unavailable)" in to_alice.body
    assert "Backups and restores are unavailable while we swap disks." in to_alice.body
    assert "http://127.0.0.1:8000/maintenance/" in to_alice.body
    assert "SHORT NOTICE" not in to_alice.body
    html = to_alice.alternatives[0][0]
    assert "2026-10-11 23:00 (UTC+03:00)" in html and 'href="http://127.0.0.1:8000/maintenance/"' in html
    assert sent_to(charlie) == []
    w.refresh_from_db()
    assert w.notice_due_at is None

    # A second sweep at the same moment, and later ones before the reminder, send nothing.
    assert sweep(START - 48 * H - LEAD) == 0
    assert sweep(START - H - MINUTE) == 0
    assert len(mail.outbox) == 2

    # The notice went out 48 hours ahead and the window is off-peak: all of it is excluded.
    kept, broken = contract_maintenance_exclusions(
        acme_contract, datetime(2026, 10, 1, tzinfo=NBO), datetime(2026, 11, 1, tzinfo=NBO)
    )
    assert kept == [(START.astimezone(UTC), (START + 2 * H).astimezone(UTC))] and broken == []


def test_the_reminder_goes_out_an_hour_before_the_start_once(acme_contract, alice, bob, backup, sweep):
    w = publish(PUBLISHED, [backup])
    sweep(START - 48 * H - LEAD)
    mail.outbox.clear()
    assert sweep(START - H) == 1
    assert keys("reminder") == {key(w, 1, "reminder", acme_contract, u) for u in (alice, bob)}
    assert (
        sent_to(alice)[0].subject == "Reminder: maintenance starts 2026-10-11 23:00 (UTC+03:00): Backup storage upgrade"
    )
    assert "starts within the hour" in sent_to(alice)[0].body
    assert sweep(START - H) == 0 and sweep(START) == 0
    assert len(mail.outbox) == 2
    w.refresh_from_db()
    assert w.reminder_due_at is None


def test_a_window_published_30_hours_ahead_is_announced_at_once_as_short_notice(
    acme_contract, alice, bob, backup, sweep
):
    published = START - 30 * H
    w = publish(published, [backup])
    assert w.notice_due_at == published
    assert sweep(published) == 1
    notice = MaintenanceNotice.objects.get()
    assert notice.short_notice and notice.sent_at == published and notice.kind == "announce"
    to_bob = sent_to(bob)[0]
    assert to_bob.subject == "Short-notice maintenance on 2026-10-11 23:00 (UTC+03:00): Backup storage upgrade"
    assert "SHORT NOTICE: this notice reaches you less than 48 h before the start" in to_bob.body
    assert "counts as ordinary downtime in your monthly uptime" in to_bob.body
    assert "Short notice:" in to_bob.alternatives[0][0]
    # Short notice breaks the rule: the whole window is ordinary downtime.
    kept, broken = contract_maintenance_exclusions(acme_contract, START - 24 * H, START + 24 * H)
    assert kept == [] and broken == [(START.astimezone(UTC), (START + 2 * H).astimezone(UTC))]


def test_a_window_published_less_than_an_hour_ahead_gets_no_separate_reminder(acme_contract, backup, sweep):
    w = publish(START - 30 * MINUTE, [backup])
    assert w.reminder_due_at is None
    sweep(START - 30 * MINUTE)
    assert keys("announce") and not keys("reminder")


def test_a_window_recorded_after_it_ended_is_not_announced(acme_contract, backup, sweep):
    w = publish(START + 3 * H, [backup])
    assert w.notice_due_at is None and w.reminder_due_at is None
    assert sweep(START + 3 * H) == 0


# --- Changes ------------------------------------------------------------------------------------
def test_moving_the_start_sends_one_update_and_a_new_description_sends_nothing(
    acme_contract, alice, bob, backup, sweep
):
    w = publish(PUBLISHED, [backup])
    sweep(START - 48 * H - LEAD)  # announced
    mail.outbox.clear()
    edited_at = START - 37 * H
    new_start = START + 24 * H
    w = update(w, edited_at, starts_at=new_start, ends_at=new_start + 2 * H)
    assert w.revision == 2 and w.published_at == edited_at
    # Customers were told of the old time: they hear of the change at once, not 48 h before.
    assert w.notice_due_at == edited_at and w.reminder_due_at == new_start - H
    assert sweep(edited_at) == 1
    notice = MaintenanceNotice.objects.get(revision=2)
    assert (notice.kind, notice.short_notice) == ("update", False)  # 61 hours before the new start
    assert keys("update") == {key(w, 2, "update", acme_contract, u) for u in (alice, bob)}
    to_alice = sent_to(alice)[0]
    assert to_alice.subject == "Changed maintenance, now 2026-10-12 23:00 (UTC+03:00): Backup storage upgrade"
    assert "This notice replaces the earlier one." in to_alice.body
    assert "Starts:      2026-10-12 23:00 (UTC+03:00)" in to_alice.body

    w = update(w, edited_at + H, description="We also upgrade the restore nodes.", title="Storage and restore upgrade")
    assert w.revision == 2 and w.notice_due_at is None
    assert sweep(edited_at + H) == 0
    assert len(mail.outbox) == 2
    # The reminder is of the latest revision, and shows the latest description.
    sweep(new_start - H)
    assert keys("reminder") == {key(w, 2, "reminder", acme_contract, u) for u in (alice, bob)}
    assert "We also upgrade the restore nodes." in sent_to(alice)[-1].body


def test_a_change_before_the_first_notice_is_announced_once_at_the_new_horizon(
    acme_contract, alice, bob, backup, sweep
):
    w = publish(PUBLISHED, [backup])
    new_start = START + 48 * H
    w = update(w, PUBLISHED + H, starts_at=new_start, ends_at=new_start + H)
    assert w.revision == 2 and w.notice_due_at == new_start - 48 * H - LEAD
    assert sweep(START - 48 * H - LEAD) == 0  # the old horizon: nothing
    assert sweep(new_start - 48 * H - LEAD) == 1
    # Nobody had heard of revision 1: it is an announcement, not an update.
    assert MaintenanceNotice.objects.get().kind == "announce"
    assert keys("announce") == {key(w, 2, "announce", acme_contract, u) for u in (alice, bob)}


def test_a_service_dropped_from_a_window_tells_its_contract_it_is_no_longer_affected(
    acme_contract, alice, globex_ai, charlie, backup, assistant, sweep
):
    w = publish(PUBLISHED, [backup, assistant])
    sweep(START - 48 * H - LEAD)
    assert {m.to[0] for m in mail.outbox} == {alice.email, "bob@acme.example", charlie.email}
    assert "Services:    AI Assistant" in sent_to(charlie)[0].body  # only the services of their contract
    assert "Europe/Stockholm" not in sent_to(charlie)[0].subject
    assert "2026-10-11 22:00 (UTC+02:00)" in sent_to(charlie)[0].subject  # Klart: Stockholm time
    mail.outbox.clear()

    w = update(w, START - 40 * H, services=[backup])
    sweep(START - 40 * H)
    to_charlie = sent_to(charlie)
    assert len(to_charlie) == 1
    assert to_charlie[0].subject == "Maintenance no longer affects your services: Backup storage upgrade"
    assert "no longer touches the services of your contract KLA-0001" in to_charlie[0].body
    # Its calendar file cancels the event his first notice added (as his feed no longer lists it).
    (ics,) = [p for p in to_charlie[0].message().walk() if p.get_filename() == "maintenance.ics"]
    text = ics.get_payload(decode=True).decode()
    assert "STATUS:CANCELLED" in text and "SUMMARY:Cancelled: Maintenance:" in text and "SEQUENCE:2" in text
    (kept,) = [p for p in sent_to(alice)[0].message().walk() if p.get_filename() == "maintenance.ics"]
    assert "STATUS:CONFIRMED" in kept.get_payload(decode=True).decode()
    assert sent_to(alice)[0].subject.startswith("Changed maintenance")
    mail.outbox.clear()

    # Cancelled later: Charlie was told it no longer concerns him, so he is not told again.
    with time_machine.travel(START - 30 * H, tick=False):
        window_cancel(window=w)
    assert not any(k.endswith(f"user:{charlie.pk}") for k in keys("cancel"))
    sweep(START - H)
    assert not any(k.endswith(f"user:{charlie.pk}") for k in keys("reminder"))


# --- Corrections: the minutes announced in time stay excluded -----------------------------------
OCTOBER = (datetime(2026, 10, 1, tzinfo=NBO), datetime(2026, 11, 1, tzinfo=NBO))


def utc(start, end):
    return (start.astimezone(UTC), end.astimezone(UTC))


def test_a_window_that_ended_early_keeps_its_announced_minutes_excluded(acme_contract, alice, backup, sweep):
    w = publish(PUBLISHED, [backup])  # 23:00-01:00, announced 48 h ahead
    sweep(START - 48 * H - LEAD)
    mail.outbox.clear()
    # The work took one hour: staff record the real end the next morning (a new revision, not announced).
    w = update(w, START + 10 * H, ends_at=START + H)
    assert (w.revision, w.notice_due_at) == (2, None)
    assert sweep(START + 10 * H) == 0 and mail.outbox == []
    notice = MaintenanceNotice.objects.get()
    assert (notice.revision, notice.starts_at, notice.ends_at, notice.service_ids) == (
        1,
        START,
        START + 2 * H,
        [backup.pk],
    )
    with time_machine.travel(START + 11 * H, tick=False):
        assert contract_maintenance_exclusions(acme_contract, *OCTOBER) == ([utc(START, START + H)], [])


def test_extending_a_running_window_counts_only_the_extension_as_downtime(acme_contract, alice, backup, sweep):
    w = publish(PUBLISHED, [backup])
    sweep(START - 48 * H - LEAD)
    mail.outbox.clear()
    # The swap runs over: at 00:30 staff extend it by 30 minutes, told at once (after the start).
    w = update(w, START + 1.5 * H, ends_at=START + 2.5 * H)
    assert sweep(START + 1.5 * H) == 1
    assert MaintenanceNotice.objects.get(revision=2).short_notice
    assert [m.subject for m in sent_to(alice)] == [
        "Changed maintenance at short notice, now 2026-10-11 23:00 (UTC+03:00): Backup storage upgrade"
    ]
    with time_machine.travel(START + 4 * H, tick=False):
        kept, broken = contract_maintenance_exclusions(acme_contract, *OCTOBER)
    assert kept == [utc(START, START + 2 * H)]
    assert broken == [utc(START + 2 * H, START + 2.5 * H)]


def test_a_service_added_inside_the_notice_hours_is_downtime_only_for_the_contract_first_told_late(
    acme_contract, alice, globex_ai, charlie, backup, assistant, sweep
):
    w = publish(PUBLISHED, [backup])
    sweep(START - 48 * H - LEAD)
    update(w, START - 30 * H, services=[backup, assistant])
    sweep(START - 30 * H)
    with time_machine.travel(START + 3 * H, tick=False):
        # Acme's Cloud Backup was announced 48 h ahead: still excluded.
        assert contract_maintenance_exclusions(acme_contract, *OCTOBER) == ([utc(START, START + 2 * H)], [])
        # Globex hears of it 30 h ahead: all of it is downtime for its AI Assistant.
        assert contract_maintenance_exclusions(globex_ai, *OCTOBER) == ([], [utc(START, START + 2 * H)])


def test_minutes_a_notice_took_back_are_judged_on_the_notice_that_announced_them_again(acme_contract, backup, sweep):
    w = publish(PUBLISHED, [backup])
    sweep(START - 48 * H - LEAD)  # tonight, announced in time
    w = update(w, START - 47 * H, starts_at=START + 7 * 24 * H, ends_at=START + 7 * 24 * H + 2 * H)
    sweep(START - 47 * H)  # moved a week later: tonight is off
    update(w, START - 30 * H, starts_at=START, ends_at=START + 2 * H)
    sweep(START - 30 * H)  # back to tonight, 30 h ahead
    with time_machine.travel(START + 3 * H, tick=False):
        assert contract_maintenance_exclusions(acme_contract, *OCTOBER) == ([], [utc(START, START + 2 * H)])


def test_the_migration_records_what_each_current_revisions_notice_told(acme_contract, backup, assistant, sweep):
    import importlib

    from django.apps import apps

    w = publish(PUBLISHED, [backup])
    sweep(START - 48 * H - LEAD)
    update(w, START - 40 * H, ends_at=START + H, services=[backup, assistant])
    sweep(START - 40 * H)
    MaintenanceNotice.objects.update(starts_at=None, ends_at=None, impact="", service_ids=[])  # as before it
    importlib.import_module("contracts.migrations.0017_maintenance_notice_revision").current_revisions(apps, None)
    told = dict(MaintenanceNotice.objects.values_list("revision", "starts_at"))
    assert told == {1: None, 2: START}  # revision 1's times are kept nowhere: it announces nothing
    notice = MaintenanceNotice.objects.get(revision=2)
    assert (notice.ends_at, notice.impact, notice.service_ids) == (
        START + H,
        "downtime",
        sorted([backup.pk, assistant.pk]),
    )


# --- Cancellation -------------------------------------------------------------------------------
def test_cancelling_tells_each_contact_who_was_notified_once_and_stops_the_reminder(
    acme_contract, alice, bob, globex_ai, charlie, backup, sweep, django_capture_on_commit_callbacks
):
    w = publish(PUBLISHED, [backup])
    sweep(START - 48 * H - LEAD)
    mail.outbox.clear()
    cancelled_at = START - 10 * H
    with time_machine.travel(cancelled_at, tick=False), django_capture_on_commit_callbacks(execute=True):
        assert window_cancel(window=w) == 2
        assert window_cancel(window=w) == 0  # again: nothing
    assert keys("cancel") == {key(w, 1, "cancel", acme_contract, u) for u in (alice, bob)}
    assert sent_to(alice)[0].subject == "Cancelled: maintenance on 2026-10-11 23:00 (UTC+03:00): Backup storage upgrade"
    assert "CANCELLED" in sent_to(alice)[0].body
    notice = MaintenanceNotice.objects.get(kind="cancel")
    assert (notice.contract, notice.sent_at) == (acme_contract, cancelled_at)
    w.refresh_from_db()
    assert (w.status, w.cancelled_at, w.notice_due_at, w.reminder_due_at) == ("cancelled", cancelled_at, None, None)
    assert sweep(START - H) == 0
    assert len(mail.outbox) == 2
    # A cancelled window is no scheduled downtime: nothing to exclude, nothing counted.
    assert contract_maintenance_exclusions(acme_contract, START - 24 * H, START + 24 * H) == ([], [])


def test_cancelling_before_any_notice_tells_nobody(acme_contract, backup, sweep):
    w = publish(PUBLISHED, [backup])
    with time_machine.travel(PUBLISHED + H, tick=False):
        assert window_cancel(window=w) == 0
    assert sweep(START - 48 * H - LEAD) == 0 and sweep(START - H) == 0
    assert not OutboxMessage.objects.exists() and not MaintenanceNotice.objects.exists()


def test_a_cancelled_window_cannot_be_changed(acme_contract, backup):
    from contracts.maintenance.services import MaintenanceError

    w = publish(PUBLISHED, [backup])
    with time_machine.travel(PUBLISHED + H, tick=False):
        window_cancel(window=w)
    with pytest.raises(MaintenanceError):
        update(w, PUBLISHED + 2 * H, starts_at=START + H, ends_at=START + 2 * H)


@pytest.mark.parametrize("at", [START, START + H, START + 3 * H], ids=["at-its-start", "running", "ended"])
def test_a_window_that_has_started_cannot_be_cancelled(acme_contract, alice, backup, sweep, at):
    """A cancellation says the window "will not take place" and takes its downtime out of uptime:
    once it has started, staff correct its times instead. A short-notice window's two hours stay
    ordinary downtime, and nobody is told it will not take place."""
    from contracts.maintenance.services import MaintenanceError

    w = publish(START - 30 * H, [backup])  # short notice: all of it is downtime
    sweep(START - 30 * H)
    mail.outbox.clear()
    with time_machine.travel(at, tick=False), pytest.raises(MaintenanceError, match="Correct its times instead"):
        window_cancel(window=w)
    sweep(at)
    w.refresh_from_db()
    assert (w.status, w.cancelled_at) == ("scheduled", None)
    assert not MaintenanceNotice.objects.filter(kind="cancel").exists()
    assert not [m for m in mail.outbox if "will not take place" in m.body]
    with time_machine.travel(START + 3 * H, tick=False):
        kept, broken = contract_maintenance_exclusions(acme_contract, START - 24 * H, START + 24 * H)
    assert (kept, broken) == ([], [(START.astimezone(UTC), (START + 2 * H).astimezone(UTC))])


def test_a_window_can_be_cancelled_until_its_start(
    acme_contract, alice, backup, sweep, django_capture_on_commit_callbacks
):
    w = publish(PUBLISHED, [backup])
    sweep(START - 48 * H - LEAD)
    with time_machine.travel(START - MINUTE, tick=False), django_capture_on_commit_callbacks(execute=True):
        assert window_cancel(window=w) == 2
    assert any("will not take place" in m.body for m in sent_to(alice))


# --- Who is told --------------------------------------------------------------------------------
def test_only_active_contacts_of_the_contracts_organisation_are_told(acme_contract, alice, bob, backup, sweep):
    bob.is_active = False
    bob.save()
    outsider = UserFactory(email="olga@other.example")  # another organisation's user, wrongly a contact
    acme_contract.contacts.add(outsider)
    w = publish(PUBLISHED, [backup])
    sweep(START - 48 * H - LEAD)
    assert keys("announce") == {key(w, 1, "announce", acme_contract, alice)}


@pytest.mark.parametrize(
    ("starts_on", "ends_on", "told"),
    [
        (date(2024, 1, 1), date(2025, 12, 31), False),  # ended last year
        (date(2027, 1, 1), None, False),  # signed, not begun
        (date(2024, 1, 1), date(2026, 10, 11), True),  # its last day is the window's first (Nairobi)
        (date(2026, 10, 12), None, True),  # its first day is the window's last (Nairobi)
    ],
    ids=["ended", "not-begun", "ends-that-night", "begins-that-night"],
)
def test_only_contracts_running_at_the_window_are_told_and_reminded(
    acme_contract, alice, globex, charlie, backup, sweep, starts_on, ends_on, told
):
    other = ContractFactory(
        organisation=globex, reference="KAL-OTHER", services=[backup], contacts=[charlie],
        starts_on=starts_on, ends_on=ends_on,
    )  # fmt: skip
    w = publish(PUBLISHED, [backup])  # 23:00-01:00 Nairobi, 11-12 October
    sweep(START - 48 * H - LEAD)
    sweep(START - H)
    assert MaintenanceNotice.objects.filter(contract=other).exists() is told
    assert bool(sent_to(charlie)) is told
    assert bool(keys("reminder") & {key(w, 1, "reminder", other, charlie)}) is told
    assert len(sent_to(alice)) == 2  # Acme's running contract: the announcement and the reminder


def test_a_contract_that_has_ended_sets_no_notice_hours(acme_contract, globex, charlie, backup):
    """Its terms asked for 96 hours' notice; the window is announced on the running contract's 48."""
    from contracts.services import sla_copy

    own = sla_copy(
        source=SLA.objects.get(template_key="kaluari-cloud-backup"), name="Globex's old terms",
        effective_from=datetime(2024, 1, 1, tzinfo=NBO), now=datetime(2023, 12, 1, tzinfo=NBO),
    )  # fmt: skip
    own.versions.update(maintenance_notice=96 * H)  # as staff wrote them before publishing
    old = ContractFactory(
        organisation=globex, sla=own, services=[backup], contacts=[charlie],
        starts_on=date(2024, 1, 1), ends_on=date(2025, 12, 31),
    )  # fmt: skip
    assert publish(PUBLISHED, [backup]).notice_due_at == START - 48 * H - LEAD
    old.ends_on = None  # the same contract, still running: its 96 hours count
    old.save()
    assert publish(PUBLISHED, [backup], title="Again").notice_due_at == START - 96 * H - LEAD


def test_a_notice_that_reached_nobody_earns_no_exclusion_and_is_not_tried_again(
    acme_contract, alice, bob, backup, sweep
):
    """Acme's one designated contact has left and Bob turned maintenance emails off: nobody is told,
    so the window is ordinary downtime, and the sweep does not try again every minute."""
    from django.utils import timezone

    from contracts.maintenance.selectors import window_judgements
    from portal.models import NotificationPreference

    acme_contract.contacts.set([alice])
    alice.is_active = False
    alice.save()
    NotificationPreference.objects.create(
        user=bob, kind="maintenance", enabled=False, updated_at=timezone.now(), via="page"
    )
    w = publish(PUBLISHED, [backup])
    assert sweep(START - 48 * H - LEAD) == 1
    assert not OutboxMessage.objects.filter(key__startswith="maintenance:").exists() and mail.outbox == []
    notice = MaintenanceNotice.objects.get()
    assert (notice.kind, notice.reached_nobody, notice.sent_at) == ("announce", True, START - 48 * H - LEAD)
    w.refresh_from_db()
    assert w.notice_due_at is None
    assert sweep(START - 48 * H) == 0 and MaintenanceNotice.objects.count() == 1  # recorded once
    with time_machine.travel(START + 3 * H, tick=False):
        assert contract_maintenance_exclusions(acme_contract, *OCTOBER) == ([], [utc(START, START + 2 * H)])
        (row,) = window_judgements(w)
    # Staff see why in the rules table (and the dashboard's reasons).
    assert row.summary == "120 minutes counted as downtime (its notice reached nobody)"
    assert row.notice_ok is False
    assert row.notice_description == (
        "sent 2026-10-09 22:55 (UTC+03:00), 48 h 5 min before the start (48 h needed), "
        "but it reached nobody (no active contact gets maintenance emails)"
    )


def test_a_notice_that_reached_someone_is_recorded_as_reaching_them(acme_contract, alice, backup, sweep):
    publish(PUBLISHED, [backup])
    sweep(START - 48 * H - LEAD)
    assert MaintenanceNotice.objects.get().reached_nobody is False
    with time_machine.travel(START + 3 * H, tick=False):
        assert contract_maintenance_exclusions(acme_contract, *OCTOBER) == ([utc(START, START + 2 * H)], [])


def test_a_contact_of_two_affected_contracts_gets_one_notice_per_contract(acme_contract, alice, backup, sweep):
    archive = ContractFactory(organisation=acme_contract.organisation, reference="KAL-0002", contacts=[alice])
    w = publish(PUBLISHED, [backup])
    assert sweep(START - 48 * H - LEAD) == 2
    assert {k for k in keys("announce") if k.endswith(f"user:{alice.pk}")} == {
        key(w, 1, "announce", acme_contract, alice),
        key(w, 1, "announce", archive, alice),
    }


# --- The sweep's cost and the task -------------------------------------------------------------
def statements(ctx) -> list[str]:
    """The queries run, without the savepoints of the test's own transaction."""
    return [q["sql"] for q in ctx.captured_queries if "SAVEPOINT" not in q["sql"]]


def test_a_sweep_with_nothing_due_is_two_queries(acme_contract, backup):
    publish(PUBLISHED, [backup])
    with CaptureQueriesContext(connection) as ctx:
        assert maintenance_notices_send_due(now=PUBLISHED + H) == 0
    assert len(statements(ctx)) == 2, statements(ctx)  # notices due? reminders due?


def queries_to_announce(services, n: int, batch: int) -> int:
    MaintenanceWindow.objects.all().delete()
    for i in range(n):
        publish(PUBLISHED, services, start=START + i * MINUTE * 10, title=f"Window {i}")
    with CaptureQueriesContext(connection) as ctx:
        assert maintenance_notices_send_due(now=START - 40 * H, batch=batch) == n
    return len(statements(ctx))


def test_queries_grow_with_batches_not_windows(acme_contract, backup):
    one = queries_to_announce([backup], 5, batch=5)
    two = queries_to_announce([backup], 10, batch=5)
    four = queries_to_announce([backup], 20, batch=5)
    per_batch = two - one
    assert per_batch < 18  # with the contracts' organisations, members and their email choices
    assert four == one + 3 * per_batch
    assert OutboxMessage.objects.filter(key__contains=":announce:").count() == (5 + 10 + 20) * 2


def test_the_task_runs_the_sweep_and_beat_runs_it_every_minute(acme_contract, backup):
    from contracts.tasks import send_maintenance_notices
    from portal.celery import app

    publish(PUBLISHED, [backup])
    with time_machine.travel(START - 48 * H - LEAD, tick=False):
        assert send_maintenance_notices.delay().get() == 1
    entry = app.conf.beat_schedule["maintenance-notices"]
    assert entry == {
        "task": "contracts.tasks.send_maintenance_notices", "schedule": 60.0, "options": {"expires": 55},
    }  # fmt: skip


# --- Uptime's view of a window ------------------------------------------------------------------
def test_a_window_straddling_the_end_of_offpeak_hours_is_excluded_only_inside_them(acme_contract, backup, sweep):
    start = datetime(2026, 10, 11, 5, 0, tzinfo=NBO)  # 05:00-07:00; off-peak ends at 06:00
    publish(PUBLISHED, [backup], start=start)
    sweep(start - 48 * H - LEAD)
    kept, broken = contract_maintenance_exclusions(
        acme_contract, datetime(2026, 10, 1, tzinfo=NBO), datetime(2026, 11, 1, tzinfo=NBO)
    )
    six = datetime(2026, 10, 11, 6, 0, tzinfo=NBO).astimezone(UTC)
    assert kept == [(start.astimezone(UTC), six)]
    assert broken == [(six, (start + 2 * H).astimezone(UTC))]
    # Asked for a range that cuts the window, only the part inside the range is returned.
    kept, broken = contract_maintenance_exclusions(acme_contract, start + 30 * MINUTE, start + 90 * MINUTE)
    assert kept == [((start + 30 * MINUTE).astimezone(UTC), six)]
    assert broken == [(six, (start + 90 * MINUTE).astimezone(UTC))]


def test_the_annual_cap_counts_only_earlier_rule_keeping_windows(acme_contract, backup, sweep):
    # Two 6-hour off-peak windows in March use the year's 12 hours; October's is then all downtime.
    for day in (2, 9):
        start = datetime(2026, 3, day, 22, 0, tzinfo=NBO)
        publish(datetime(2026, 2, 1, tzinfo=NBO), [backup], start=start, hours=6, title=f"March {day}")
        sweep(start - 48 * H - LEAD)
    publish(PUBLISHED, [backup])
    sweep(START - 48 * H - LEAD)
    year = (datetime(2026, 1, 1, tzinfo=NBO), datetime(2027, 1, 1, tzinfo=NBO))
    kept, broken = contract_maintenance_exclusions(acme_contract, *year)
    assert sum((e - s for s, e in kept), timedelta()) == 12 * H
    assert broken == [(START.astimezone(UTC), (START + 2 * H).astimezone(UTC))]


def test_simultaneous_windows_on_two_services_use_the_cap_once(acme_contract, backup, assistant, sweep):
    acme_contract.services.add(assistant)
    night, later = datetime(2026, 10, 10, 22, 0, tzinfo=NBO), datetime(2026, 10, 24, 22, 0, tzinfo=NBO)
    for services, start, hours in (([backup], night, 4), ([assistant], night, 4), ([backup], later, 6)):
        publish(start - 10 * 24 * H, services, start=start, hours=hours)
        sweep(start - 48 * H - LEAD)
    with time_machine.travel(datetime(2026, 11, 2, tzinfo=NBO), tick=False):
        kept, broken = contract_maintenance_exclusions(acme_contract, *OCTOBER)
    # 4 h + 6 h of scheduled downtime this year: within the 12 h cap.
    assert kept == [utc(night, night + 4 * H), utc(later, later + 6 * H)] and broken == []


# --- Two sweeps at once (PostgreSQL: row locks) -------------------------------------------------
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_send_each_notice_once(acme_contract, alice, bob, globex_ai, charlie, backup, assistant):
    import threading

    from django.db import connections

    for i in range(60):
        publish(PUBLISHED, [backup, assistant], start=START + i * MINUTE, title=f"Window {i}")
    barrier = threading.Barrier(2)
    counts, errors = [], []

    def run():
        try:
            barrier.wait(timeout=10)
            counts.append(maintenance_notices_send_due(now=START - 40 * H, batch=5))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(counts) == 60 * 2  # a notice row per window and contract, written by one sweep only
    assert MaintenanceNotice.objects.filter(kind="announce").count() == 60 * 2
    assert OutboxMessage.objects.filter(key__contains=":announce:").count() == 60 * 3  # Alice, Bob, Charlie
    assert not MaintenanceWindow.objects.filter(notice_due_at__isnull=False).exists()
    assert maintenance_notices_send_due(now=START - 40 * H) == 0
