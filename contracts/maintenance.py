"""Maintenance windows: the reads (which windows a customer sees; which part of a window keeps each
contract's rules), the writes (publish, update, cancel; the iCal token) and the sweep that sends the
notices and reminders.

The rules are the pure `maintenance_rules.judge`; this module feeds it one contract's downtime
windows of the calendar years concerned, each with the moment its notice went out: the sent_at of
the announce/update notice of the window's current revision to that contract, or, while that
notice is yet to go out, the moment it would: max(now, start - notice).

Every email goes through the outbox in the transaction of the change, keyed
maintenance:<window>:r<revision>:<kind>:contract:<contract>:user:<user>, so it goes out once.
"""

from __future__ import annotations

import math
import re
import secrets
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import Q, prefetch_related_objects
from django.utils import timezone

from portal.core.outbox import Email, outbox_enqueue_many
from portal.domain.formats import duration, in_tz
from portal.domain.maintenance_rules import Interval, Judgement, Rules, Window, judge
from portal.domain.uptime import clip, merge, subtract

from .models import Contract, MaintenanceNotice, MaintenanceWindow, Organisation, Service, SLAVersion
from .selectors import Versions

BATCH = 200
DEFAULT_NOTICE = timedelta(hours=48)  # when no SLA version says otherwise
REMINDER_BEFORE = timedelta(hours=1)
REMINDER_GRACE = timedelta(minutes=15)  # a late sweep still reminds a window that has just started
PAST_DAYS = 90  # how far back the portal page and the iCal feed go
# How long before the notice horizon (start - notice) the sweep sends the notice. Beat sweeps once
# a minute, so a notice due exactly at the horizon goes out up to a minute after it: "short" by
# seconds, and its window would then count as downtime. Sending 5 minutes early ("no later than
# 48 hours before") makes every on-time notice keep the rule, whatever second beat runs at.
NOTICE_LEAD = timedelta(minutes=5)
ICAL_TOKEN_BYTES = 32
ICAL_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]+")  # secrets.token_urlsafe's alphabet

Impact = MaintenanceWindow.Impact
Status = MaintenanceWindow.Status
Kind = MaintenanceNotice.Kind
NOTICE_KINDS = (Kind.ANNOUNCE, Kind.UPDATE)
TEMPLATES = {
    Kind.ANNOUNCE: "maintenance_notice",
    Kind.UPDATE: "maintenance_notice",
    Kind.REMINDER: "maintenance_reminder",
    Kind.CANCEL: "maintenance_cancelled",
}


class MaintenanceError(Exception):
    pass


# --- Loading ------------------------------------------------------------------------------------
def _service_ids(obj) -> frozenset[int]:
    """A window's or contract's services (prefetched)."""
    return frozenset(s.pk for s in obj.services.all())


def _ids(services: Iterable) -> frozenset[int]:
    return frozenset(s.pk if isinstance(s, Service) else int(s) for s in services)


def _year_floor(moment: datetime) -> datetime:
    """A moment before 1 January, in every timezone, of the year `moment` is in anywhere: windows
    ending after it are all that a judgement of that year's cap needs."""
    return datetime((moment - timedelta(days=1)).year, 1, 1, tzinfo=UTC) - timedelta(days=1)


def rules_of(version: SLAVersion) -> Rules:
    return Rules(
        tz=version.timezone,
        notice=version.maintenance_notice,
        offpeak_start=version.offpeak_start,
        offpeak_end=version.offpeak_end,
        annual_cap=version.maintenance_annual_cap,
    )


# --- Judging ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WindowDraft:
    """A window as it is, or as staff propose it (unsaved, or a saved one with edited values)."""

    starts_at: datetime
    ends_at: datetime
    impact: str
    service_ids: frozenset[int]
    pk: int | None = None
    revision: int = 1
    status: str = Status.SCHEDULED
    fresh_notice: bool = True  # a new window or a new revision: its notice is yet to go out

    @property
    def key(self):
        return self.pk if self.pk is not None else "new"

    @property
    def counts(self) -> bool:
        return self.status == Status.SCHEDULED and self.impact == Impact.DOWNTIME


