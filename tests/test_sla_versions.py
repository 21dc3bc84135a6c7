"""Versioned SLA terms: the version in force at the time of an event; a draft taking effect at 00:00
(its timezone) of a date that has not begun; publishing, with what changes told to each contact once;
and published terms that never change (docs/decisions.md, "Published SLA terms never change")."""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.db import transaction

from contracts.models import (
    SLA,
    ClosedDate,
    CreditTier,
    EscalationDwell,
    PriorityTerm,
    PublishedTermsError,
    SLAVersion,
    WorkingCalendar,
    WorkingHours,
)
from contracts.selectors import version_in_force, version_preview
from contracts.services import (
    DraftError,
    PublishError,
    calendar_set_closed_dates,
    sla_copy,
    sla_version_draft,
    sla_version_publish,
)
from portal.core.delivery import outbox_render
from portal.models import AuditEntry, OutboxMessage

from .factories import StaffFactory

pytestmark = pytest.mark.django_db
NBO = ZoneInfo("Africa/Nairobi")
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # Monday 2 November, 12:00 in Nairobi


@pytest.fixture
def kaluari():
    return SLA.objects.get(template_key="kaluari-cloud-backup")


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def draft_of(sla, day: date, **changes) -> SLAVersion:
    """A draft of `sla` from `day`, with some of its terms edited (as staff edit a draft)."""
    draft = sla_version_draft(sla=sla, effective_on=day, now=NOW)
    for name, value in changes.items():
        setattr(draft, name, value)
    if changes:
        draft.save()
    return draft


# --- The version in force ------------------------------------------------------------------------
def test_the_version_in_force_is_the_latest_published_effective_one(kaluari):
    v1 = kaluari.versions.get(number=1)
    v2 = draft_of(kaluari, date(2026, 12, 1))
    # A draft is never in force, whatever its date.
    assert version_in_force(sla_id=kaluari.pk, at=datetime(2027, 1, 1, tzinfo=UTC)) == v1
    sla_version_publish(version=v2, now=NOW)
    assert version_in_force(sla_id=kaluari.pk, at=datetime(2026, 11, 30, 20, 59, tzinfo=UTC)) == v1
    assert version_in_force(sla_id=kaluari.pk, at=datetime(2026, 11, 30, 21, 0, tzinfo=UTC)) == v2  # 00:00 Nairobi
    assert version_in_force(sla_id=kaluari.pk, at=datetime(2024, 1, 1, tzinfo=UTC)) is None


def test_a_draft_copies_every_term(kaluari):
    v1 = kaluari.versions.get(number=1)
    v2 = draft_of(kaluari, date(2026, 12, 1))
    assert v2.number == 2 and v2.published_at is None
    assert v2.uptime_guarantee == v1.uptime_guarantee and v2.exclusion_causes == v1.exclusion_causes

    def terms(v):
        return (
            sorted(v.priorities.values_list("priority", "first_response", "resolution_target", "resolution_limit")),
            sorted(v.escalation_levels.values_list("level", "channel", "contact", "staff_role")),
            sorted(v.escalation_dwells.values_list("level", "priority", "dwell")),
            sorted(v.credit_tiers.values_list("percent", "lower", "upper")),
        )

    assert terms(v2) == terms(v1)


# --- A draft's effective date: 00:00 local, never in the past ---------------------------------------
def test_a_draft_takes_effect_at_midnight_in_its_timezone(kaluari):
    draft = sla_version_draft(sla=kaluari, effective_on=date(2026, 11, 3), now=NOW)
    assert draft.effective_from == datetime(2026, 11, 3, 0, 0, tzinfo=NBO)
    assert draft.effective_from == datetime(2026, 11, 2, 21, 0, tzinfo=UTC)
    entry = AuditEntry.objects.get(action="sla_version.drafted")
    assert entry.after == {"copied_from": 1, "effective_from": "2026-11-02 21:00:00+00:00"}


