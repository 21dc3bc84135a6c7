"""Writes for contracts and SLA terms. Notifications go through the outbox in the same
transaction as the change that causes them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from portal.core.audit import audit, plain
from portal.core.outbox import outbox_enqueue_many
from portal.core.unsubscribe import email_to
from portal.domain.dates import local_midnight
from portal.domain.formats import in_tz

from . import selectors, terms_revision
from .calendars import calendars_edited, terms_edited
from .models import (
    SLA,
    TERMS_ROWS,
    ClosedDate,
    CreditTier,
    EscalationDwell,
    EscalationLevel,
    PriorityTerm,
    SLAVersion,
    WorkingCalendar,
)

COPIED_FIELDS = (
    "uptime_guarantee", "timezone", "business_calendar", "credit_kind", "claim_window_days", "maintenance_notice",
    "offpeak_start", "offpeak_end", "maintenance_annual_cap", "escalation_ack_time", "escalation_ack_calendar",
    "exclusion_causes",
)  # fmt: skip
# The terms of a version that move its tickets' deadlines.
CLOCK_TERMS = {"priorities", "escalation_levels", "escalation_dwells", "escalation_ack_time", "escalation_ack_calendar"}


class PublishError(Exception):
    pass


class DraftError(ValueError):
    """A draft's effective date that cannot be: one that has begun, or not after the published versions'."""


def effective_problem(*, sla_id: int, effective_from: datetime, tz: str, now: datetime, draft_pk=None) -> str | None:
    """Why a version of this SLA cannot take effect at `effective_from`, or None. Never in the past
    (a change judged past tickets and months again behind the customers' backs), and after every
    published version of the SLA (so the versions take effect in the order they were published)."""
    if effective_from <= now:
        return (
            f"The effective date must be in the future: 00:00 of {effective_from.astimezone(ZoneInfo(tz)):%Y-%m-%d} "
            f"({tz}) has passed. Choose a later date."
        )
    latest = (
        SLAVersion.objects.filter(sla_id=sla_id, published_at__isnull=False)
        .exclude(pk=draft_pk)
        .order_by("-effective_from", "-number")
        .first()
    )
    if latest is not None and effective_from <= latest.effective_from:
        return (
            f"The effective date must be after that of {latest} (published, effective "
            f"{in_tz(latest.effective_from, latest.timezone)}). Choose a later date."
        )
    return None


class StaleDraftError(PublishError):
    """The draft's terms are no longer those its publisher reviewed."""


@transaction.atomic
def sla_version_publish(
    *, version: SLAVersion, now: datetime | None = None, actor=None, seen: str | None = None
) -> int:
    """Publish a draft version and email every contact of every contract on its SLA, once each, with
    what it changes against the version before it. Returns how many emails were queued. `seen`: the
    version_terms_fingerprint of the draft as its publisher reviewed it (the confirmation page);
    StaleDraftError when the terms under the row's lock are other ones (edited meanwhile by whoever
    keeps the drafts): a publication emails only terms someone has read."""
    now = now or timezone.now()
    version = SLAVersion.objects.select_for_update(of=("self",)).select_related("sla").get(pk=version.pk)
    if version.published_at is not None:
        raise PublishError(f"{version} is already published.")
    if seen is not None and seen != version_terms_fingerprint(version):
        raise StaleDraftError(f"{version} was not published: the draft changed since you looked: review it again.")
    if not version.priorities.exists():
        raise PublishError(f"{version} has no priority terms; add at least one before publishing.")
    if refused := terms_refused(version):
        raise PublishError(f"{version} cannot be published: {refused} Correct the draft first.")
    problem = effective_problem(
        sla_id=version.sla_id, effective_from=version.effective_from, tz=version.timezone, now=now, draft_pk=version.pk
    )
    if problem:
        raise PublishError(f"{version} cannot be published: {problem}")
    preview = selectors.version_preview(version=version)
    version.published_at = now
    version.save(update_fields=["published_at"])
    audit(
        actor=actor,
        action="sla_version.published",
        target=version,
        after={
            "effective_from": version.effective_from,
            "changes_against": preview.previous.number if preview.previous else None,
            "changes": [str(c) for c in preview.changes],
        },
        now=now,
    )
    changes = [asdict(c) for c in preview.changes]
    previous = preview.previous.number if preview.previous else None
    effective_on = version.effective_from.astimezone(ZoneInfo(version.timezone)).date()
    emails = [
        email_to(
            recipient,
            key=f"sla-version:{version.pk}:contact:{recipient.user.pk}",
            template="sla_version_published",
            context={
                "version": version,
                "contact": recipient.user,
                "contracts": contracts,
                "changes": changes,
                "previous_number": previous,
                "effective_on": effective_on,
            },
        )  # fmt: skip
        for recipient, contracts in preview.recipients
    ]
    return outbox_enqueue_many(emails=emails, now=now)


def _copy_terms(source: SLAVersion, target: SLAVersion) -> None:
    PriorityTerm.objects.bulk_create(
        PriorityTerm(
            version=target, priority=p.priority, meaning=p.meaning, calendar_id=p.calendar_id,
            resolution_calendar_id=p.resolution_calendar_id, first_response=p.first_response,
            resolution_target=p.resolution_target, resolution_limit=p.resolution_limit,
        )
        for p in source.priorities.all()
    )  # fmt: skip
    EscalationLevel.objects.bulk_create(
        EscalationLevel(
            version=target, level=lv.level, channel=lv.channel, instruction=lv.instruction,
            contact=lv.contact, staff_role=lv.staff_role,
        )
        for lv in source.escalation_levels.all()
    )  # fmt: skip
    EscalationDwell.objects.bulk_create(
        EscalationDwell(version=target, level=d.level, priority=d.priority, dwell=d.dwell)
        for d in source.escalation_dwells.all()
    )
    CreditTier.objects.bulk_create(
        CreditTier(
            version=target, lower=t.lower, lower_inclusive=t.lower_inclusive, upper=t.upper,
            upper_inclusive=t.upper_inclusive, percent=t.percent,
        )
        for t in source.credit_tiers.all()
    )  # fmt: skip
    terms_revision.bump()  # written in bulk: no signal said so


@transaction.atomic
def sla_version_draft(*, sla: SLA, effective_on: date, now: datetime | None = None, actor=None) -> SLAVersion:
    """A new unpublished version, a copy of the latest one, taking effect at 00:00 of `effective_on`
    in the version's timezone: a date that has not begun there, after every published version's.
    DraftError otherwise."""
    now = now or timezone.now()
    latest = sla.versions.order_by("-number").first()
    if latest is None:
        raise PublishError(f"{sla} has no version to copy.")
    effective_from = local_midnight(effective_on, latest.timezone)
    problem = effective_problem(sla_id=sla.pk, effective_from=effective_from, tz=latest.timezone, now=now)
    if problem:
        raise DraftError(problem)
    draft = SLAVersion.objects.create(
        sla=sla, number=latest.number + 1, effective_from=effective_from,
        **{f: getattr(latest, f) for f in COPIED_FIELDS},
    )  # fmt: skip
    _copy_terms(latest, draft)
    audit(
        actor=actor, action="sla_version.drafted", target=draft,
        after={"copied_from": latest.number, "effective_from": effective_from}, now=now,
    )  # fmt: skip
    return draft


@transaction.atomic
def sla_copy(*, source: SLA, name: str, effective_from: datetime, now: datetime | None = None) -> SLA:
    """A contract's own SLA, copied from a template's latest published version and published at
    once (nobody is on it yet, so nobody is emailed)."""
    latest = source.versions.filter(published_at__isnull=False).order_by("-number").first()
    if latest is None:
        raise PublishError(f"{source} has no published version to copy.")
    sla = SLA.objects.create(name=name, vendor=source.vendor, summary=source.summary)
    copy = SLAVersion.objects.create(
        sla=sla, number=1, effective_from=effective_from, published_at=now or timezone.now(),
        change_summary=f"Copied from {source.name} v{latest.number}.",
        **{f: getattr(latest, f) for f in COPIED_FIELDS},
    )  # fmt: skip
    _copy_terms(latest, copy)
    return sla


def version_terms_snapshot(version: SLAVersion) -> dict:
    """Every term of a version as plain data: the audit log's before and after of an edit."""
    fields = {f: getattr(version, f) for f in ("number", "effective_from", "change_summary", *COPIED_FIELDS)}
    fields["business_calendar"] = version.business_calendar_id
    fields["escalation_ack_calendar"] = version.escalation_ack_calendar_id
    return {
        **fields,
        "priorities": sorted(
            version.priorities.values_list("priority", "meaning", "calendar_id", "resolution_calendar_id",
                                           "first_response", "resolution_target", "resolution_limit")
        ),
        "escalation_levels": sorted(version.escalation_levels.values_list("level", "channel", "instruction", "contact", "staff_role")),
        "escalation_dwells": sorted(version.escalation_dwells.values_list("level", "priority", "dwell")),
        "credit_tiers": sorted(
            (str(lo), lo_inc, str(hi), hi_inc, str(pct))
            for lo, lo_inc, hi, hi_inc, pct in version.credit_tiers.values_list(
                "lower", "lower_inclusive", "upper", "upper_inclusive", "percent"
            )
        ),
    }  # fmt: skip


def terms_refused(version: SLAVersion) -> str | None:
    """What the validators of the version's fields and of its rows of terms refuse, or None: a draft
    saved before a bound existed (a P3 first response of 10,000 years) is not published, since every
    ticket filed under it failed."""
    for row in [version, *(row for model in TERMS_ROWS for row in model.objects.filter(version=version))]:
        for f in row._meta.concrete_fields:
            if f.is_relation:
                continue
            try:
                f.run_validators(getattr(row, f.attname))
            except ValidationError as exc:
                where = "" if row is version else f"{row._meta.verbose_name} {row}: "
                return f"{where}{f.verbose_name}: {' '.join(exc.messages)}"
    return None


def version_terms_fingerprint(version: SLAVersion) -> str:
    """A digest of every term of the version (version_terms_snapshot) and of the calendars its clocks
    run on (their frozen fields, hours and closed dates: a draft's new calendar is still editable):
    what a publisher reviewed, to compare with what is published."""
    calendar_ids = {version.business_calendar_id, version.escalation_ack_calendar_id}
    for ids in version.priorities.values_list("calendar_id", "resolution_calendar_id"):
        calendar_ids.update(ids)
    calendars = {
        c.pk: {
            **{f: getattr(c, f) for f in WorkingCalendar.FROZEN_FIELDS},
            "hours": sorted(c.hours.values_list("weekday", "opens", "closes")),
            "closed": sorted(c.closed_dates.values_list("date", "reason")),
        }
        for c in WorkingCalendar.objects.filter(pk__in=calendar_ids - {None})
    }
    text = json.dumps(plain({"terms": version_terms_snapshot(version), "calendars": calendars}), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


# --- A calendar's extra closed dates: the one part of published terms that stays editable ----------
def calendar_closed_dates(calendar: WorkingCalendar) -> dict[str, str]:
    """The calendar's extra closed dates as {ISO date: reason}: the audit log's before and after."""
    rows = ClosedDate.objects.filter(calendar=calendar).order_by("date").values_list("date", "reason")
    return {day.isoformat(): reason for day, reason in rows}


def calendar_closed_dates_audit(
    *, calendar: WorkingCalendar, before: Mapping[str, str], actor, now: datetime | None = None
) -> str:
    """After the closed dates were saved (the admin's inline): one audit entry with the dates that
    changed, as they were and as they are. Returns what changed as the customers whose deadlines it
    moves are told ('the calendar “...” changed: 2026-12-08 closed (Staff day)'); "" when nothing did."""
    after = calendar_closed_dates(calendar)
    changed = sorted(d for d in before.keys() | after.keys() if before.get(d) != after.get(d))
    if not changed:
        return ""
    audit(
        actor=actor, action="calendar.closed_dates_edited", target=calendar,
        before={"closed_dates": {d: before[d] for d in changed if d in before}},
        after={"closed_dates": {d: after[d] for d in changed if d in after}}, now=now,
    )  # fmt: skip
    said = [
        (f"{d} closed ({after[d]})" if after[d] else f"{d} closed") if d in after else f"{d} open again"
        for d in changed
    ]
    return f"our working calendar “{calendar.name}” changed: {'; '.join(said)}"


@transaction.atomic
def calendar_set_closed_dates(
    *, calendar: WorkingCalendar, closed: Mapping[date, str], actor, now: datetime | None = None
) -> bool:
    """Make the calendar's extra closed dates exactly `closed` ({date: reason}); allowed on a calendar
    of published terms (public holidays announced late, a national day of mourning). Audited, and the
    open tickets whose deadlines it moves are recomputed once it commits. False when nothing changed."""
    before = calendar_closed_dates(calendar)
    wanted = {day.isoformat(): reason for day, reason in closed.items()}
    ClosedDate.objects.filter(calendar=calendar).exclude(date__in=list(closed)).delete()
    for day, reason in closed.items():
        if before.get(day.isoformat()) != reason:
            ClosedDate.objects.update_or_create(calendar=calendar, date=day, defaults={"reason": reason})
    if before == wanted:
        return False
    reason = calendar_closed_dates_audit(calendar=calendar, before=before, actor=actor, now=now)
    if not reason:
        return False
    calendars_edited([calendar.pk], reason)  # the deadlines work's recompute of the open tickets on the calendar
    return True


@contextmanager
def sla_terms_edit(*, version: SLAVersion, actor, created: bool) -> Iterator[None]:
    """Around the saving of a version's terms (its fields and its inlines: priorities, ladder,
    dwells, credit tiers): the terms as stored before; once saved, an audit entry of those that
    changed, before and after; and when a term that moves deadlines changed on an existing version,
    the open tickets judged by it get their deadlines again. Nothing is recorded if the saving fails.

        with sla_terms_edit(version=version, actor=user, created=False):
            ...  # save the version and its inlines
    """
    with transaction.atomic():
        before = {} if created else version_terms_snapshot(SLAVersion.objects.get(pk=version.pk))
        yield
        after = version_terms_snapshot(version)
        changed = {k for k in after if plain(before.get(k)) != plain(after[k])}
        if not changed:
            return
        audit(
            actor=actor, action="sla_terms.created" if created else "sla_terms.edited", target=version,
            before={k: before.get(k) for k in changed}, after={k: after[k] for k in changed},
        )  # fmt: skip
        if not created and changed & CLOCK_TERMS:
            terms_edited([version.pk])