def draft_of(window: MaintenanceWindow) -> WindowDraft:
    return WindowDraft(
        starts_at=window.starts_at, ends_at=window.ends_at, impact=window.impact,
        service_ids=_service_ids(window), pk=window.pk, revision=window.revision, status=window.status,
        fresh_notice=False,
    )  # fmt: skip


def window_draft(*, pk: int | None, starts_at: datetime, ends_at: datetime, impact: str, services) -> WindowDraft:
    """Staff's proposed values (the admin preview). On a saved window, a change of time, impact or
    services would be a new revision with a new notice; any other change keeps the sent one."""
    sids = _ids(services)
    if pk is None:
        return WindowDraft(starts_at=starts_at, ends_at=ends_at, impact=impact, service_ids=sids)
    stored = MaintenanceWindow.objects.prefetch_related("services").get(pk=pk)
    fresh = _is_new_revision(stored, _service_ids(stored), starts_at, ends_at, impact, sids)
    return WindowDraft(
        starts_at=starts_at, ends_at=ends_at, impact=impact, service_ids=sids, pk=pk,
        revision=stored.revision + int(fresh), status=stored.status, fresh_notice=fresh,
    )  # fmt: skip


def _is_new_revision(stored: MaintenanceWindow, stored_sids, starts_at, ends_at, impact, sids) -> bool:
    return (stored.starts_at, stored.ends_at, stored.impact, stored_sids) != (starts_at, ends_at, impact, sids)


def _notified_at(d: WindowDraft, contract_id: int, version: SLAVersion, sent: dict, now: datetime) -> datetime:
    if not d.fresh_notice and (at := sent.get((d.pk, contract_id, d.revision))) is not None:
        return at
    return max(now, d.starts_at - version.maintenance_notice - NOTICE_LEAD)


def _judge_contract(contract: Contract, drafts: list[WindowDraft], sent: dict, versions: Versions, now: datetime):
    """{draft key: (Judgement or None, version)} for the contract's counting windows among `drafts`.
    Each window is judged by the version in force at its start; the cap counts the year's earlier
    windows under those same terms (a change of terms mid-year does not reset the cap)."""
    sids = _service_ids(contract)
    mine = [d for d in drafts if d.counts and d.service_ids & sids]
    groups: dict[SLAVersion | None, list[WindowDraft]] = defaultdict(list)
    for d in mine:
        groups[versions.at(contract.sla_id, d.starts_at)].append(d)
    out = {}
    for version, group in groups.items():
        if version is None:
            out.update({d.key: (None, None) for d in group})
            continue
        windows = [
            Window(d.key, d.starts_at, d.ends_at, _notified_at(d, contract.pk, version, sent, now)) for d in mine
        ]
        judged = judge(windows, rules_of(version))
        out.update({d.key: (judged[d.key], version) for d in group})
    return out


def _minutes(td: timedelta, *, up: bool = False) -> int:
    seconds = td.total_seconds() / 60
    return math.ceil(seconds) if up else math.floor(seconds)


