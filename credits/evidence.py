"""Closed months follow late evidence: the receiver of contracts.evidence.evidence_moved.

An outage recorded, changed or deleted, its cause changed, an alert that opens or closes one, a
maintenance window published, changed, cancelled or deleted: every closed month the change touches
is reopened for every contract whose month counted the evidence's services (the services it was
closed with: MonthlyUptime.service_ids), through credits.services' reopen path
(no actor; the reason names the evidence), in the transaction of the change. The hourly sweep (or
a claim's preview) closes it again with the new figure (credits.closing, credits.rejudging).

What a change touches:
- an outage whose services and cause stay: what changed of its span (the minutes it gained or
  lost); otherwise its whole span before and after. An ongoing outage runs until further notice.
- a window: its span before and after, and, since the 12 hours a year are used by windows in order
  of their start, every later month of the same calendar year that counted maintenance.

It costs nothing for evidence of the current month (no month it touches can be closed) and one
indexed query otherwise.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from functools import reduce
from operator import or_

from django.db.models import Q

from contracts.evidence import MAINTENANCE, EvidenceChange
from contracts.models import Contract
from portal.domain.dates import add_months, month_bounds

from .closing import EARLIEST_OFFSET, ids_text, month_lock, text_ids, unpack
from .models import MonthlyUptime
from .services import months_reopen

Span = tuple[datetime, datetime | None]  # an end of None: until further notice
REASONS_SHOWN = 5


def on_evidence_moved(sender, *, changes: list[EvidenceChange], now: datetime, **kwargs) -> None:
    months_reopen_for_evidence(changes=changes, now=now)


def on_contract_reframing(sender, *, contract, sla_id: int, starts_on: date, ends_on: date | None, **kwargs):
    """Why the contract's SLA or dates cannot change, or None: its closed (or reopened) months were
    judged by the terms of its SLA and closed again by them, so the SLA stays once one exists (a
    change of terms is a new version of the SLA, published with notice), and no such month may fall
    outside its dates."""
    months = MonthlyUptime.objects.filter(contract=contract)
    if sla_id != contract.sla_id and (last := months.order_by("-month").first()):
        return (
            f"The contract's months up to {last.month:%B %Y} were judged by the terms of {contract.sla.name}: "
            "it keeps that SLA (a change of terms is a new version of it, published with notice to the contacts)."
        )
    first_kept = starts_on.replace(day=1)
    if early := months.filter(month__lt=first_kept).order_by("month").first():
        return f"{early.month:%B %Y} is a closed month of this contract: it cannot start after it."
    if ends_on is not None and (late := months.filter(month__gt=ends_on).order_by("-month").first()):
        return f"{late.month:%B %Y} is a closed month of this contract: it cannot end before it."
    return None


def _changed_spans(change: EvidenceChange) -> list[Span]:
    before, after = change.before, change.after
    # An outage counts minute by minute; a window is judged whole (notice, off-peak hours), so any
    # change of it may move all of its minutes.
    same = before and after and _counting(before) == _counting(after)
    if same and change.kind != MAINTENANCE:
        spans = []
        if before.start != after.start:
            spans.append((min(before.start, after.start), max(before.start, after.start)))
        if before.end != after.end:
            ends = [before.end, after.end]
            lower = min(e for e in ends if e is not None)
            spans.append((lower, None if None in ends else max(ends)))
        return spans
    return [(e.start, e.end) for e in (before, after) if e is not None]


def _counting(evidence) -> tuple:
    """What decides for whom and whether an outage's minutes count (all but its span)."""
    return (evidence.service_ids, evidence.cause, evidence.impacts, evidence.contracts, evidence.customer_scoped)


