"""The reads of maintenance windows: which windows a contract, an organisation or staff see, each
judged for every contract it touches (judging), in a fixed number of queries however many windows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from portal.domain.intervals import clip, merge, subtract
from portal.domain.maintenance_rules import Interval

from ..models import Contract, MaintenanceNotice, MaintenanceWindow, Service
from ..selectors import Versions
from .judging import (
    NOTICE_KINDS,
    TOLD_FIELDS,
    ContractJudgement,
    Impact,
    Status,
    WindowDraft,
    draft_of,
    judge_contract,
    judgement_row,
    runs_at_window,
    service_ids,
    told_by_window,
)

PAST_DAYS = 90  # how far back the portal page and the iCal feed go


def _year_floor(moment: datetime) -> datetime:
    """A moment before 1 January, in every timezone, of the year `moment` is in anywhere: windows
    ending after it are all that a judgement of that year's cap needs."""
    return datetime((moment - timedelta(days=1)).year, 1, 1, tzinfo=UTC) - timedelta(days=1)


def _load(
    contracts: list[Contract], *, since: datetime, only_counting: bool = False, until: datetime | None = None,
    services: dict[int, frozenset[int]] | None = None,
):  # fmt: skip
    """The windows touching the contracts' services that end after `since` (services prefetched, or
    given by contract in `services`), the sent notices of those windows to those contracts, and the
    contracts' SLA versions."""
    services = services or {}
    sids = set().union(*(services[c.pk] if c.pk in services else service_ids(c) for c in contracts))
    windows = MaintenanceWindow.objects.filter(services__in=sids, ends_at__gt=since)
    if only_counting:
        windows = windows.filter(status=Status.SCHEDULED, impact=Impact.DOWNTIME)
    if until is not None:
        windows = windows.filter(starts_at__lt=until)
    windows = list(windows.distinct().order_by("starts_at", "pk").prefetch_related("services"))
    sent = told_by_window(
        MaintenanceNotice.objects.filter(
            window_id__in=[w.pk for w in windows], contract__in=contracts, kind__in=NOTICE_KINDS
        ).values_list(*TOLD_FIELDS)
    )
    return windows, sent, Versions(c.sla_id for c in contracts)


def window_judgements(window: MaintenanceWindow | WindowDraft, now: datetime | None = None) -> list[ContractJudgement]:
    """For every contract whose services the window touches: does it keep that contract's rules,
    and how many minutes count as ordinary downtime because of it. Reads only."""
    now = now or timezone.now()
    draft = window if isinstance(window, WindowDraft) else draft_of(window)
    if not draft.service_ids:
        return []
    contracts = list(
        Contract.objects.filter(services__in=draft.service_ids)
        .distinct()
        .select_related("organisation")
        .prefetch_related("services")
        .order_by("organisation__name", "reference")
    )
    if not contracts:
        return []
    windows, sent, versions = _load(contracts, since=_year_floor(draft.starts_at), only_counting=True)
    # Only the contracts running at the window are told of it and judged by it.
    contracts = [c for c in contracts if runs_at_window(c, draft.starts_at, draft.ends_at, versions)]
    drafts = [draft_of(w) for w in windows if w.pk != draft.pk] + [draft]
    return [
        judgement_row(c, draft, judge_contract(c, drafts, sent, versions, now), sent, versions, now) for c in contracts
    ]


def contract_maintenance_exclusions(
    contract: Contract, start: datetime, end: datetime, now: datetime | None = None
) -> tuple[list[Interval], list[Interval]]:
    """The contract's scheduled downtime in [start, end), UTC: the rule-keeping part (excluded from
    uptime) and the rest (ordinary downtime). Each list is merged; a moment that one window keeps is
    never in the second list (an excluded minute is excluded even where other downtime overlaps)."""
    contract = Contract.objects.prefetch_related("services").get(pk=contract.pk)
    return contracts_maintenance_exclusions([contract], start, end, now)[contract.pk]


@dataclass(frozen=True)
class WindowPart:
    """One downtime window as it counts for one contract: what it keeps and what it breaks."""

    window_id: int
    title: str
    kept: tuple[Interval, ...]
    broken: tuple[Interval, ...]