@dataclass(frozen=True)
class ContractJudgement:
    """One row of the admin's table (and of the customer's page): what a window costs a contract."""

    contract: Contract
    version: SLAVersion | None
    timezone: str
    starts_at: datetime
    ends_at: datetime
    notified_at: datetime | None  # when its notice went out, or would
    notice_sent: bool
    judgement: Judgement | None
    note: str = ""  # why nothing is judged (cancelled, not downtime, no SLA version)

    @property
    def notice_ok(self) -> bool | None:
        return None if self.judgement is None else self.judgement.notice_ok

    @property
    def offpeak_minutes(self) -> int | None:
        return None if self.judgement is None else _minutes(self.judgement.offpeak)

    @property
    def kept_minutes(self) -> int:
        return 0 if self.judgement is None else _minutes(self.judgement.kept_duration)

    @property
    def downtime_minutes(self) -> int:
        if self.judgement is None:
            return _minutes(self.ends_at - self.starts_at, up=True) if self.note == NO_VERSION else 0
        return _minutes(self.judgement.broken_duration, up=True)

    @property
    def keeps_rules(self) -> bool:
        return self.downtime_minutes == 0

    @property
    def notice_lead(self) -> timedelta | None:
        return None if self.notified_at is None else self.starts_at - self.notified_at

    @property
    def notice_description(self) -> str:
        """e.g. "goes out 2026-10-08 05:00 (UTC+03:00), 72 h before the start (48 h needed)"."""
        if self.notified_at is None or self.version is None:
            return ""
        lead = self.notice_lead
        when = "after the start" if lead < timedelta(0) else f"{duration(lead)} before the start"
        verb = "sent" if self.notice_sent else "goes out"
        return f"{verb} {in_tz(self.notified_at, self.timezone)}, {when} ({duration(self.version.maintenance_notice)} needed)"

    @property
    def reasons(self) -> list[str]:
        j, v = self.judgement, self.version
        if j is None:
            return [self.note] if self.note else []
        out = []
        if not j.notice_ok:
            out.append(f"notice shorter than {duration(v.maintenance_notice)}")
        if j.offpeak < self.ends_at - self.starts_at:
            out.append("outside off-peak hours")
        if j.capped:
            out.append(f"annual cap of {duration(v.maintenance_annual_cap)} used up")
        return out

    @property
    def summary(self) -> str:
        if self.judgement is None and self.note != NO_VERSION:
            return f"Nothing counted as downtime ({self.note})"
        n = self.downtime_minutes
        if n == 0:
            return "Keeps every rule: nothing counted as downtime"
        return f"{n} minute{'' if n == 1 else 's'} counted as downtime ({', '.join(self.reasons)})"


NO_VERSION = "no SLA version in force at its start"


def _row(contract, d: WindowDraft, judged: dict, sent: dict, versions: Versions, now) -> ContractJudgement:
    judgement, version = judged.get(d.key, (None, None))
    shown = version or versions.shown(contract.sla_id, d.starts_at)
    if d.status == Status.CANCELLED:
        note = "cancelled"
    elif d.impact != Impact.DOWNTIME:
        note = f"impact: {Impact(d.impact).label.lower()}"
    else:
        note = "" if version else NO_VERSION
    notified = _notified_at(d, contract.pk, shown, sent, now) if shown and d.status == Status.SCHEDULED else None
    return ContractJudgement(
        contract=contract, version=shown, timezone=shown.timezone if shown else "UTC",
        starts_at=d.starts_at, ends_at=d.ends_at, notified_at=notified,
        notice_sent=not d.fresh_notice and (d.pk, contract.pk, d.revision) in sent,
        judgement=judgement, note=note,
    )  # fmt: skip


