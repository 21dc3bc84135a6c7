"""The month-end run: close every contract-month that has ended in its contract's timezone.

It streams contracts in chunks and does a fixed number of queries per chunk (outages of the
month are loaded once for the run; maintenance windows, notices and SLA versions once per chunk),
so 10,000 contracts take a few hundred queries and bounded memory. Each closed month is one row
(unique per contract and month): running again changes nothing; a reopened month is closed again
with fresh figures and the invoice frozen on its row when it was first closed (what follows is
credits.rejudging: the audit, the customers' email, the claims). The hourly sweep (close_due) closes
every ended month of the last HISTORY_MONTHS, not only the last one, and every reopened month.

A row's breakdown is compact (a month with 250 outages would otherwise store 60 KB of titles and
times per contract): what the month counted, by id, and nothing the outage or window says about
itself. Readers (credits.figures.breakdown_lines) read titles, causes and times by id at display
time, in one query per kind. Each kind's lines are packed into one string (`pack`): as jsonb,
PostgreSQL would parse and store every number on its own; a string is written as it is
(bench/RESULTS.md, the month-end run).

    {"outages": "outage id,minutes of the month it touches,1 if excluded else 0;...",
     "maintenance": "window id,minutes within the rules (excluded),minutes counted as down;..."}
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import DateField, F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, Greatest, Least, TruncMonth
from django.utils import timezone

from contracts.choices import DOWN_FOR_EVERYONE, DOWN_FOR_SCOPED, Cause, Impact
from contracts.maintenance.judging import service_ids
from contracts.maintenance.selectors import contracts_maintenance_parts
from contracts.models import Contract, MaintenanceWindow, Outage
from contracts.selectors import Versions
from portal.core.locks import transaction_lock
from portal.domain.dates import add_months, month_bounds, previous_month, term_period
from portal.domain.tiers import credit_amount, credit_percent
from portal.domain.uptime import Interval, minutes, period_uptime, round_out

from .models import MonthlyUptime
from .notices import claims_invite, reminders_schedule
from .rejudging import credit_moved, months_rejudged

CHUNK = 500
SLACK = timedelta(days=2)  # widest UTC offsets: a month in any timezone lies within its UTC month +- 2 days
Status = MonthlyUptime.Status


@dataclass(frozen=True)
class OutageSpan:
    id: int
    title: str
    cause: str
    start: datetime
    end: datetime  # ongoing: clipped to the run's moment
    services: frozenset[int]
    # Where it is down (PRODUCT.md, "Incidents and notices"): on `everyone` for every contract on
    # them (major, not customer-scoped); on `scoped_services` (major or partial) for `contracts` only.
    everyone: frozenset[int] | None = None  # None: all its services (an outage of major impact)
    scoped_services: frozenset[int] = frozenset()
    contracts: frozenset[int] = frozenset()

    def counts_for(self, contract_id: int, sids) -> bool:
        """Whether the outage is down for this contract (on these services)."""
        everyone = self.services if self.everyone is None else self.everyone
        if not everyone.isdisjoint(sids):
            return True
        return contract_id in self.contracts and not self.scoped_services.isdisjoint(sids)


OUTAGE_COLUMNS = ("id", "title", "cause", "starts_at", "ends_at", "services", "impacts", "customer_scoped")


def outage_spans(rows, end_of) -> list[OutageSpan]:
    """OutageSpans of rows of OUTAGE_COLUMNS (one per outage and service); `end_of(ends_at)` is the
    end it counts with. The one place an outage's impacts and scope turn into whom it is down for:
    the contracts it is scoped to are read (one query) only for outages with a scope or an impact
    other than major, so the common case costs nothing more."""
    spans: dict[int, dict] = {}
    for oid, title, cause, start, end, service, impacts, scoped in rows:
        span = spans.setdefault(oid, {"title": title, "cause": cause, "start": start, "end": end_of(end),
                                      "services": set(), "impacts": impacts or {}, "scoped": scoped})  # fmt: skip
        if service is not None:
            span["services"].add(service)
    special = [oid for oid, s in spans.items() if s["scoped"] or s["impacts"]]
    scope: dict[int, set[int]] = {oid: set() for oid in special}
    for i in range(0, len(special), CHUNK):
        through = Outage.contracts.through.objects.filter(outage_id__in=special[i : i + CHUNK])
        for oid, cid in through.values_list("outage_id", "contract_id"):
            scope[oid].add(cid)
    out = []
    for oid, s in spans.items():
        services = frozenset(s["services"])
        if oid not in scope:
            out.append(OutageSpan(oid, s["title"], s["cause"], s["start"], s["end"], services))
            continue
        impact = {sid: s["impacts"].get(str(sid), Impact.MAJOR) for sid in services}
        everyone = frozenset() if s["scoped"] else frozenset(k for k, v in impact.items() if v in DOWN_FOR_EVERYONE)
        scoped = frozenset(k for k, v in impact.items() if v in DOWN_FOR_SCOPED)
        out.append(OutageSpan(oid, s["title"], s["cause"], s["start"], s["end"], services, everyone, scoped,
                              frozenset(scope[oid])))  # fmt: skip
    return out


def _outages(lo: datetime, hi: datetime, now: datetime) -> list[OutageSpan]:
    rows = (
        Outage.objects.filter(starts_at__lt=hi)
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=lo))
        .values_list(*OUTAGE_COLUMNS)
    )
    return outage_spans(rows.iterator(chunk_size=2000), lambda end: end or now)


class OutageIndex:
    """The run's outages by service, so a contract looks only at its own services' outages."""

    def __init__(self, outages: Iterable[OutageSpan]):
        self._by_service: dict[int, list[OutageSpan]] = {}
        for o in outages:
            for sid in o.services:
                self._by_service.setdefault(sid, []).append(o)

    def for_services(self, sids: Iterable[int]) -> list[OutageSpan]:
        seen: dict[int, OutageSpan] = {}
        for sid in sids:
            for o in self._by_service.get(sid, ()):
                seen.setdefault(o.id, o)
        return sorted(seen.values(), key=lambda o: (o.start, o.id))

    def for_contract(self, contract_id: int, sids: frozenset[int]) -> tuple[list[OutageSpan], bool]:
        """The outages down for the contract, and whether any of its services' outages is scoped
        (then its uptime is its own, not shared with contracts on the same SLA and services)."""
        found = self.for_services(sids)
        own = any(o.contracts for o in found)
        return [o for o in found if o.counts_for(contract_id, sids)], own


class Breakdown(dict):
    """A month's breakdown, as stored (see the module's docstring). `spans` holds the outages it
    names as this computation saw them (an ongoing one cut at its moment): not stored, it lets live
    figures show their lines without reading the outages again."""

    def __init__(self, outages=(), maintenance=(), spans=None):
        super().__init__(outages=pack(outages), maintenance=pack(maintenance))
        self.spans: dict[int, OutageSpan] = spans or {}


def pack(lines: Iterable[Sequence[int]]) -> str:
    """[(12, 500, 0), (13, 20, 1)] -> "12,500,0;13,20,1": a breakdown's lines of one kind."""
    return ";".join(",".join(map(str, line)) for line in lines)