def contracts_maintenance_parts(
    contracts: list[Contract],
    start: datetime,
    end: datetime,
    now: datetime | None = None,
    services: dict[int, frozenset[int]] | None = None,
) -> dict[int, list[WindowPart]]:
    """Per contract (services prefetched), its downtime windows touching [start, end), judged, in a
    fixed number of queries: the month-end run calls it once per chunk of contracts. `services`: a
    contract's services to judge it on instead of its own (a closed month's, as it was closed)."""
    now = now or timezone.now()
    if not contracts:
        return {}
    services = services or {}
    windows, sent, versions = _load(
        contracts, since=_year_floor(start), only_counting=True, until=end, services=services
    )
    drafts = [draft_of(w) for w in windows]
    titles = {w.pk: w.title for w in windows}
    out = {}
    for contract in contracts:
        judged = judge_contract(contract, drafts, sent, versions, now, services.get(contract.pk))
        parts = []
        for d in drafts:
            if d.key not in judged or d.ends_at <= start:
                continue
            judgement, _ = judged[d.key]
            if judgement is None:  # no terms to keep: all of it is downtime
                kept, broken = (), ((d.starts_at.astimezone(UTC), d.ends_at.astimezone(UTC)),)
            else:
                kept, broken = judgement.kept, judgement.broken
            parts.append(
                WindowPart(d.pk, titles.get(d.pk, ""), tuple(clip(kept, start, end)), tuple(clip(broken, start, end)))
            )
        out[contract.pk] = parts
    return out


def contracts_window_judgements(
    contracts: list[Contract], *, since: datetime, now: datetime
) -> list[tuple[MaintenanceWindow, list[ContractJudgement]]]:
    """Every scheduled downtime window ending after `since` that touches the contracts' services
    (services prefetched, organisation selected), soonest first, with one row per contract it
    touches: window_judgements for many windows at once, in a fixed number of queries."""
    if not contracts:
        return []
    windows, sent, versions = _load(contracts, since=_year_floor(since), only_counting=True)
    drafts = [draft_of(w) for w in windows]
    judged = {c.pk: judge_contract(c, drafts, sent, versions, now) for c in contracts}
    out = []
    for w, d in zip(windows, drafts, strict=True):
        if w.ends_at > since:
            rows = [
                judgement_row(c, d, judged[c.pk], sent, versions, now)
                for c in contracts
                if d.service_ids & service_ids(c) and runs_at_window(c, d.starts_at, d.ends_at, versions)
            ]
            out.append((w, rows))
    return out


def contracts_maintenance_exclusions(
    contracts: list[Contract], start: datetime, end: datetime, now: datetime | None = None
) -> dict[int, tuple[list[Interval], list[Interval]]]:
    """contract_maintenance_exclusions for many contracts at once."""
    out = {}
    for contract_id, parts in contracts_maintenance_parts(contracts, start, end, now).items():
        kept = merge(i for p in parts for i in p.kept)
        out[contract_id] = (kept, subtract(merge(i for p in parts for i in p.broken), kept))
    return out


# --- What a customer sees -----------------------------------------------------------------------
@dataclass(frozen=True)
class WindowView:
    window: MaintenanceWindow
    services: list[Service]  # the organisation's services it touches
    contracts: list[ContractJudgement]
    ongoing: bool = False


def organisation_contracts(organisation_id: int) -> list[Contract]:
    return list(
        Contract.objects.filter(organisation_id=organisation_id).prefetch_related("services").order_by("reference")
    )


def organisation_maintenance(
    *, organisation_id: int, now: datetime, past_days: int = PAST_DAYS
) -> tuple[list[WindowView], list[WindowView]]:
    """Upcoming (and ongoing) windows, soonest first, and those of the last `past_days`, latest first,
    of the organisation's services only, each judged for every contract of the organisation."""
    contracts = organisation_contracts(organisation_id)
    if not contracts:
        return [], []
    since = now - timedelta(days=past_days)
    windows, sent, versions = _load(contracts, since=_year_floor(since))
    drafts = [draft_of(w) for w in windows]
    judged = {c.pk: judge_contract(c, drafts, sent, versions, now) for c in contracts}
    org_sids = set().union(*(service_ids(c) for c in contracts))
    upcoming, past = [], []
    for w, d in zip(windows, drafts, strict=True):
        if w.ends_at <= since:
            continue
        rows = [
            judgement_row(c, d, judged[c.pk], sent, versions, now)
            for c in contracts
            if d.service_ids & service_ids(c) and runs_at_window(c, d.starts_at, d.ends_at, versions)
        ]
        view = WindowView(w, [s for s in w.services.all() if s.pk in org_sids], rows, w.starts_at <= now < w.ends_at)
        (upcoming if w.ends_at > now else past).append(view)
    past.reverse()
    return upcoming, past


def organisation_windows(*, organisation_id: int, since: datetime) -> list[tuple[MaintenanceWindow, list[Service]]]:
    """The organisation's windows ending after `since` (the iCal feed), with its services they touch."""
    contracts = organisation_contracts(organisation_id)
    if not contracts:
        return []
    org_sids = set().union(*(service_ids(c) for c in contracts))
    windows = (
        MaintenanceWindow.objects.filter(services__in=org_sids, ends_at__gt=since)
        .distinct()
        .order_by("starts_at", "pk")
        .prefetch_related("services")
    )
    return [(w, [s for s in w.services.all() if s.pk in org_sids]) for w in windows]
