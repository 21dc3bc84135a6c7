"""Judging maintenance windows by a contract's rules: which part of a window keeps them (notice,
off-peak hours, annual cap) and which counts as ordinary downtime.

The rules are the pure `portal.domain.maintenance_rules.judge`; this module feeds it one contract's
downtime windows of the calendar years concerned, each with the moment its notice went out: the
sent_at of the announce/update notice of the window's current revision to that contract, or, while
that notice is yet to go out, the moment it would: max(now, start - notice); and the notices of its
earlier revisions to that contract (`Told`, the times each announced), whose in-time minutes stay
noticed when staff correct the window.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from portal.domain.dates import runs_during
from portal.domain.formats import duration, in_tz
from portal.domain.maintenance_rules import Judgement, Notice, Rules, Window, judge

from ..models import Contract, MaintenanceNotice, MaintenanceWindow, Service, SLAVersion
from ..selectors import Versions

DEFAULT_NOTICE = timedelta(hours=48)  # when no SLA version says otherwise
# How long before the notice horizon (start - notice) the sweep sends the notice. Beat sweeps once
# a minute, so a notice due exactly at the horizon goes out up to a minute after it: "short" by
# seconds, and its window would then count as downtime. Sending 5 minutes early ("no later than
# 48 hours before") makes every on-time notice keep the rule, whatever second beat runs at.
NOTICE_LEAD = timedelta(minutes=5)

Impact = MaintenanceWindow.Impact
Status = MaintenanceWindow.Status
Kind = MaintenanceNotice.Kind
NOTICE_KINDS = (Kind.ANNOUNCE, Kind.UPDATE)


def service_ids(obj) -> frozenset[int]:
    """A window's or contract's services (prefetched)."""
    return frozenset(s.pk for s in obj.services.all())


def ids_of(services: Iterable) -> frozenset[int]:
    return frozenset(s.pk if isinstance(s, Service) else int(s) for s in services)


@dataclass(frozen=True)
class Told:
    """An announcement or update that went out to a contract: the revision it told, as it stood."""

    revision: int
    sent_at: datetime
    starts_at: datetime | None  # None: a revision left behind before notices recorded their times
    ends_at: datetime | None
    impact: str
    service_ids: frozenset[int]
    reached: bool = True  # False: no email went out for it (MaintenanceNotice.reached_nobody)


TOLD_FIELDS = (
    "window_id", "contract_id", "revision", "sent_at", "starts_at", "ends_at", "impact", "service_ids",
    "reached_nobody",
)  # fmt: skip


def told_by_window(rows) -> dict[tuple[int, int], list[Told]]:
    """{(window id, contract id): its notices}, from MaintenanceNotice values_list(*TOLD_FIELDS)."""
    out: dict[tuple[int, int], list[Told]] = defaultdict(list)
    for w, c, revision, at, starts, ends, impact, sids, nobody in rows:
        out[w, c].append(Told(revision, at, starts, ends, impact, frozenset(sids or ()), not nobody))
    return out


def notice_row(window: MaintenanceWindow, contract: Contract, kind: str, now: datetime, **fields) -> MaintenanceNotice:
    """The record of a notice of the window's current revision to a contract, with what it told
    (services prefetched)."""
    return MaintenanceNotice(
        window=window, contract=contract, revision=window.revision, kind=kind, sent_at=now,
        starts_at=window.starts_at, ends_at=window.ends_at, impact=window.impact,
        service_ids=sorted(service_ids(window)), **fields,
    )  # fmt: skip


def runs_at_window(contract: Contract, starts_at: datetime, ends_at: datetime, versions: Versions) -> bool:
    """Whether the contract runs at some moment of the window, on its own calendar (the zone of its
    terms in force at the start: contracts.selectors.running_at's rule). A contract that has ended,
    or not begun, is not told of the window nor judged by it, nor does it set its notice hours."""
    version = versions.at(contract.sla_id, starts_at)
    return runs_during(contract.starts_on, contract.ends_on, version.timezone if version else "UTC", starts_at, ends_at)


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
        service_ids=service_ids(window), pk=window.pk, revision=window.revision, status=window.status,
        fresh_notice=False,
    )  # fmt: skip


def window_draft(*, pk: int | None, starts_at: datetime, ends_at: datetime, impact: str, services) -> WindowDraft:
    """Staff's proposed values (the admin preview). On a saved window, a change of time, impact or
    services would be a new revision with a new notice; any other change keeps the sent one."""
    sids = ids_of(services)
    if pk is None:
        return WindowDraft(starts_at=starts_at, ends_at=ends_at, impact=impact, service_ids=sids)
    stored = MaintenanceWindow.objects.prefetch_related("services").get(pk=pk)
    fresh = is_new_revision(stored, service_ids(stored), starts_at, ends_at, impact, sids)
    return WindowDraft(
        starts_at=starts_at, ends_at=ends_at, impact=impact, service_ids=sids, pk=pk,
        revision=stored.revision + int(fresh), status=stored.status, fresh_notice=fresh,
    )  # fmt: skip


def is_new_revision(stored: MaintenanceWindow, stored_sids, starts_at, ends_at, impact, sids) -> bool:
    return (stored.starts_at, stored.ends_at, stored.impact, stored_sids) != (starts_at, ends_at, impact, sids)


def _current(d: WindowDraft, contract_id: int, sent: dict) -> Told | None:
    """The notice of the draft's own revision to the contract, if it went out."""
    if d.fresh_notice:
        return None
    return next((t for t in sent.get((d.pk, contract_id), ()) if t.revision == d.revision), None)


def _notified_at(d: WindowDraft, contract_id: int, version: SLAVersion, sent: dict, now: datetime) -> datetime:
    """When the notice of the draft's revision went out, or would."""
    if (told := _current(d, contract_id, sent)) is not None:
        return told.sent_at
    return max(now, d.starts_at - version.maintenance_notice - NOTICE_LEAD)


def _told_at(d: WindowDraft, contract_id: int, version: SLAVersion, sent: dict, now: datetime) -> datetime | None:
    """When the contract was told of the draft's revision, as the notice rule reads it: never, if
    its notice reached nobody (the exclusion rests on the notice going out to someone)."""
    told = _current(d, contract_id, sent)
    return None if told is not None and not told.reached else _notified_at(d, contract_id, version, sent, now)


def _earlier(d: WindowDraft, contract_id: int, sids: frozenset[int], sent: dict) -> tuple[Notice, ...]:
    """The notices of the draft's earlier revisions to the contract, in order, each with the
    downtime it announced on a service the draft takes down for the contract (none: an empty
    interval, which takes back what earlier ones announced). A notice that does not say what it
    told (sent before notices recorded it) or that reached nobody is left out: it told nothing."""
    out = []
    for t in sorted(sent.get((d.pk, contract_id), ()), key=lambda t: t.revision):
        if t.revision >= d.revision or t.starts_at is None or not t.reached:
            continue
        down = t.impact == Impact.DOWNTIME and t.service_ids & d.service_ids & sids
        out.append(Notice(t.starts_at, t.ends_at if down else t.starts_at, t.sent_at))
    return tuple(out)


def judge_contract(
    contract: Contract, drafts: list[WindowDraft], sent: dict, versions: Versions, now: datetime,
    sids: frozenset[int] | None = None,
):  # fmt: skip
    """{draft key: (Judgement or None, version)} for the contract's counting windows among `drafts`.
    Each window is judged by the version in force at its start; the cap counts the year's earlier
    windows under those same terms (a change of terms mid-year does not reset the cap). `sids`: the
    services to judge it on, if not its own."""
    sids = service_ids(contract) if sids is None else sids
    mine = [
        d for d in drafts
        if d.counts and d.service_ids & sids and runs_at_window(contract, d.starts_at, d.ends_at, versions)
    ]  # fmt: skip
    groups: dict[SLAVersion | None, list[WindowDraft]] = defaultdict(list)
    for d in mine:
        groups[versions.at(contract.sla_id, d.starts_at)].append(d)
    out = {}
    for version, group in groups.items():
        if version is None:
            out.update({d.key: (None, None) for d in group})
            continue
        windows = [
            Window(
                d.key, d.starts_at, d.ends_at, _told_at(d, contract.pk, version, sent, now),
                _earlier(d, contract.pk, sids, sent),
            )
            for d in mine
        ]  # fmt: skip
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
    reached_nobody: bool = False  # its notice went out to no one (no exclusion earned)

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
        needed = duration(self.version.maintenance_notice)
        nobody = ", but it reached nobody (no active contact gets maintenance emails)" if self.reached_nobody else ""
        return f"{verb} {in_tz(self.notified_at, self.timezone)}, {when} ({needed} needed){nobody}"

    @property
    def reasons(self) -> list[str]:
        j, v = self.judgement, self.version
        if j is None:
            return [self.note] if self.note else []
        out = []
        if not j.notice_ok and self.reached_nobody:
            out.append("its notice reached nobody")
        elif not j.notice_ok:
            part = " for part of it" if j.partly_noticed else ""
            out.append(f"notice shorter than {duration(v.maintenance_notice)}{part}")
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


def judgement_row(contract, d: WindowDraft, judged: dict, sent: dict, versions: Versions, now) -> ContractJudgement:
    judgement, version = judged.get(d.key, (None, None))
    shown = version or versions.shown(contract.sla_id, d.starts_at)
    if d.status == Status.CANCELLED:
        note = "cancelled"
    elif d.impact != Impact.DOWNTIME:
        note = f"impact: {Impact(d.impact).label.lower()}"
    else:
        note = "" if version else NO_VERSION
    notified, notice_sent, nobody = None, False, False
    if shown and d.status == Status.SCHEDULED:
        current = _current(d, contract.pk, sent)
        notified, notice_sent = _notified_at(d, contract.pk, shown, sent, now), current is not None
        nobody = current is not None and not current.reached
        # The first notice that told of (part of) these times, if an earlier revision's came first.
        told = [n.notified_at for n in _earlier(d, contract.pk, service_ids(contract), sent)
                if n.start < d.ends_at and d.starts_at < n.end]  # fmt: skip
        if told and (nobody or min(told) < notified):
            notified, notice_sent, nobody = min(told), True, False
    return ContractJudgement(
        contract=contract, version=shown, timezone=shown.timezone if shown else "UTC",
        starts_at=d.starts_at, ends_at=d.ends_at, notified_at=notified, notice_sent=notice_sent,
        judgement=judgement, note=note, reached_nobody=nobody,
    )  # fmt: skip
