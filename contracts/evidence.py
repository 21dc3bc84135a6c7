"""Evidence of uptime: what an outage or a maintenance window counts as, and the signal that says
it changed.

A closed month is judged again when evidence that touches it arrives or changes (PRODUCT.md,
"Records that do not move behind anyone's back"). The writes that can move a month's figures
(contracts.outages: an outage recorded, changed, deleted, its cause changed, opened or closed by an
alert; contracts.maintenance.services: a window published, changed, cancelled, deleted) call
`evidence_changed` in their own transaction with what the evidence was before and is after.
credits, a layer above, receives `evidence_moved` and reopens the closed months it touches
(credits.evidence), in that same transaction: a change and its reopening commit or roll back
together. Code that writes outages or windows elsewhere calls it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.dispatch import Signal

# Sent with changes=[EvidenceChange, ...] and now=datetime.
evidence_moved = Signal()
# Asked before a contract's SLA or dates change, with contract= (as stored), sla_id=, starts_on=,
# ends_on= (as they would be): a receiver answers why not in words, or None. credits refuses what
# would judge its closed months by other terms or leave them outside the contract.
contract_reframing = Signal()


def contract_reframing_refused(contract, *, sla_id: int, starts_on, ends_on) -> str | None:
    for _, answer in contract_reframing.send(
        sender=type(contract), contract=contract, sla_id=sla_id, starts_on=starts_on, ends_on=ends_on
    ):
        if answer:
            return answer
    return None


OUTAGE = "outage"
MAINTENANCE = "maintenance"


@dataclass(frozen=True)
class Evidence:
    """What an outage or a downtime window counts as: its services, its span (an ongoing outage has
    no end) and, for an outage, its cause. A window that does not count (cancelled, or not
    downtime) is no evidence (None)."""

    service_ids: frozenset[int]
    start: datetime
    end: datetime | None
    cause: str = ""
    # An outage's impacts other than major ((service id, impact), sorted), the contracts it is scoped
    # to and whether it affects only them: a change of these moves whose uptime the outage counts in.
    impacts: tuple = ()
    contracts: frozenset[int] = frozenset()
    customer_scoped: bool = False


@dataclass(frozen=True)
class EvidenceChange:
    kind: str  # OUTAGE or MAINTENANCE
    pk: int
    reason: str  # names the evidence and what happened to it, e.g. "Outage 12 “Storage down” recorded by staff"
    before: Evidence | None
    after: Evidence | None


def evidence_changed(changes: list[EvidenceChange], *, now: datetime) -> None:
    """Announce changed evidence, inside the transaction of the change. A change whose evidence is
    the same before and after (a title, a description) is not announced."""
    moved = [c for c in changes if c.before != c.after]
    if moved:
        evidence_moved.send(sender=EvidenceChange, changes=moved, now=now)