def _load(contracts: list[Contract], *, since: datetime, only_counting: bool = False, until: datetime | None = None):
    """The windows touching the contracts' services that end after `since` (services prefetched),
    the sent notices of those windows to those contracts, and the contracts' SLA versions."""
    sids = set().union(*(_service_ids(c) for c in contracts))
    windows = MaintenanceWindow.objects.filter(services__in=sids, ends_at__gt=since)
    if only_counting:
        windows = windows.filter(status=Status.SCHEDULED, impact=Impact.DOWNTIME)
    if until is not None:
        windows = windows.filter(starts_at__lt=until)
    windows = list(windows.distinct().order_by("starts_at", "pk").prefetch_related("services"))
    sent = {
        (w, c, r): at
        for w, c, r, at in MaintenanceNotice.objects.filter(
            window_id__in=[w.pk for w in windows], contract__in=contracts, kind__in=NOTICE_KINDS
        ).values_list("window_id", "contract_id", "revision", "sent_at")
    }
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
    drafts = [draft_of(w) for w in windows if w.pk != draft.pk] + [draft]
    return [_row(c, draft, _judge_contract(c, drafts, sent, versions, now), sent, versions, now) for c in contracts]


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
    contracts: list[Contract], start: datetime, end: datetime, now: datetime | None = None
) -> dict[int, list[WindowPart]]:
    """Per contract (services prefetched), its downtime windows touching [start, end), judged, in a
    fixed number of queries: the month-end run calls it once per chunk of contracts."""
    now = now or timezone.now()
    if not contracts:
        return {}
    windows, sent, versions = _load(contracts, since=_year_floor(start), only_counting=True, until=end)
    drafts = [draft_of(w) for w in windows]
    titles = {w.pk: w.title for w in windows}
    out = {}
    for contract in contracts:
        judged = _judge_contract(contract, drafts, sent, versions, now)
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
    judged = {c.pk: _judge_contract(c, drafts, sent, versions, now) for c in contracts}
    out = []
    for w, d in zip(windows, drafts, strict=True):
        if w.ends_at > since:
            rows = [_row(c, d, judged[c.pk], sent, versions, now) for c in contracts if d.service_ids & _service_ids(c)]
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


def _organisation_contracts(organisation_id: int) -> list[Contract]:
    return list(
        Contract.objects.filter(organisation_id=organisation_id).prefetch_related("services").order_by("reference")
    )


def organisation_maintenance(
    *, organisation_id: int, now: datetime, past_days: int = PAST_DAYS
) -> tuple[list[WindowView], list[WindowView]]:
    """Upcoming (and ongoing) windows, soonest first, and those of the last `past_days`, latest first,
    of the organisation's services only, each judged for every contract of the organisation."""
    contracts = _organisation_contracts(organisation_id)
    if not contracts:
        return [], []
    since = now - timedelta(days=past_days)
    windows, sent, versions = _load(contracts, since=_year_floor(since))
    drafts = [draft_of(w) for w in windows]
    judged = {c.pk: _judge_contract(c, drafts, sent, versions, now) for c in contracts}
    org_sids = set().union(*(_service_ids(c) for c in contracts))
    upcoming, past = [], []
    for w, d in zip(windows, drafts, strict=True):
        if w.ends_at <= since:
            continue
        rows = [_row(c, d, judged[c.pk], sent, versions, now) for c in contracts if d.service_ids & _service_ids(c)]
        view = WindowView(w, [s for s in w.services.all() if s.pk in org_sids], rows, w.starts_at <= now < w.ends_at)
        (upcoming if w.ends_at > now else past).append(view)
    past.reverse()
    return upcoming, past


def organisation_windows(*, organisation_id: int, since: datetime) -> list[tuple[MaintenanceWindow, list[Service]]]:
    """The organisation's windows ending after `since` (the iCal feed), with its services they touch."""
    contracts = _organisation_contracts(organisation_id)
    if not contracts:
        return []
    org_sids = set().union(*(_service_ids(c) for c in contracts))
    windows = (
        MaintenanceWindow.objects.filter(services__in=org_sids, ends_at__gt=since)
        .distinct()
        .order_by("starts_at", "pk")
        .prefetch_related("services")
    )
    return [(w, [s for s in w.services.all() if s.pk in org_sids]) for w in windows]


def organisation_by_ical_token(*, token: str) -> Organisation | None:
    """The organisation whose feed this secret opens; an empty, short or malformed token opens
    nothing. Only token_urlsafe's alphabet reaches the query (a NUL, `%00` in the URL, is a
    DataError on PostgreSQL: it was a 500)."""
    if len(token) < ICAL_TOKEN_BYTES or not ICAL_TOKEN_RE.fullmatch(token):
        return None
    return Organisation.objects.filter(ical_token=token).first()


