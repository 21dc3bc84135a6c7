"""Reads. Every customer-facing read is scoped to the user's organisation."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Prefetch, Q, QuerySet

from portal.core.notify_rules import Kind, Preferences, Recipient, for_contract, members_prefetch
from portal.domain.dates import month_bounds, runs_during
from portal.domain.terms_changes import Change, Clock, Level, Terms, changes

from .choices import Cause, priority_name
from .models import Contract, EscalationLevel, MaintenanceWindow, Outage, PriorityTerm, Service, SLAVersion


def contracts_for_user(*, user) -> QuerySet[Contract]:
    """The contracts a customer may see: their organisation's only. Staff and anonymous users get
    none here (staff work in the admin)."""
    if not getattr(user, "is_authenticated", False) or not user.organisation_id:
        return Contract.objects.none()
    return Contract.objects.filter(organisation_id=user.organisation_id)


def services_for_user(*, user) -> QuerySet[Service]:
    """The services the user's organisation has under any of its contracts."""
    contracts = contracts_for_user(user=user)
    return Service.objects.filter(pk__in=contracts.values("services"))


def windows_for_user(*, user) -> QuerySet[MaintenanceWindow]:
    """The maintenance windows that touch a service of the user's organisation."""
    return MaintenanceWindow.objects.filter(
        pk__in=MaintenanceWindow.services.through.objects.filter(service__in=services_for_user(user=user)).values(
            "maintenancewindow"
        )
    )


def outages_for_user(*, user) -> QuerySet[Outage]:
    """The outages that touch a service of the user's organisation: those its contracts' uptime
    counts (or excludes by their cause). A customer-scoped outage only where it is scoped to one of
    the organisation's contracts: another organisation never sees it."""
    mine = Outage.contracts.through.objects.filter(contract__organisation_id=user.organisation_id).values("outage")
    return Outage.objects.filter(
        pk__in=Outage.services.through.objects.filter(service__in=services_for_user(user=user)).values("outage")
    ).filter(Q(customer_scoped=False) | Q(pk__in=mine))


def terms_in_force(*, sla_ids: Iterable[int], at: datetime) -> dict[int, SLAVersion]:
    """Per SLA, the published version in force at `at` with its matrices loaded: a fixed number of
    queries however many SLAs (versions_with_terms)."""
    out: dict[int, SLAVersion] = {}
    versions = versions_with_terms().filter(sla_id__in=set(sla_ids), published_at__isnull=False, effective_from__lte=at)
    for version in versions.order_by("effective_from", "number"):
        out[version.sla_id] = version
    return out


def staff_by_role_once():
    """level_contact's `staff_by_role`, each role looked up once (a list of many contracts asks the
    same few roles again and again)."""
    from django.contrib.auth import get_user_model

    found: dict[str, object] = {}

    def lookup(role: str):
        if role not in found:
            found[role] = (
                get_user_model().objects.filter(is_staff=True, is_active=True, staff_role=role).order_by("id").first()
            )
        return found[role]

    return lookup


def version_in_force(*, sla_id: int, at: datetime) -> SLAVersion | None:
    """The published version with the latest effective moment not after `at`."""
    return (
        SLAVersion.objects.filter(sla_id=sla_id, published_at__isnull=False, effective_from__lte=at)
        .order_by("-effective_from", "-number")
        .first()
    )


def zones_in_force(*, at: datetime) -> dict[int, str]:
    """Per SLA, the timezone of its version in force at `at` (version_in_force's rule), in one query."""
    versions = SLAVersion.objects.filter(published_at__isnull=False, effective_from__lte=at)
    return dict(versions.order_by("effective_from", "number").values_list("sla_id", "timezone"))  # the last wins