def unpack(text: str) -> list[tuple[int, ...]]:
    """pack's inverse: "12,500,0;13,20,1" -> [(12, 500, 0), (13, 20, 1)]; "" -> []."""
    return [tuple(map(int, line.split(","))) for line in text.split(";")] if text else []


def ids_text(ids: Iterable[int]) -> str:
    """{5, 3} -> ",3,5,": a closed month's services (MonthlyUptime.service_ids), which a query finds
    by ",3," whatever the neighbours. The empty set is ","; "" is a row closed before they were kept."""
    return "," + "".join(f"{i}," for i in sorted(ids))


def text_ids(text: str) -> frozenset[int] | None:
    """ids_text's inverse; None for "" (not kept: the contract's services stand in)."""
    return frozenset(int(i) for i in text.split(",") if i) if text else None


def contract_month(
    contract: Contract, month: date, *, outages, maintenance, versions: Versions, now: datetime, cache=None,
    invoice: tuple[Decimal, str] | None = None, services: frozenset[int] | None = None,
):  # fmt: skip
    """The figures of one contract-month, or None where no SLA version is in force at its end.

    `outages` is an OutageIndex (or a plain list). Contracts on the same SLA and services with no
    maintenance of their own have the same uptime over the same period (contract_period): `cache` (a
    dict kept for one run) computes it once for all of them; only the credit differs (each
    contract's invoice). The period is the month clipped to the contract's term. `invoice` (amount,
    currency): the month's own, frozen when it was first closed; else the contract's. `services`
    likewise: the month's own (its row's service_ids), else the contract's (prefetched)."""
    version = versions.of_month(contract.sla_id, month)
    if version is None:
        return None
    start, end = contract_period(contract, month, versions)
    sids = services if services is not None else service_ids(contract)
    parts = maintenance.get(contract.pk, ())
    index = outages if isinstance(outages, OutageIndex) else OutageIndex(outages)
    counted, own = index.for_contract(contract.pk, sids)
    key = (contract.sla_id, sids, version.pk, start, end) if cache is not None and not parts and not own else None
    if key is not None and key in cache:
        up, breakdown = cache[key]
    else:
        up, breakdown = _uptime(contract, version, versions, start, end, counted, parts)
        if key is not None:
            cache[key] = (up, breakdown)
    tiers = [t.as_tier() for t in version.credit_tiers.all()]
    tier = credit_percent(up.percent, tiers)
    invoice_amount, currency = invoice or (contract.monthly_invoice_amount, contract.currency)
    amount = credit_amount(tier, invoice_amount, currency) if tier else None
    return {
        "sla_version": version, "period_start": up.start, "period_end": up.end,
        "total_minutes": up.total_minutes, "down_minutes": up.down_minutes, "excluded_minutes": up.excluded_minutes,
        "uptime_percent": round(up.percent, 8), "guarantee": version.uptime_guarantee, "tier_percent": tier,
        "credit_amount": amount, "invoice_amount": invoice_amount, "currency": currency,
        "credit_kind": version.credit_kind, "flagged": up.percent < version.uptime_guarantee and tier is None,
        "breakdown": breakdown, "service_ids": ids_text(sids),
    }  # fmt: skip