def organisation_ical_rotate(*, organisation: Organisation) -> str:
    """A new secret for the feed; the old URL stops working at once."""
    organisation.ical_token = secrets.token_urlsafe(ICAL_TOKEN_BYTES)
    organisation.save(update_fields=["ical_token"])
    return organisation.ical_token


def organisation_ical_revoke(*, organisation: Organisation) -> None:
    organisation.ical_token = ""
    organisation.save(update_fields=["ical_token"])


# --- Writes -------------------------------------------------------------------------------------
def _check(starts_at: datetime, ends_at: datetime, sids: frozenset[int]) -> None:
    if ends_at <= starts_at:
        raise MaintenanceError("The window must end after it starts.")
    if not sids:
        raise MaintenanceError("A window needs at least one service.")


def _notice_lead(sids: frozenset[int], at: datetime) -> timedelta:
    """The longest notice any affected contract's terms ask for."""
    sla_ids = set(Contract.objects.filter(services__in=sids).values_list("sla_id", flat=True))
    versions = Versions(sla_ids)
    return max((v.maintenance_notice for s in sla_ids if (v := versions.at(s, at))), default=DEFAULT_NOTICE)


def _schedule(window: MaintenanceWindow, sids: frozenset[int], now: datetime, *, told: bool) -> None:
    """A new revision: its notice is due when it enters the notice horizon, or at once if it already
    has or if customers were told of an earlier revision (they must hear of the change now); its
    reminder an hour before the start. A window recorded after it ended is not announced."""
    window.published_at = now
    if window.ends_at <= now:
        window.notice_due_at = window.reminder_due_at = None
        return
    horizon = window.starts_at - _notice_lead(sids, window.starts_at) - NOTICE_LEAD
    window.notice_due_at = now if told else max(now, horizon)
    reminder = window.starts_at - REMINDER_BEFORE
    window.reminder_due_at = reminder if reminder > window.notice_due_at else None


@transaction.atomic
def window_publish(
    *, title: str, description: str, services, starts_at: datetime, ends_at: datetime,
    impact: str = Impact.DOWNTIME, actor=None, now: datetime | None = None,
) -> MaintenanceWindow:  # fmt: skip
    """Schedule a window. Its notices go out from the sweep (send_maintenance_notices)."""
    now = now or timezone.now()
    sids = _ids(services)
    _check(starts_at, ends_at, sids)
    window = MaintenanceWindow(
        title=title, description=description, starts_at=starts_at, ends_at=ends_at, impact=impact,
        revision=1, created_by=actor,
    )  # fmt: skip
    _schedule(window, sids, now, told=False)
    window.save()
    window.services.set(sids)
    return window


@transaction.atomic
def window_update(
    *, window: MaintenanceWindow, title: str, description: str, services, starts_at: datetime,
    ends_at: datetime, impact: str, now: datetime | None = None,
) -> MaintenanceWindow:  # fmt: skip
    """Change a window. A change of start, end, impact or services is a new revision, announced
    anew; a change of the title or description alone sends nothing."""
    now = now or timezone.now()
    sids = _ids(services)
    _check(starts_at, ends_at, sids)
    current = MaintenanceWindow.objects.select_for_update().get(pk=window.pk)
    if current.status == Status.CANCELLED:
        raise MaintenanceError("A cancelled window cannot be changed; schedule a new one.")
    old_sids = frozenset(current.services.values_list("pk", flat=True))
    new_revision = _is_new_revision(current, old_sids, starts_at, ends_at, impact, sids)
    current.title, current.description = title, description
    current.starts_at, current.ends_at, current.impact = starts_at, ends_at, impact
    fields = ["title", "description", "starts_at", "ends_at", "impact"]
    if new_revision:
        current.revision += 1
        told = current.notices.filter(kind__in=NOTICE_KINDS).exists()
        _schedule(current, sids, now, told=told)
        fields += ["revision", "published_at", "notice_due_at", "reminder_due_at"]
    current.save(update_fields=fields)
    if sids != old_sids:
        current.services.set(sids)
    return current


