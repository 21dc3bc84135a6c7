"""Load SLA terms for tickets in a fixed number of queries, and turn them into tickets.deadlines.Targets.

One TermsCache lives for one request, one service call or one recompute batch: the services and the
recompute task derive deadlines from its targets; pages read the stored deadlines and take from it
only the timezone, the escalation level's contact and the calendar whose working time is left (the
sweeps need none of it). Loaded versions (with their priorities, calendars, levels and dwells) are
also kept for the process while the terms revision holds (contracts.terms_revision): a TermsCache
reads the revision once, one row, and loads only the versions this process has not loaded under it.
A change to any term or calendar replaces the revision in its own transaction, so no process serves
terms older than the revision it read. Session 6 of bench/RESULTS.md measured what keeping them
saves a page."""

from __future__ import annotations

import threading

from django.db.models import Max, Prefetch

from contracts import terms_revision
from contracts.calendars import clock_for
from contracts.models import EscalationLevel, PriorityTerm, SLAVersion
from tickets.deadlines import Targets

CALENDAR_PREFETCH = ("hours", "closed_dates")


_UNREAD = object()
# The process's versions, valid under _shared_revision only. Shared objects are read, never changed.
_shared: dict[int | str, SLAVersion | int] = {}  # versions by id, and "top_level"
_shared_revision: object = _UNREAD
_lock = threading.Lock()


def _kept(revision) -> dict[int, SLAVersion]:
    """The process's versions under `revision` (emptied when the revision moved on)."""
    global _shared, _shared_revision
    if revision is None:
        return {}  # no revision row (a database being set up): keep nothing across requests
    with _lock:
        if _shared_revision != revision:
            _shared, _shared_revision = {}, revision
        return _shared


def forget() -> None:
    """Drop the process's versions (tests that count a cold process's queries)."""
    global _shared, _shared_revision
    with _lock:
        _shared, _shared_revision = {}, _UNREAD


def top_escalation_level() -> int:
    """The highest level of any SLA version's escalation ladder (the queue's level filter offers
    1..this), kept for the process under the terms revision as the versions are: the terms' own
    rows, read again only when a term changed."""
    revision = terms_revision.current()
    kept = _kept(revision)
    top = kept.get("top_level")
    if top is None:
        top = EscalationLevel.objects.aggregate(top=Max("level"))["top"] or 1
        if revision is not None:
            with _lock:
                if _shared_revision == revision:
                    kept["top_level"] = top
    return top


class TermsCache:
    def __init__(self, revision=_UNREAD):
        """`revision`: the terms revision when the caller read it with its own rows
        (contracts.terms_revision.column()); else it is read on first need."""
        self._versions: dict[int, SLAVersion] = {}
        self._targets: dict[tuple[int, str], Targets] = {}  # a page of tickets shares a few
        self._revision = revision if revision is _UNREAD or revision is None else str(revision)

    def load(self, version_ids) -> None:
        missing = {v for v in version_ids if v not in self._versions}
        if not missing:
            return
        if self._revision is _UNREAD:
            self._revision = terms_revision.current()
        kept = _kept(self._revision)
        for pk in list(missing):
            if pk in kept:
                self._versions[pk] = kept[pk]
                missing.discard(pk)
        if not missing:
            return
        versions = (
            SLAVersion.objects.filter(pk__in=missing)
            .select_related("sla", "escalation_ack_calendar")
            .prefetch_related(
                Prefetch("priorities", queryset=PriorityTerm.objects.select_related("calendar", "resolution_calendar")),
                *(
                    f"priorities__{cal}__{rel}"
                    for cal in ("calendar", "resolution_calendar")
                    for rel in CALENDAR_PREFETCH
                ),
                *(f"escalation_ack_calendar__{rel}" for rel in CALENDAR_PREFETCH),
                Prefetch("escalation_levels", queryset=EscalationLevel.objects.order_by("level")),
                "escalation_dwells",
            )
        )
        for version in versions:
            self._versions[version.pk] = version
            if self._revision is not None:
                with _lock:
                    if _shared_revision == self._revision:
                        kept[version.pk] = version

    def version(self, version_id: int) -> SLAVersion:
        self.load([version_id])
        return self._versions[version_id]

    def term(self, version_id: int, priority: str) -> PriorityTerm | None:
        for p in self.version(version_id).priorities.all():
            if p.priority == priority:
                return p
        return None

    def levels(self, version_id: int) -> list[EscalationLevel]:
        return list(self.version(version_id).escalation_levels.all())

    def targets(self, version_id: int, priority: str) -> Targets:
        key = (version_id, priority)
        if key not in self._targets:
            self._targets[key] = self._targets_of(version_id, priority)
        return self._targets[key]

    def _targets_of(self, version_id: int, priority: str) -> Targets:
        term = self.term(version_id, priority)
        if term is None:
            raise LookupError(f"SLA version {version_id} has no terms for priority {priority}")
        version = self.version(version_id)
        dwell_by_level = {d.level: d.dwell for d in version.escalation_dwells.all() if d.priority == priority}
        levels = [lv.level for lv in version.escalation_levels.all()]
        # The ladder applies only where every level has a dwell for this priority.
        dwells = (
            tuple(dwell_by_level[lv] for lv in levels) if levels and all(lv in dwell_by_level for lv in levels) else ()
        )
        return Targets(
            first_response=term.first_response,
            resolution_target=term.resolution_target,
            resolution_limit=term.resolution_limit,
            clock=clock_for(term.calendar),
            resolution_clock=clock_for(term.resolution_clock),
            dwells=dwells,
            ack_time=version.escalation_ack_time,
            ack_clock=clock_for(version.escalation_ack_calendar) if version.escalation_ack_time else None,
        )