def contract_period(contract: Contract, month: date, versions: Versions) -> tuple[datetime, datetime]:
    """The one period a contract-month is judged on (the month-end run, live figures, a claim's
    preview, re-judging): the calendar month in the zone of the terms that judge it (Versions.of_month)
    clipped to the contract's term (portal.domain.dates.term_period). Downtime outside it is no
    one's: it is dropped, and the total minutes are the period's. A month of the contract's that
    follows one judged in another zone starts where that one ended: a change of terms to a zone
    further east counted the hours between the two midnights in both months, one further west in
    neither."""
    tz = versions.of_month(contract.sla_id, month).timezone
    start, end = term_period(month, tz, contract.starts_on, contract.ends_on)
    before = versions.of_month(contract.sla_id, previous_month(month))
    if before is not None and before.timezone != tz and contract.starts_on < month:
        start = month_bounds(month.year, month.month, before.timezone)[0]  # the previous month's end there
    return start, max(start, end)


def _uptime(contract, version, versions, start, end, outages, parts):
    down: list[Interval] = []
    excluded: list[Interval] = []
    lines, windows, spans = [], [], {}
    for o in outages:
        if o.start >= end or o.end <= start:
            continue
        # Each outage is judged by the terms in force when it started.
        terms = versions.at(contract.sla_id, o.start) or version
        is_excluded = o.cause != Cause.UNPLANNED and o.cause in (terms.exclusion_causes or [])
        (excluded if is_excluded else down).append((o.start, o.end))
        s, e = round_out(max(o.start, start), min(o.end, end))
        lines.append((o.id, minutes([(s, e)]), int(is_excluded)))
        spans[o.id] = o
    for part in parts:
        kept = [(s, e) for s, e in part.kept if s < end and e > start]
        broken = [(s, e) for s, e in part.broken if s < end and e > start]
        if not kept and not broken:
            continue
        excluded += kept
        down += broken
        windows.append((
            part.window_id,
            minutes(round_out(max(s, start), min(e, end)) for s, e in kept),
            minutes(round_out(max(s, start), min(e, end)) for s, e in broken),
        ))  # fmt: skip
    up = period_uptime(start, end, down=down, excluded=excluded)
    return up, Breakdown(lines, windows, spans)