def test_a_draft_in_a_dst_timezone_takes_effect_at_local_midnight(globex_contract):
    """Klart's Stockholm: 00:00 is 23:00 UTC in winter and 22:00 UTC in summer."""
    klart = SLA.objects.get(template_key="klart-ai")
    winter = sla_version_draft(sla=klart, effective_on=date(2026, 12, 1), now=NOW)
    assert winter.effective_from == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    summer = sla_version_draft(sla=klart, effective_on=date(2027, 7, 1), now=NOW)
    assert summer.effective_from == datetime(2027, 6, 30, 22, 0, tzinfo=UTC)


@pytest.mark.parametrize("day", [date(2026, 11, 2), date(2026, 11, 1), date(2025, 6, 1)])
def test_a_draft_never_takes_effect_in_the_past(kaluari, day):
    """Today has begun in Nairobi (00:00 was 12 hours ago): its midnight is in the past too."""
    with pytest.raises(DraftError, match=r"must be in the future: 00:00 of .* \(Africa/Nairobi\) has passed"):
        sla_version_draft(sla=kaluari, effective_on=day, now=NOW)
    assert not kaluari.versions.filter(published_at=None).exists()


def test_a_draft_takes_effect_after_every_published_version(kaluari):
    sla_version_publish(version=draft_of(kaluari, date(2027, 1, 1)), now=NOW)
    with pytest.raises(DraftError, match=r"must be after that of .* v2 \(published, effective 2027-01-01 00:00"):
        sla_version_draft(sla=kaluari, effective_on=date(2026, 12, 15), now=NOW)
    assert sla_version_draft(sla=kaluari, effective_on=date(2027, 1, 2), now=NOW).number == 3


def test_a_draft_whose_date_has_passed_is_not_published(kaluari):
    draft = draft_of(kaluari, date(2026, 11, 10))
    with pytest.raises(PublishError, match="has passed"):
        sla_version_publish(version=draft, now=datetime(2026, 11, 10, 6, 0, tzinfo=UTC))
    draft.refresh_from_db()
    assert draft.published_at is None


# --- Publishing: what changes, told to each contact once -------------------------------------------
@time_machine.travel(NOW, tick=False)
def test_publishing_emails_each_contact_once_with_what_changes(
    kaluari, acme_contract, globex_contract, alice, bob, charlie, django_capture_on_commit_callbacks
):
    draft = draft_of(
        kaluari, date(2026, 12, 2), uptime_guarantee=Decimal("99.5"), change_summary="We moved data centres.",
        maintenance_notice=timedelta(hours=72), offpeak_start=time(23), offpeak_end=time(5),
    )  # fmt: skip
    PriorityTerm.objects.filter(version=draft, priority="P1").update(first_response=timedelta(minutes=30))
    EscalationDwell.objects.filter(version=draft, level=2, priority="P2").update(dwell=timedelta(hours=3))
    CreditTier.objects.filter(version=draft, percent=Decimal("50")).update(percent=Decimal("60"))
    with django_capture_on_commit_callbacks(execute=True):
        assert sla_version_publish(version=draft) == 3  # Alice, Bob (Acme) and Charlie (Globex)
    keys = set(OutboxMessage.objects.values_list("key", flat=True))
    assert keys == {f"sla-version:{draft.pk}:contact:{u.pk}" for u in (alice, bob, charlie)}
    assert sorted(m.to[0] for m in mail.outbox) == sorted(u.email for u in (alice, bob, charlie))
    to_alice = next(m for m in mail.outbox if m.to == [alice.email])
    assert to_alice.subject == "Updated SLA terms from 2026-12-02: Kaluari Cloud Backup SLA (version 2): 6 changes"
    summary = [
        "What changes against version 1:",
        "Uptime guarantee and credits",
        "- Monthly uptime guarantee: 99.8% → 99.5%",
        "- Credit for monthly uptime less than 90.0%: 50.0% of the invoice → 60.0% of the invoice",
        "Support clocks",
        "- P1 first response: 15 min (24x7 (Africa/Nairobi)) → 30 min (24x7 (Africa/Nairobi))",
        "Escalation",
        "- P2: moves up from level 2 after: 2 h → 3 h",
        "Maintenance",
        "- Notice before maintenance: 48 h → 72 h",
        "- Off-peak hours for maintenance: 22:00-06:00 local time → 23:00-05:00 local time",
    ]
    body = [line for line in to_alice.body.splitlines() if line]
    start = body.index(summary[0])
    assert body[start : start + len(summary)] == summary
    assert "We moved data centres." in to_alice.body
    assert "It takes effect on 2026-12-02 00:00 (UTC+03:00)" in to_alice.body  # in the contract's timezone
    assert "KAL-0001" in to_alice.body and "KLA-0001" not in to_alice.body  # only her own contracts
    html = to_alice.alternatives[0][0]
    assert "Monthly uptime guarantee: 99.8% → <strong>99.5%</strong>" in html
    entry = AuditEntry.objects.get(action="sla_version.published")
    assert entry.after["changes_against"] == 1 and "Monthly uptime guarantee: 99.8% → 99.5%" in entry.after["changes"]
    with pytest.raises(PublishError):
        sla_version_publish(version=draft)
    assert OutboxMessage.objects.count() == 3