def _contacts(contract: Contract) -> list:
    return [u for u in contract.contacts.all() if u.is_active and u.organisation_id == contract.organisation_id]


def _emails(window, contract, kind: str, version, *, short_notice: bool = False, affected: bool = True) -> list[Email]:
    csids = _service_ids(contract)
    ctx = {
        "window": window,
        "contract": contract,
        "kind": kind,
        "tz": version.timezone if version else "UTC",
        "notice": version.maintenance_notice if version else DEFAULT_NOTICE,
        "services": [s for s in window.services.all() if s.pk in csids] or list(window.services.all()),
        "short_notice": short_notice,
        "affected": affected,
    }
    prefix = f"maintenance:{window.pk}:r{window.revision}:{kind}:contract:{contract.pk}"
    return [
        Email(key=f"{prefix}:user:{u.pk}", to=u.email, template=TEMPLATES[kind], context={**ctx, "recipient": u})
        for u in _contacts(contract)
    ]


@transaction.atomic
def window_cancel(*, window: MaintenanceWindow, now: datetime | None = None) -> int:
    """Cancel a window and tell at once every contract's contacts who were told of it (except a
    contract already told that the window no longer touches its services). Returns the emails
    queued; cancelling again does nothing."""
    now = now or timezone.now()
    current = MaintenanceWindow.objects.select_for_update().prefetch_related("services").get(pk=window.pk)
    if current.status == Status.CANCELLED:
        return 0
    current.status, current.cancelled_at = Status.CANCELLED, now
    current.notice_due_at = current.reminder_due_at = None
    current.save(update_fields=["status", "cancelled_at", "notice_due_at", "reminder_due_at"])
    window.status, window.cancelled_at = current.status, current.cancelled_at
    window.notice_due_at = window.reminder_due_at = None
    told = set(current.notices.filter(kind__in=NOTICE_KINDS).values_list("contract_id", "revision"))
    contracts = Contract.objects.filter(pk__in={c for c, _ in told}).prefetch_related("services", "contacts")
    wsids = _service_ids(current)
    versions = Versions({c.sla_id for c in contracts})
    records, emails = [], []
    for c in contracts:
        if (c.pk, current.revision) in told and not wsids & _service_ids(c):
            continue  # its last notice said the window no longer touches its services
        records.append(
            MaintenanceNotice(window=current, contract=c, revision=current.revision, kind=Kind.CANCEL, sent_at=now)
        )
        emails += _emails(current, c, Kind.CANCEL, versions.shown(c.sla_id, current.starts_at))
    MaintenanceNotice.objects.bulk_create(records, ignore_conflicts=True)
    return outbox_enqueue_many(emails=emails, now=now)


# --- The sweep (beat, every minute) -------------------------------------------------------------
def due(field: str, now: datetime):
    """Windows whose `field` due-time has come, earliest first: served by a partial index. A
    reminder waits for its window's notice (the notice pass runs first in every sweep)."""
    windows = MaintenanceWindow.objects.filter(**{f"{field}__lte": now})
    if field == "reminder_due_at":
        windows = windows.filter(notice_due_at__isnull=True)
    return windows.order_by(field)


def maintenance_notices_send_due(*, now: datetime | None = None, batch: int = BATCH) -> int:
    """Send the notices and reminders that are due. Each window is taken with skip_locked, so two
    sweeps at once never take the same one; each batch is a fixed number of queries; the unique
    notice row and the outbox key make every notice once per revision and contact. Returns how many
    notice rows (one per window, contract and kind) were written."""
    now = now or timezone.now()
    return _sweep("notice_due_at", now, batch, _send_notices) + _sweep("reminder_due_at", now, batch, _send_reminders)