def _candidates(month: date, contract_ids: Iterable[int] | None) -> Iterator[list[Contract]]:
    """Contracts running in the month whose month is not closed (or was reopened), in chunks."""
    nxt = (month + timedelta(days=32)).replace(day=1)
    reopened = MonthlyUptime.objects.filter(contract=OuterRef("pk"), month=month, status=Status.REOPENED).order_by()
    qs = (
        Contract.objects.filter(starts_on__lt=nxt)
        .filter(Q(ends_on__isnull=True) | Q(ends_on__gte=month))
        # A subquery, not exclude(monthly_uptimes__month=..., monthly_uptimes__status=...): across a
        # many-valued relation Django may match the two conditions on different rows, and a
        # reopened October beside a closed September would then never be closed again.
        .exclude(pk__in=MonthlyUptime.objects.filter(month=month, status=Status.CLOSED).values("contract_id"))
        # A candidate's row, if it has one, is reopened: its invoice and services as first closed.
        .annotate(
            frozen_amount=Subquery(reopened.values("invoice_amount")[:1]),
            frozen_currency=Subquery(reopened.values("currency")[:1]),
            frozen_services=Subquery(reopened.values("service_ids")[:1]),
        )
        .order_by("pk")
    )
    if contract_ids is not None:
        qs = qs.filter(pk__in=list(contract_ids))
    chunk: list[Contract] = []
    for contract in qs.prefetch_related("services").iterator(chunk_size=CHUNK):
        chunk.append(contract)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _ended(c: Contract, month: date, versions: Versions, now: datetime) -> bool:
    """Whether the month has ended in the zone of the terms that judge it (Versions.of_month: the
    zone of its period, its claim window and its live figures) and has such terms (contract_month
    gives no figures otherwise: no outage needs reading for it). The month's end, not the contract's
    period's: the period ends with it or before, and claims open at it (credits.services.claim_window)."""
    v = versions.of_month(c.sla_id, month)
    return v is not None and month_bounds(month.year, month.month, v.timezone)[1] <= now


def close_month(
    *, month: date, now: datetime | None = None, contract_ids=None, progress=None, invite: bool = True
) -> int:
    """Close `month` for every contract whose month has ended in its timezone, and close again the
    reopened ones (with the invoice frozen when they were first closed). Returns how many
    contract-months were closed. `invite`: whether a month below the guarantee invites its contacts
    to claim (credits.notices); not when a claim form closes it on demand (they are claiming)."""
    now = now or timezone.now()
    month = month.replace(day=1)
    if _utc_span(month)[0] >= now:
        return 0
    run = _Run()
    closed = 0
    for chunk in _candidates(month, contract_ids):
        versions = Versions(c.sla_id for c in chunk)
        ended = [c for c in chunk if _ended(c, month, versions, now)]
        if ended:
            closed += _close_chunk(ended, month, versions, now, run, invite=invite)
        if progress:
            progress(len(chunk))
    return closed