def running_at(contracts: QuerySet[Contract], at: datetime, until: datetime | None = None) -> QuerySet[Contract]:
    """Of `contracts`, those running at `at` (or at some moment of [at, until)) on their own
    calendar: its date in the zone of their terms in force at `at` (zones_in_force; UTC where none
    are) between starts_on and ends_on, both counted (portal.domain.dates.runs_during). A contract
    starting on 1 December in Nairobi runs from 30 November 21:00 UTC."""
    # every zone's date is within a day of UTC's
    first, last = at.astimezone(UTC).date(), max(at, until or at).astimezone(UTC).date()
    near = contracts.filter(starts_on__lte=last + timedelta(days=1)).filter(
        Q(ends_on__isnull=True) | Q(ends_on__gte=first - timedelta(days=1))
    )
    zones = zones_in_force(at=at)
    running = [
        pk
        for pk, sla_id, starts, ends in near.values_list("pk", "sla_id", "starts_on", "ends_on")
        if runs_during(starts, ends, zones.get(sla_id, "UTC"), at, until)
    ]
    return Contract.objects.filter(pk__in=running)


def versions_with_terms() -> QuerySet[SLAVersion]:
    """Versions with their matrices loaded in a fixed number of queries, however many."""
    return SLAVersion.objects.select_related("sla", "business_calendar", "escalation_ack_calendar").prefetch_related(
        Prefetch("priorities", queryset=PriorityTerm.objects.select_related("calendar", "resolution_calendar")),
        Prefetch("escalation_levels", queryset=EscalationLevel.objects.order_by("level")),
        "escalation_dwells",
        "credit_tiers",
    )


def version_with_terms(*, version_id: int) -> SLAVersion:
    """A version with its matrices loaded in a fixed number of queries."""
    return versions_with_terms().get(pk=version_id)


def organisation_manager(*, level: EscalationLevel, organisation):
    """The organisation's own manager for the level's role (its account or solutions manager), if
    they are still active: one who left is nobody's contact, the role's staff are."""
    person = None
    if level.staff_role == "account_manager":
        person = organisation.account_manager
    elif level.staff_role == "cloud_solutions_manager":
        person = organisation.solutions_manager
    return person if person is not None and person.is_active else None


def level_contact(*, level: EscalationLevel, organisation, staff_by_role=None) -> tuple[str, str]:
    """Who the customer reaches at a level, and how: the level's own contact, else the
    organisation's own manager for that role, else the vendor's staff member with the role
    (`staff_by_role(role)`, which a sweep passes to look staff up once per batch)."""
    from django.contrib.auth import get_user_model

    if level.contact:
        return level.instruction, level.contact
    person = organisation_manager(level=level, organisation=organisation)
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

    def of_month(self, sla_id: int, month: date) -> SLAVersion | None:
        """The terms that judge `month`, or None: the last version that took effect before the month
        ended in its own zone (a version effective on 1 December, wherever its zone, judges December
        on, never November). The month's period, its close and its claim window are in that
        version's zone, whatever is published later (credits.closing stores it on the closed month).
        Judging by the zone of the terms shown at some moment instead let a version in a zone further
        east close the month hours before it had ended in the zone of the terms that judge it."""
        found = None
        for v in self._by_sla.get(sla_id, ()):
            if v.effective_from < month_bounds(month.year, month.month, v.timezone)[1]:
                found = v
        return found

    def longest_claim_window(self, sla_id: int) -> int:
        return max((v.claim_window_days for v in self._by_sla.get(sla_id, ())), default=0)


# --- What a version changes, who is told, and the history a customer sees ---------------------------


def version_terms(version: SLAVersion) -> Terms:
    """A version's terms as the pure comparison reads them (load it with versions_with_terms)."""
    return Terms(
        guarantee=version.uptime_guarantee,
        timezone=version.timezone,
        business_hours=version.business_calendar.name,
        credit_kind=version.get_credit_kind_display(),
        claim_window_days=version.claim_window_days,
        exclusion_causes=tuple(Cause(c).label for c in version.exclusion_causes or []),
        clocks={
            priority_name(p.priority): Clock(
                p.calendar.name, p.resolution_clock.name, p.first_response, p.resolution_target, p.resolution_limit
            )
            for p in version.priorities.all()
        },
        levels={lv.level: Level(lv.instruction, lv.get_channel_display(), lv.contact) for lv in version.escalation_levels.all()},
        dwells={(d.level, priority_name(d.priority)): d.dwell for d in version.escalation_dwells.all()},
        tiers=tuple(t.as_tier() for t in version.credit_tiers.all()),
        maintenance_notice=version.maintenance_notice,
        offpeak=(version.offpeak_start, version.offpeak_end),
        maintenance_annual_cap=version.maintenance_annual_cap,
        escalation_ack=version.escalation_ack_time,
        escalation_ack_calendar=version.escalation_ack_calendar.name if version.escalation_ack_calendar else "",
    )  # fmt: skip