def _sweep(field: str, now: datetime, batch: int, send) -> int:
    total = 0
    while True:
        # Until a take comes back empty, not merely short: on PostgreSQL a row that another sweep
        # has just cleared is dropped from a locked take, which then holds fewer than `batch` rows
        # though more are due.
        with transaction.atomic():
            windows = list(due(field, now).select_for_update(skip_locked=True, of=("self",))[:batch])
            if not windows:
                return total
            total += send(windows, now)
            MaintenanceWindow.objects.filter(pk__in=[w.pk for w in windows]).update(**{field: None})


def _batch_context(windows: list[MaintenanceWindow]):
    """Services of the windows, their notices so far, and the contracts concerned (services and
    contacts prefetched), indexed by service: a fixed number of queries for the batch."""
    prefetch_related_objects(windows, "services")
    notices = list(
        MaintenanceNotice.objects.filter(window__in=windows, kind__in=NOTICE_KINDS).values_list(
            "window_id", "contract_id", "revision"
        )
    )
    sids = {s.pk for w in windows for s in w.services.all()}
    told = {c for _, c, _ in notices}
    contracts = list(
        Contract.objects.filter(Q(services__in=sids) | Q(pk__in=told))
        .distinct()
        .order_by("pk")
        .prefetch_related("services", "contacts")
    )
    by_service: dict[int, list[Contract]] = defaultdict(list)
    for c in contracts:
        for s in _service_ids(c):
            by_service[s].append(c)
    return notices, {c.pk: c for c in contracts}, by_service, Versions({c.sla_id for c in contracts})


def _affected(window, by_service) -> dict[int, Contract]:
    return {c.pk: c for s in _service_ids(window) for c in by_service.get(s, ())}


def _send_notices(windows: list[MaintenanceWindow], now: datetime) -> int:
    notices, contracts, by_service, versions = _batch_context(windows)
    records, emails = [], []
    for w in windows:
        affected = _affected(w, by_service)
        told_before = {c for wid, c, rev in notices if wid == w.pk and rev < w.revision}
        for pk in sorted(affected.keys() | told_before):
            c = contracts[pk]
            version = versions.at(c.sla_id, w.starts_at)
            # Told of an earlier revision: an update (also to a contract the window no longer
            # touches, so that it knows); otherwise the first it hears of the window.
            kind = Kind.UPDATE if pk in told_before else Kind.ANNOUNCE
            short = pk in affected and now > w.starts_at - (version.maintenance_notice if version else DEFAULT_NOTICE)
            records.append(
                MaintenanceNotice(window=w, contract=c, revision=w.revision, kind=kind, sent_at=now, short_notice=short)
            )
            emails += _emails(
                w,
                c,
                kind,
                version or versions.shown(c.sla_id, w.starts_at),
                short_notice=short,
                affected=pk in affected,
            )
    # ignore_conflicts: the unique (window, contract, revision, kind) makes a notice once.
    MaintenanceNotice.objects.bulk_create(records, ignore_conflicts=True)
    outbox_enqueue_many(emails=emails, now=now)
    return len(records)


def _send_reminders(windows: list[MaintenanceWindow], now: datetime) -> int:
    notices, contracts, by_service, versions = _batch_context(windows)
    records, emails = [], []
    for w in windows:
        if w.status != Status.SCHEDULED or now > w.starts_at + REMINDER_GRACE:
            continue  # too late to remind: the due-time is simply cleared
        affected = _affected(w, by_service)
        # Reminded: the contracts told of this revision that it still touches.
        for pk in sorted({c for wid, c, rev in notices if wid == w.pk and rev == w.revision} & affected.keys()):
            c = contracts[pk]
            records.append(
                MaintenanceNotice(window=w, contract=c, revision=w.revision, kind=Kind.REMINDER, sent_at=now)
            )
            emails += _emails(w, c, Kind.REMINDER, versions.shown(c.sla_id, w.starts_at))
    MaintenanceNotice.objects.bulk_create(records, ignore_conflicts=True)
    outbox_enqueue_many(emails=emails, now=now)
    return len(records)
