"""Reads. Every customer-facing read is scoped to the user's organisation."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from django.db.models import Prefetch, QuerySet

from .models import Contract, EscalationLevel, PriorityTerm, SLAVersion


def contracts_for_user(*, user) -> QuerySet[Contract]:
    """The contracts a customer may see: their organisation's only. Staff and anonymous users get
    none here (staff work in the admin)."""
    if not getattr(user, "is_authenticated", False) or not user.organisation_id:
        return Contract.objects.none()
    return Contract.objects.filter(organisation_id=user.organisation_id)


def version_in_force(*, sla_id: int, at: datetime) -> SLAVersion | None:
    """The published version with the latest effective moment not after `at`."""
    return (
        SLAVersion.objects.filter(sla_id=sla_id, published_at__isnull=False, effective_from__lte=at)
        .order_by("-effective_from", "-number")
        .first()
    )


def version_with_terms(*, version_id: int) -> SLAVersion:
    """A version with its matrices loaded in a fixed number of queries."""
    return (
        SLAVersion.objects.select_related("sla", "business_calendar", "escalation_ack_calendar")
        .prefetch_related(
            Prefetch("priorities", queryset=PriorityTerm.objects.select_related("calendar", "resolution_calendar")),
            Prefetch("escalation_levels", queryset=EscalationLevel.objects.order_by("level")),
            "escalation_dwells",
            "credit_tiers",
        )
        .get(pk=version_id)
    )


def level_contact(*, level: EscalationLevel, organisation, staff_by_role=None) -> tuple[str, str]:
    """Who the customer reaches at a level, and how: the level's own contact, else the
    organisation's own manager for that role, else the vendor's staff member with the role
    (`staff_by_role(role)`, which a sweep passes to look staff up once per batch)."""
    from django.contrib.auth import get_user_model

    if level.contact:
        return level.instruction, level.contact
    person = None
    if level.staff_role == "account_manager":
        person = organisation.account_manager
    elif level.staff_role == "cloud_solutions_manager":
        person = organisation.solutions_manager
    if person is None and staff_by_role is not None:
        person = staff_by_role(level.staff_role)
    elif person is None:
        person = (
            get_user_model()
            .objects.filter(is_staff=True, is_active=True, staff_role=level.staff_role)
            .order_by("id")
            .first()
        )
    if person is None:
        return level.instruction, ""
    return level.instruction, f"{person.get_full_name()}, {person.phone or person.email}"


def levels_by_version(version_ids) -> dict[int, list[EscalationLevel]]:
    """Each version's escalation ladder, level 1 first, in one query."""
    out: dict[int, list[EscalationLevel]] = {pk: [] for pk in version_ids}
    for level in EscalationLevel.objects.filter(version_id__in=list(out)).order_by("version_id", "level"):
        out[level.version_id].append(level)
    return out


def escalation_ladder(*, version: SLAVersion, organisation) -> list[dict]:
    """The ladder as shown to a customer: each level with its channel, contact and dwell per priority."""
    dwells: dict[int, dict[str, object]] = {}
    for d in version.escalation_dwells.all():
        dwells.setdefault(d.level, {})[d.priority] = d.dwell
    priorities = [p.priority for p in version.priorities.all()]
    ladder = []
    for level in version.escalation_levels.all():
        instruction, contact = level_contact(level=level, organisation=organisation)
        ladder.append(
            {
                "level": level.level,
                "channel": level.get_channel_display(),
                "instruction": instruction,
                "contact": contact,
                "dwells": [dwells.get(level.level, {}).get(p) for p in priorities],
            }
        )
    return ladder


class Versions:
    """The published versions of some SLAs in one query; `at` answers as selectors.version_in_force."""

    def __init__(self, sla_ids: Iterable[int]):
        self._by_sla: dict[int, list[SLAVersion]] = defaultdict(list)
        published = SLAVersion.objects.filter(sla_id__in=set(sla_ids), published_at__isnull=False)
        for v in published.prefetch_related("credit_tiers").order_by("effective_from", "number"):
            self._by_sla[v.sla_id].append(v)

    def at(self, sla_id: int, moment: datetime) -> SLAVersion | None:
        found = None
        for v in self._by_sla.get(sla_id, ()):
            if v.effective_from > moment:
                break
            found = v
        return found

    def shown(self, sla_id: int, moment: datetime) -> SLAVersion | None:
        """The version whose timezone a page or an email uses: in force then, else the first."""
        versions = self._by_sla.get(sla_id)
        return self.at(sla_id, moment) or (versions[0] if versions else None)