def version_changes(*, version: SLAVersion, previous: SLAVersion | None) -> list[Change]:
    """What `version` changes against the version in force before it (nothing for a first version)."""
    return changes(version_terms(previous), version_terms(version)) if previous is not None else []


def version_recipients(*, version: SLAVersion) -> list[tuple[Recipient, list[Contract]]]:
    """Who is told when the version is published: each person the email rule lets through for a
    contract on its SLA that the version will judge (portal.core.notify_rules: its designated
    contacts, and members who chose SLA changes), once, with their contracts on it; by email address.
    A contract whose last day is before the effective date (in the version's zone, both days counted
    as portal.domain.dates.runs_during counts them) is never under these terms: it is not told."""
    by_person: dict = {}
    prefs = Preferences()
    effective_on = version.effective_from.astimezone(ZoneInfo(version.timezone)).date()
    contracts = list(
        version.sla.contracts.filter(Q(ends_on__isnull=True) | Q(ends_on__gte=effective_on))
        .select_related("organisation")
        .prefetch_related("contacts", members_prefetch())
        .order_by("reference")
    )
    prefs.load(u.pk for contract in contracts for u in contract.organisation.users.all())
    for contract in contracts:
        for r in for_contract(Kind.SLA_CHANGE, contract, prefs=prefs):
            by_person.setdefault(r.user.pk, (r, []))[1].append(contract)
    return sorted(by_person.values(), key=lambda pair: pair[0].user.email)


@dataclass
class Preview:
    """A draft as its publication would tell it: the version it follows, what changes, who is told."""

    version: SLAVersion
    previous: SLAVersion | None
    changes: list[Change]
    recipients: list = field(default_factory=list)


def version_preview(*, version: SLAVersion) -> Preview:
    """The draft against the published version in force just before it takes effect."""
    loaded = versions_with_terms().get(pk=version.pk)
    previous = (
        versions_with_terms()
        .filter(sla_id=version.sla_id, published_at__isnull=False, effective_from__lt=version.effective_from)
        .exclude(pk=version.pk)
        .order_by("-effective_from", "-number")
        .first()
    )
    return Preview(
        version=loaded,
        previous=previous,
        changes=version_changes(version=loaded, previous=previous),
        recipients=version_recipients(version=loaded),
    )


@dataclass(frozen=True)
class Entry:
    """A published version in a contract's history."""

    version: SLAVersion
    changes: list[Change]
    state: str  # "in force", "upcoming" or "superseded"


@dataclass
class Timeline:
    in_force: SLAVersion | None
    upcoming: list[Entry]  # the soonest first
    history: list[Entry]  # every published version, the latest first


def in_force_of(versions: list[SLAVersion], at: datetime) -> SLAVersion | None:
    """Of an SLA's published versions ordered by (effective_from, number), the one in force at `at`
    (version_in_force's rule, for versions already read)."""
    in_force = None
    for v in versions:
        if v.effective_from <= at:
            in_force = v
    return in_force


def sla_timeline(*, sla_id: int, at: datetime) -> Timeline:
    """Every published version of the SLA with its terms and what it changed against the one before,
    in the queries of one versions_with_terms(): the contract page's terms, upcoming and history."""
    versions = list(
        versions_with_terms().filter(sla_id=sla_id, published_at__isnull=False).order_by("effective_from", "number")
    )
    in_force = in_force_of(versions, at)
    entries = []
    for i, v in enumerate(versions):
        state = "in force" if v is in_force else ("upcoming" if v.effective_from > at else "superseded")
        entries.append(Entry(v, version_changes(version=v, previous=versions[i - 1] if i else None), state))
    return Timeline(
        in_force=in_force,
        upcoming=[e for e in entries if e.state == "upcoming"],
        history=entries[::-1],
    )
