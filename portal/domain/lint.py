"""Contract lint: warnings about SLA terms that are allowed but probably wrong.

Impossible values (negative durations, percentages outside 0-100, a tier upside down) are refused
by the models' validators; this module finds what is legal yet suspicious. Pure Python."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from portal.domain.formats import duration, percent_number
from portal.domain.tiers import Tier, coverage


@dataclass(frozen=True)
class PriorityTargets:
    priority: str
    first_response: timedelta
    resolution_target: timedelta
    resolution_limit: timedelta


def lint_terms(
    *,
    guarantee: Decimal,
    tiers: list[Tier],
    priorities: list[PriorityTargets],
    dwells: list[tuple[int, str, timedelta]],
    levels: list[int],
) -> list[str]:
    warnings: list[str] = []
    if tiers:
        cov = coverage(tiers, guarantee)
        for gap in cov.gaps:
            warnings.append(
                f"Credit table gap: uptime in {gap} is below the {percent_number(guarantee)}% guarantee but earns no credit; "
                "such months are flagged for staff review."
            )
        for overlap in cov.overlaps:
            warnings.append(
                f"Credit table overlap: uptime in {overlap} matches more than one tier; the better one for the "
                "customer applies."
            )
        for tier in tiers:
            if tier.lower is not None and tier.lower >= guarantee:
                warnings.append(f"Credit tier {tier} starts at or above the {percent_number(guarantee)}% guarantee.")
    else:
        warnings.append("No credit tiers: a month below the guarantee earns no credit.")

    for p in priorities:
        if p.resolution_target > p.resolution_limit:
            warnings.append(
                f"{p.priority}: the resolution target ({duration(p.resolution_target)}) is after its limit ({duration(p.resolution_limit)})."
            )
        if p.first_response > p.resolution_limit:
            warnings.append(
                f"{p.priority}: first response ({duration(p.first_response)}) is after the resolution limit."
            )
        for value, what in ((p.first_response, "first response"), (p.resolution_limit, "resolution limit")):
            if value == timedelta(0):
                warnings.append(f"{p.priority}: a {what} of zero is breached the moment a ticket is filed.")

    known = {p.priority for p in priorities}
    for level, priority, dwell in dwells:
        if dwell == timedelta(0):
            warnings.append(f"Escalation level {level}, {priority}: a dwell of zero skips the level at once.")
        if priority not in known:
            warnings.append(
                f"Escalation level {level}: a dwell for {priority}, which has no row in the priority matrix."
            )
        if level not in levels:
            warnings.append(f"Escalation dwell for level {level}, which is not on the ladder.")
    for priority in known:
        have = {lvl for lvl, pri, _ in dwells if pri == priority}
        missing = [lvl for lvl in levels if lvl not in have]
        if len(levels) > 1 and missing:  # a one-rung ladder (Klart's email) has nowhere to escalate
            warnings.append(f"{priority}: no dwell time at escalation level(s) {', '.join(map(str, missing))}.")
    return warnings
