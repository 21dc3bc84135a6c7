"""Load SLA terms for tickets in a fixed number of queries, and turn them into clocks.Targets.
One TermsCache lives for one request or one sweep batch: no stale global state."""

from __future__ import annotations

from django.db.models import Prefetch

from contracts.calendars import clock_for
from contracts.models import EscalationLevel, PriorityTerm, SLAVersion

from .clocks import Targets

CALENDAR_PREFETCH = ("hours", "closed_dates")


class TermsCache:
    def __init__(self):
        self._versions: dict[int, SLAVersion] = {}

    def load(self, version_ids) -> None:
        missing = {v for v in version_ids if v not in self._versions}
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
        )