@time_machine.travel(NOW, tick=False)
def test_a_single_change_is_the_subject(kaluari, acme_contract, alice, bob):
    draft = draft_of(kaluari, date(2026, 12, 1), uptime_guarantee=Decimal("99.9"))
    sla_version_publish(version=draft)
    assert {outbox_render(row)[0] for row in OutboxMessage.objects.all()} == {
        "Updated SLA terms from 2026-12-01: Kaluari Cloud Backup SLA (version 2): "
        "Monthly uptime guarantee 99.8% → 99.9%"
    }


def test_the_preview_names_the_contacts_and_compares_with_the_version_before(
    kaluari, acme_contract, globex_contract, alice, bob, charlie
):
    bob.is_active = False
    bob.save()
    draft = draft_of(kaluari, date(2026, 12, 1), claim_window_days=45)
    preview = version_preview(version=draft)
    assert preview.previous.number == 1
    assert [str(c) for c in preview.changes] == [
        "Claim window: 30 days after the month's end → 45 days after the month's end"
    ]
    assert [(r.user.email, [k.reference for k in ks]) for r, ks in preview.recipients] == [
        ("alice@acme.example", ["KAL-0001"]), ("charlie@globex.example", ["KLA-0001"]),
    ]  # fmt: skip


def test_only_contracts_the_new_terms_will_judge_are_told_of_them(
    kaluari, acme, acme_contract, alice, bob, django_capture_on_commit_callbacks
):
    """Acme's old KAL-0000 ended on 31 March: Dora, its contact, was emailed "It applies to your
    contract: KAL-0000" of terms from 2 December and listed on the confirmation page. A contract whose
    last day is the effective date (both days count), or that starts after it, is told."""
    from .factories import ContractFactory, UserFactory

    def contract(reference, email, starts_on, ends_on):
        person = UserFactory(email=email, name=email.split("@")[0].title(), organisation=acme)
        return ContractFactory(
            organisation=acme, reference=reference, contacts=[person], starts_on=starts_on, ends_on=ends_on
        )

    contract("KAL-0000", "dora@acme.example", date(2025, 1, 1), date(2026, 3, 31))
    contract("KAL-0008", "eve@acme.example", date(2025, 1, 1), date(2026, 12, 1))  # the day before
    contract("KAL-0009", "fay@acme.example", date(2025, 1, 1), date(2026, 12, 2))  # its last day
    contract("KAL-0010", "gus@acme.example", date(2027, 1, 1), None)  # starts after it
    draft = draft_of(kaluari, date(2026, 12, 2), uptime_guarantee=Decimal("99.5"))
    told = [(r.user.email, [c.reference for c in cs]) for r, cs in version_preview(version=draft).recipients]
    assert told == [
        ("alice@acme.example", ["KAL-0001"]), ("bob@acme.example", ["KAL-0001"]),
        ("fay@acme.example", ["KAL-0009"]), ("gus@acme.example", ["KAL-0010"]),
    ]  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        assert sla_version_publish(version=draft, now=NOW) == 4
    assert sorted(m.to[0] for m in mail.outbox) == [email for email, _ in told]
    assert "KAL-0000" not in "".join(m.body for m in mail.outbox)