@dataclass
class _Run:
    """What a run's chunks share: the month's outages as last read, and one uptime per (SLA,
    services, version) without maintenance of its own, computed once while the outages stay."""

    spans: list[OutageSpan] | None = None
    outages: OutageIndex | None = None
    cache: dict = field(default_factory=dict)

    def read(self, lo: datetime, hi: datetime, now: datetime) -> OutageIndex:
        if self.spans != (fresh := _outages(lo, hi, now)):
            self.spans, self.outages = fresh, OutageIndex(fresh)
            self.cache.clear()
        return self.outages


@transaction.atomic
def _close_chunk(ended: list[Contract], month: date, versions: Versions, now: datetime, run: _Run, *, invite) -> int:
    """Read the evidence and store the figures in one transaction holding the month's lock: an
    outage or a window changed meanwhile either waits for it (and then reopens what it closed:
    credits.evidence) or is read by it. Read once for the whole run, a change made between the
    reading and the storing was lost: the month closed without it and nothing reopened it."""
    month_lock([month])
    lo, hi = _utc_span(month)
    outages = run.read(lo, hi, now)
    services = {c.pk: sids for c in ended if (sids := text_ids(c.frozen_services or "")) is not None}
    maintenance = contracts_maintenance_parts(ended, lo, hi, now, services) if _any_windows(lo, hi) else {}
    rows = []
    for c in ended:
        frozen = (c.frozen_amount, c.frozen_currency) if c.frozen_amount is not None else None
        figures = contract_month(
            c, month, outages=outages, maintenance=maintenance, versions=versions, now=now, cache=run.cache,
            invoice=frozen, services=services.get(c.pk),
        )  # fmt: skip
        if figures is not None:
            rows.append(MonthlyUptime(contract=c, month=month, closed_at=now, status=Status.CLOSED, **figures))
    return _store(rows, month, now, invite=invite)


def _utc_span(month: date) -> tuple[datetime, datetime]:
    """The UTC moments within which the month lies in any timezone."""
    utc_start, utc_end = month_bounds(month.year, month.month, "UTC")
    return utc_start - SLACK, utc_end + SLACK


def month_lock(months: Iterable[date]) -> None:
    """Until the transaction ends: closing these months (close_month) and reopening them for changed
    evidence (credits.evidence) one after the other."""
    transaction_lock(f"credits.month:{m:%Y-%m}" for m in months)


def _any_windows(lo: datetime, hi: datetime) -> bool:
    """Skip the maintenance queries for a month without any downtime window (the common case)."""
    year_start = datetime(lo.year, 1, 1, tzinfo=UTC) - SLACK
    return MaintenanceWindow.objects.filter(
        starts_at__lt=hi, ends_at__gt=year_start, impact=MaintenanceWindow.Impact.DOWNTIME
    ).exists()


def _store(rows: list[MonthlyUptime], month: date, now: datetime, *, invite: bool = True) -> int:
    if not rows:
        return 0
    fields = [f.name for f in MonthlyUptime._meta.concrete_fields if f.name not in ("id", "contract", "month")]
    reopened = {
        m.contract_id: m
        for m in MonthlyUptime.objects.select_for_update().filter(
            month=month, status=Status.REOPENED, contract_id__in=[r.contract_id for r in rows]
        )
    }
    fresh = [r for r in rows if r.contract_id not in reopened]
    again = []
    for r in rows:
        if r.contract_id in reopened:
            old = reopened[r.contract_id]
            r.pk = old.pk
            # The month's own invoice: a second closing between reading the candidates and this lock
            # cannot have changed it, but the row has the last word.
            r.invoice_amount, r.currency = old.invoice_amount, old.currency
            r.service_ids = old.service_ids or r.service_ids
            r.credit_changed_at = now if credit_moved(old, r) else old.credit_changed_at
            again.append((old, r))
    # Below the guarantee: the claim reminder's moment, and (closed for the first time) the invitation.
    # A month closed again is told by months_rejudged alone, where its credit moved.
    invitations = [(r, closes) for r, closes in reminders_schedule(rows, now) if r.contract_id not in reopened]
    # ignore_conflicts: a second run (or a second beat) that got here first wins quietly.
    created = MonthlyUptime.objects.bulk_create(fresh, ignore_conflicts=True)
    if invite:
        claims_invite(invitations, now)  # keyed by contract and month: the run that lost writes nothing new
    if again:
        MonthlyUptime.objects.bulk_update([r for _, r in again], fields)
        months_rejudged(pairs=again, now=now)  # audited; customers told, claims followed or flagged
    return len(created) + len(again)