def _year_tail(change: EvidenceChange) -> Span | None:
    """From a window's start to the end of its calendar year (in any timezone): where the annual
    cap it uses may move the judgement of later windows."""
    if change.kind != MAINTENANCE:
        return None
    starts = [e.start for e in (change.before, change.after) if e is not None]
    last = max(e.end for e in (change.before, change.after) if e is not None)
    year_end = datetime(last.astimezone(UTC).year + 1, 1, 1, tzinfo=UTC) + EARLIEST_OFFSET
    return min(starts), year_end


def _months(spans: list[Span], now: datetime) -> set[date]:
    """The months, in any timezone, that the spans touch and that have ended somewhere by now."""
    months = set()
    for start, end in spans:
        lo = (start - EARLIEST_OFFSET).astimezone(UTC)
        hi = min(end or now, now) + EARLIEST_OFFSET
        month = date(lo.year, lo.month, 1)
        while month_bounds(month.year, month.month, "UTC")[0] < hi:
            if month_bounds(month.year, month.month, "UTC")[1] - EARLIEST_OFFSET <= now:
                months.add(month)
            month = add_months(month, 1)
    return months


def _overlaps(row: MonthlyUptime, span: Span) -> bool:
    start, end = span
    return start < row.period_end and (end is None or end > row.period_start)


def months_reopen_for_evidence(*, changes: list[EvidenceChange], now: datetime) -> int:
    """Reopen every closed month the changes touch (see the module's docstring). Returns how many."""
    touched = []  # (change, its spans, its year tail, its services)
    months: set[date] = set()
    for change in changes:
        spans, tail = _changed_spans(change), _year_tail(change)
        found = _months(spans + ([tail] if tail else []), now)
        if found:
            sids = frozenset().union(*(e.service_ids for e in (change.before, change.after) if e is not None))
            touched.append((change, spans, tail, sids))
            months |= found
    if not touched:
        return 0
    month_lock(months)  # a run closing one of them stores its figures first, or reads this change
    sids = frozenset().union(*(t[3] for t in touched))
    # A month is judged on the services it was closed with (its row's), not the contract's today.
    through = Contract.services.through.objects.filter(service_id__in=sids)
    on_them = reduce(or_, (Q(service_ids__contains=ids_text([s])) for s in sids), Q(pk__in=[]))
    not_kept = Q(service_ids="", contract_id__in=through.values("contract_id"))
    rows = list(
        MonthlyUptime.objects.select_for_update(of=("self",))
        .filter(on_them | not_kept, status=MonthlyUptime.Status.CLOSED, month__in=months)
        .select_related("contract")
        .order_by("pk")
    )
    if not rows:
        return 0
    services = defaultdict(set)
    for contract_id, service_id in through.filter(
        contract_id__in={r.contract_id for r in rows if not r.service_ids}
    ).values_list("contract_id", "service_id"):
        services[contract_id].add(service_id)
    reasons: dict[int, list[str]] = {}
    for row in rows:
        row_sids = text_ids(row.service_ids)
        for change, spans, tail, change_sids in touched:
            if not (services[row.contract_id] if row_sids is None else row_sids) & change_sids:
                continue
            if any(_overlaps(row, s) for s in spans) or (tail and _overlaps(row, tail) and _has_maintenance(row)):
                reasons.setdefault(row.pk, []).append(change.reason)
    reopened = [row for row in rows if row.pk in reasons]
    return months_reopen(monthly_uptimes=reopened, reasons={pk: _reason(r) for pk, r in reasons.items()}, actor=None,
                         now=now)  # fmt: skip


def _has_maintenance(row: MonthlyUptime) -> bool:
    """Whether the closed month counted a maintenance window (its stored breakdown: credits.closing)."""
    return isinstance(row.breakdown, dict) and bool(unpack(row.breakdown.get("maintenance") or ""))


def _reason(reasons: list[str]) -> str:
    text = "; ".join(reasons[:REASONS_SHOWN])
    if len(reasons) > REASONS_SHOWN:
        text += f"; and {len(reasons) - REASONS_SHOWN} more"
    return f"Evidence changed: {text}."