def test_a_version_without_priorities_cannot_be_published(kaluari):
    draft = draft_of(kaluari, date(2026, 12, 1))
    draft.priorities.all().delete()
    with pytest.raises(PublishError, match="no priority terms"):
        sla_version_publish(version=draft, now=NOW)
    draft.refresh_from_db()
    assert draft.published_at is None


# --- Published terms never change -------------------------------------------------------------------
def published_kaluari() -> SLAVersion:
    return SLAVersion.objects.get(sla__template_key="kaluari-cloud-backup", number=1)


def terms_of(version: SLAVersion) -> tuple:
    v = SLAVersion.objects.get(pk=version.pk)
    return (
        v.uptime_guarantee, v.timezone, v.effective_from, v.change_summary,
        sorted(v.priorities.values_list("priority", "first_response")),
        sorted(v.escalation_levels.values_list("level", "contact")),
        sorted(v.escalation_dwells.values_list("level", "priority", "dwell")),
        sorted(v.credit_tiers.values_list("percent", flat=True)),
    )  # fmt: skip


EDITS = {
    "guarantee": lambda v: (setattr(v, "uptime_guarantee", Decimal("50")), v.save()),
    "timezone": lambda v: (setattr(v, "timezone", "UTC"), v.save()),
    "summary": lambda v: (setattr(v, "change_summary", "Edited."), v.save(update_fields=["change_summary"])),
    "unpublish": lambda v: (setattr(v, "published_at", None), v.save()),
    "delete version": lambda v: v.delete(),
    "delete version, queryset": lambda v: SLAVersion.objects.filter(pk=v.pk).delete(),
    "delete SLA": lambda v: v.sla.delete(),
    "priority": lambda v: [(setattr(p, "first_response", timedelta(hours=9)), p.save()) for p in v.priorities.all()],
    "add priority": lambda v: PriorityTerm.objects.create(
        version=v,
        priority="STD",
        meaning="x",
        calendar=v.business_calendar,
        first_response=timedelta(hours=1),
        resolution_target=timedelta(hours=2),
        resolution_limit=timedelta(hours=2),
    ),  # fmt: skip
    "delete priority": lambda v: v.priorities.first().delete(),
    "delete priorities, queryset": lambda v: v.priorities.all().delete(),
    "level": lambda v: [(setattr(lv, "contact", "+1 555"), lv.save()) for lv in v.escalation_levels.all()],
    "delete level": lambda v: v.escalation_levels.first().delete(),
    "dwell": lambda v: [(setattr(d, "dwell", timedelta(days=9)), d.save()) for d in v.escalation_dwells.all()],
    "add dwell": lambda v: EscalationDwell.objects.create(version=v, level=4, priority="P1", dwell=timedelta(1)),
    "tier": lambda v: [(setattr(t, "percent", Decimal("1")), t.save()) for t in v.credit_tiers.all()],
    "add tier": lambda v: CreditTier.objects.create(version=v, upper=Decimal("50"), percent=Decimal("100")),
    "delete tier": lambda v: v.credit_tiers.first().delete(),
}


@pytest.mark.parametrize("edit", EDITS.values(), ids=EDITS.keys())
def test_a_published_version_and_its_terms_are_refused_in_the_models(edit):
    version = published_kaluari()
    before = terms_of(version)
    # A savepoint: a refused delete is refused inside Django's delete transaction (pre_delete).
    with pytest.raises(PublishedTermsError, match="v1 is published: .*Make a new draft version"), transaction.atomic():
        edit(version)
    assert terms_of(version) == before


def test_a_row_is_not_moved_out_of_a_published_version_into_a_draft(kaluari):
    draft = draft_of(kaluari, date(2026, 12, 1))
    tier = published_kaluari().credit_tiers.first()
    tier.version = draft
    with pytest.raises(PublishedTermsError):
        tier.save()


def test_a_draft_is_edited_freely_until_it_is_published(kaluari, frozen):
    draft = draft_of(kaluari, date(2026, 12, 1), uptime_guarantee=Decimal("99.5"))
    tier = draft.credit_tiers.first()
    tier.percent = Decimal("15")
    tier.save()
    draft.escalation_levels.first().delete()
    sla_version_publish(version=draft)
    draft.refresh_from_db()
    with pytest.raises(PublishedTermsError, match="v2 is published"):
        draft.save()
    with pytest.raises(PublishedTermsError), transaction.atomic():
        draft.credit_tiers.first().delete()


