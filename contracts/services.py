"""Writes for contracts and SLA terms. Notifications go through the outbox in the same
transaction as the change that causes them."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from portal.core.audit import audit
from portal.core.outbox import Email, outbox_enqueue_many

from . import terms_revision
from .models import SLA, CreditTier, EscalationDwell, EscalationLevel, PriorityTerm, SLAVersion

COPIED_FIELDS = (
    "uptime_guarantee", "timezone", "business_calendar", "credit_kind", "claim_window_days", "maintenance_notice",
    "offpeak_start", "offpeak_end", "maintenance_annual_cap", "escalation_ack_time", "escalation_ack_calendar",
    "exclusion_causes",
)  # fmt: skip


class PublishError(Exception):
    pass


@transaction.atomic
def sla_version_publish(*, version: SLAVersion, now: datetime | None = None, actor=None) -> int:
    """Publish a draft version and email every contact of every contract on its SLA, once each.
    Returns how many emails were queued."""
    now = now or timezone.now()
    version = SLAVersion.objects.select_for_update(of=("self",)).select_related("sla").get(pk=version.pk)
    if version.published_at is not None:
        raise PublishError(f"{version} is already published.")
    if not version.priorities.exists():
        raise PublishError(f"{version} has no priority terms; add at least one before publishing.")
    version.published_at = now
    version.save(update_fields=["published_at"])
    audit(
        actor=actor,
        action="sla_version.published",
        target=version,
        after={"effective_from": version.effective_from},
        now=now,
    )

    contracts_by_contact: dict = {}
    for contract in version.sla.contracts.prefetch_related("contacts").select_related("organisation"):
        for contact in contract.contacts.all():
            if contact.is_active:
                contracts_by_contact.setdefault(contact, []).append(contract)
    emails = [
        Email(
            key=f"sla-version:{version.pk}:contact:{contact.pk}",
            to=contact.email,
            template="sla_version_published",
            context={"version": version, "contact": contact, "contracts": contracts},
        )
        for contact, contracts in contracts_by_contact.items()
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
def sla_version_draft(*, sla: SLA, effective_from: datetime) -> SLAVersion:
    """A new unpublished version that starts as a copy of the latest one."""
    latest = sla.versions.order_by("-number").first()
    if latest is None:
        raise PublishError(f"{sla} has no version to copy.")
    draft = SLAVersion.objects.create(
        sla=sla, number=latest.number + 1, effective_from=effective_from,
        **{f: getattr(latest, f) for f in COPIED_FIELDS},
    )  # fmt: skip
    _copy_terms(latest, draft)
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