EARLIEST_OFFSET = timedelta(hours=14)  # the first timezone to end a month (UTC+14)
HISTORY_MONTHS = 12  # the months the uptime page shows: the sweep closes every ended one of them


def close_due(*, now: datetime | None = None) -> int:
    """The hourly sweep: close every ended month of every contract, since its start, within the last
    HISTORY_MONTHS months (a contract created today with a start in January gets January to last
    month), and close again every reopened month, whatever its age. Idempotent, and cheap when
    nothing is due: one question of the contracts (whose first or last month of rows is behind what
    has ended, each answered from the index on contract and month) and one of the reopened months
    (a partial index); nothing else is read then."""
    now = now or timezone.now()
    months = months_to_close(now)
    first, last = add_months(months[0], 1 - HISTORY_MONTHS), months[-1]
    due = [add_months(first, i) for i in range(HISTORY_MONTHS - 1)] + months
    closed = 0
    behind = contracts_behind(first=first, last=last)
    if behind:
        closed += sum(close_month(month=m, now=now, contract_ids=behind) for m in due)
    reopened: dict[date, list[int]] = {}
    for month, contract_id in MonthlyUptime.objects.filter(status=Status.REOPENED).values_list("month", "contract_id"):
        reopened.setdefault(month, []).append(contract_id)
    for month, ids in sorted(reopened.items()):
        closed += close_month(month=month, now=now, contract_ids=ids)
    return closed


def contracts_behind(*, first: date, last: date) -> list[int]:
    """The contracts running in [first, last] (months) whose rows do not reach from their first
    month in it (its start, or `first`) to their last (their end, or `last`): a new contract, one
    whose start moved earlier, one whose last month has not been closed (or has not ended in its
    timezone yet: close_month tells). One query, two index lookups per contract."""
    rows = MonthlyUptime.objects.filter(contract=OuterRef("pk")).order_by()
    never = Value(date(1, 1, 1))
    expected_last = Least(Value(last), Coalesce(TruncMonth("ends_on", output_field=DateField()), Value(last)))
    qs = (
        Contract.objects.filter(starts_on__lt=add_months(last, 1))
        .filter(Q(ends_on__isnull=True) | Q(ends_on__gte=first))
        .annotate(
            last_row=Coalesce(Subquery(rows.order_by("-month").values("month")[:1]), never),
            first_row=Subquery(rows.order_by("month").values("month")[:1]),
            expected_first=Greatest(TruncMonth("starts_on", output_field=DateField()), Value(first)),
            expected_last=expected_last,
        )
        .filter(Q(last_row__lt=F("expected_last")) | Q(first_row__gt=F("expected_first")))
    )
    return list(qs.order_by("pk").values_list("pk", flat=True))


def months_to_close(now: datetime) -> list[date]:
    """The months that may have ended in some timezone and not yet been closed: last month, and
    this month once its end has come anywhere (UTC+14 ends it 14 hours before UTC does)."""
    this = now.astimezone(UTC).date().replace(day=1)
    months = [previous_month(this)]
    if month_bounds(this.year, this.month, "UTC")[1] - EARLIEST_OFFSET <= now:
        months.append(this)
    return months