def test_a_contracts_own_copy_is_published_once_and_then_frozen(kaluari):
    sla = sla_copy(source=kaluari, name="Kaluari for Initech", effective_from=NOW, now=NOW)
    copy = sla.versions.get()
    assert copy.is_published and copy.priorities.count() == 4
    with pytest.raises(PublishedTermsError), transaction.atomic():
        copy.credit_tiers.first().delete()


def test_a_draft_holding_a_clock_beyond_the_bounds_is_not_published(kaluari, acme_contract, mailoutbox):
    """A draft saved before the bounds (or past the forms) with a 10,000-year P3 first response: once
    published, every P3 ticket filed under it was a 500 (its deadline falls after year 9999)."""
    draft = draft_of(kaluari, date(2026, 12, 1))
    draft.priorities.filter(priority="P3").update(first_response=timedelta(days=3650000))
    with pytest.raises(PublishError, match="v2 cannot be published: .*P3: first response: At most a year"):
        sla_version_publish(version=draft, now=NOW)
    draft.refresh_from_db()
    assert draft.published_at is None and mailoutbox == []


# --- Calendars of published terms: hours and timezone frozen, closed dates editable ------------------
def business_calendar() -> WorkingCalendar:
    return published_kaluari().business_calendar


HOURS_EDITS = {
    "timezone": lambda c: (setattr(c, "timezone", "UTC"), c.save()),
    "always open": lambda c: (setattr(c, "always_open", True), c.save()),
    "holidays": lambda c: (setattr(c, "holiday_country", "UG"), c.save()),
    "hours": lambda c: [(setattr(h, "closes", time(18)), h.save()) for h in c.hours.all()],
    "add hours": lambda c: WorkingHours.objects.create(calendar=c, weekday=5, opens=time(9), closes=time(12)),
    "delete hours": lambda c: c.hours.first().delete(),
    "delete hours, queryset": lambda c: c.hours.filter(weekday=4).delete(),
}


@pytest.mark.parametrize("edit", HOURS_EDITS.values(), ids=HOURS_EDITS.keys())
def test_the_clock_of_a_calendar_of_published_terms_is_refused(edit):
    calendar = business_calendar()
    before = (calendar.timezone, calendar.holiday_country, sorted(calendar.hours.values_list("weekday", "closes")))
    with (
        pytest.raises(PublishedTermsError, match="calendar of published SLA terms: .*cannot change"),
        transaction.atomic(),
    ):
        edit(calendar)
    calendar = WorkingCalendar.objects.get(pk=calendar.pk)
    assert (
        calendar.timezone,
        calendar.holiday_country,
        sorted(calendar.hours.values_list("weekday", "closes")),
    ) == before


def test_a_calendar_of_published_terms_keeps_its_name_and_takes_closed_dates():
    """The name is the support availability customers read in the published terms ("Mon-Fri
    08:00-17:00") and what "what changed" compares: renamed, the terms read new hours unpublished."""
    calendar = business_calendar()
    name = calendar.name
    calendar.name = "Kenya business hours (Mon-Sat 07:00-20:00, Africa/Nairobi)"
    with (
        pytest.raises(PublishedTermsError, match="its name, timezone and public holidays cannot change"),
        transaction.atomic(),
    ):
        calendar.save()
    assert WorkingCalendar.objects.get(pk=calendar.pk).name == name
    ClosedDate.objects.create(calendar=calendar, date=date(2026, 12, 8), reason="Staff day")
    assert calendar.closed_dates.count() == 1


def test_a_calendar_no_published_version_uses_is_edited_freely(kaluari):
    calendar = WorkingCalendar.objects.create(name="Nairobi long days", timezone="Africa/Nairobi")
    WorkingHours.objects.create(calendar=calendar, weekday=0, opens=time(7), closes=time(19))
    # A draft using it does not freeze it...
    draft = draft_of(kaluari, date(2026, 12, 1))
    draft.priorities.filter(priority="P3").update(calendar=calendar)
    calendar.timezone = "Africa/Kampala"
    calendar.save()
    calendar.hours.get().delete()
    # ... its publication does.
    WorkingHours.objects.create(calendar=calendar, weekday=0, opens=time(7), closes=time(19))
    sla_version_publish(version=draft, now=NOW)
    with pytest.raises(PublishedTermsError), transaction.atomic():
        calendar.hours.get().delete()


def test_closed_dates_set_are_audited_and_move_the_open_tickets(
    acme_contract, alice, monkeypatch, django_capture_on_commit_callbacks
):
    from tickets import recompute
    from tickets.models import Ticket
    from tickets.services import ticket_open

    recomputed = []
    real = recompute.tickets_recompute
    monkeypatch.setattr(
        recompute, "tickets_recompute", lambda ids, **kw: recomputed.append(sorted(ids)) or real(ids, **kw)
    )
    monday_1400 = datetime(2026, 12, 7, 14, 0, tzinfo=NBO)  # Kaluari P3: 4 business hours to answer
    with time_machine.travel(monday_1400, tick=False), django_capture_on_commit_callbacks(execute=True):
        ticket = ticket_open(
            user=alice, contract=acme_contract, service=acme_contract.services.get(), priority="P3",
            subject="Restores are slow", description="Since Friday.",
        )  # fmt: skip
    assert ticket.first_response_due == datetime(2026, 12, 8, 9, 0, tzinfo=NBO)
    lena = StaffFactory(email="lena@vendor.example", staff_role="support_lead")
    calendar = business_calendar()
    with (
        time_machine.travel(monday_1400 + timedelta(minutes=10), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert calendar_set_closed_dates(calendar=calendar, closed={date(2026, 12, 8): "Staff day"}, actor=lena)
    entry = AuditEntry.objects.get(action="calendar.closed_dates_edited")
    assert (entry.actor_email, entry.before, entry.after) == (
        "lena@vendor.example", {"closed_dates": {}}, {"closed_dates": {"2026-12-08": "Staff day"}},
    )  # fmt: skip
    assert recomputed == [[ticket.pk]]
    ticket = Ticket.objects.get(pk=ticket.pk)
    assert ticket.first_response_due == datetime(2026, 12, 9, 9, 0, tzinfo=NBO)  # a working day later

    # The same dates again: nothing audited, nothing recomputed. Removed: audited, moved back.
    assert not calendar_set_closed_dates(calendar=calendar, closed={date(2026, 12, 8): "Staff day"}, actor=lena)
    with (
        time_machine.travel(monday_1400 + timedelta(minutes=20), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert calendar_set_closed_dates(calendar=calendar, closed={}, actor=lena)
    last = AuditEntry.objects.filter(action="calendar.closed_dates_edited").latest("id")
    assert (last.before, last.after) == ({"closed_dates": {"2026-12-08": "Staff day"}}, {"closed_dates": {}})
    assert Ticket.objects.get(pk=ticket.pk).first_response_due == datetime(2026, 12, 8, 9, 0, tzinfo=NBO)


def test_a_draft_calendar_edited_after_the_confirmation_page_is_not_published_unseen(acme_contract):
    """The fingerprint the confirmation page carries covers the calendars the draft's clocks run on:
    a new calendar made for the draft is still editable, and its zone or hours changed after the
    superuser looked were published and emailed unseen."""
    from contracts.services import StaleDraftError, sla_version_draft, version_terms_fingerprint

    at = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    sla = SLA.objects.get(template_key="kaluari-cloud-backup")
    with time_machine.travel(at, tick=False):
        draft = sla_version_draft(sla=sla, effective_on=date(2026, 12, 2), now=at)
        new = WorkingCalendar.objects.create(name="24x7 (Nairobi, new)", timezone="Africa/Nairobi", always_open=True)
        draft.priorities.filter(priority="P1").update(calendar=new)
        seen = version_terms_fingerprint(draft)
        new.timezone, new.always_open, new.name = "America/New_York", False, "Mon-Fri (New York)"
        new.save()
        with pytest.raises(StaleDraftError):
            sla_version_publish(version=draft, now=at, seen=seen)
        assert version_terms_fingerprint(draft) != seen
        sla_version_publish(version=draft, now=at, seen=version_terms_fingerprint(draft))  # what is shown now
