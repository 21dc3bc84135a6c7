"""The customer dashboard: one organisation at a glance. Whether the vendor keeps its word this
month (each contract's uptime so far against its guarantee, and the credit the month would earn
if it closed now), the open tickets and their clocks, the maintenance to come, and the claims
awaiting a decision or still to be filed.

Reads only, scoped to the user's organisation, in a fixed number of queries whatever the number of
contracts, tickets, windows and claims: each read below is one query or a batch (one Versions for
every contract, the month so far of all of them at once, every ticket's clock at once)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import F

from contracts.incidents.selectors import IncidentView, open_incidents_for_user
from contracts.maintenance.selectors import WindowView, organisation_maintenance
from contracts.models import Contract, MaintenanceWindow, Service
from contracts.selectors import Versions, contracts_for_user
from credits.figures import MonthFigures, months_so_far
from credits.models import Claim
from credits.selectors import ClaimableMonth, claimable_with_figures, claims_for_user
from portal.domain.dates import add_months, local_month
from tickets.models import Ticket
from tickets.selectors import ClockView, ticket_clock_views, tickets_for_user

TICKETS_SHOWN = 10  # the nearest deadlines; the ticket list has them all
CLAIMS_SHOWN = 10
MAINTENANCE_DAYS = 14
MAINTENANCE_SHOWN = 5
# The uptime bar's scale starts at the highest of these below both the figure and the guarantee,
# so that 99.5% and 100% do not look alike (as the uptime page's chart does).
SCALE_FLOORS = (Decimal(99), Decimal(98), Decimal(95), Decimal(90), Decimal(80), Decimal(50), Decimal(0))


@dataclass(frozen=True)
class ContractCard:
    contract: Contract
    services: list[Service]
    figures: MonthFigures | None  # this month so far
    note: str  # why there are no figures

    MET, BELOW, NONE = "met", "below", "none"

    @property
    def state(self) -> str:
        if self.figures is None:
            return self.NONE
        return self.BELOW if self.figures.below_guarantee else self.MET

    @property
    def scale_floor(self) -> Decimal:
        f = self.figures
        lowest = min(f.uptime_percent, f.guarantee) if f else Decimal(0)
        return next(floor for floor in SCALE_FLOORS if floor < lowest or floor == 0)


@dataclass(frozen=True)
class TicketRow:
    ticket: Ticket
    clock: ClockView

    @property
    def state_label(self) -> str:
        return Ticket.SLAState(self.clock.state).label


@dataclass(frozen=True)
class PendingClaim:
    claim: Claim
    timezone: str


@dataclass(frozen=True)
class Dashboard:
    now: datetime
    contracts: list[ContractCard]
    tickets: list[TicketRow]  # the open ones with the nearest deadlines
    open_count: int
    maintenance: list[WindowView]  # starting within MAINTENANCE_DAYS (or under way), soonest first
    maintenance_later: int  # scheduled windows not shown
    next_maintenance: WindowView | None  # when none is shown: the next one after the horizon
    pending_claims: list[PendingClaim]  # awaiting a decision, oldest first
    more_pending_claims: bool
    claimable: list[ClaimableMonth]  # months a claim can still be filed for, soonest to close first
    incidents: list[IncidentView]  # published, not resolved, affecting the organisation: the banner

    maintenance_days = MAINTENANCE_DAYS


def _note(contract: Contract, month: date | None) -> str:
    if month is None:
        return "This contract has no SLA terms in force."
    if contract.starts_on >= add_months(month, 1):
        return f"The contract starts on {contract.starts_on:%-d %B %Y}."
    if contract.ends_on is not None and contract.ends_on < month:
        return f"The contract ended on {contract.ends_on:%-d %B %Y}."
    return ""


def customer_dashboard(*, user, now: datetime) -> Dashboard:
    """The dashboard of the user's organisation at `now`."""
    contracts = list(
        contracts_for_user(user=user).select_related("sla").prefetch_related("services").order_by("reference", "pk")
    )
    versions = Versions({c.sla_id for c in contracts})
    shown = {c.pk: versions.shown(c.sla_id, now) for c in contracts}
    zone = {pk: v.timezone if v else "UTC" for pk, v in shown.items()}

    # This month so far, of every contract that runs in it.
    months = {pk: local_month(now, v.timezone) if v else None for pk, v in shown.items()}
    notes = {c.pk: _note(c, months[c.pk]) for c in contracts}
    figures = months_so_far(contracts=[c for c in contracts if not notes[c.pk]], now=now, versions=versions)
    cards = [
        ContractCard(c, list(c.services.all()), figures.get(c.pk), notes[c.pk] or "No figures for this month yet.")
        for c in contracts
    ]

    # Open tickets, nearest deadline first (paused ones, without a deadline, last).
    open_tickets = (
        tickets_for_user(user=user)
        .filter(status__in=Ticket.ACTIVE)
        .select_related("contract", "service", "sla_version")
        .order_by(F("next_deadline").asc(nulls_last=True), "-filed_at", "-pk")
    )
    tickets = list(open_tickets[:TICKETS_SHOWN])
    clocks = ticket_clock_views(tickets, now=now)

    # Maintenance to come (cancelled windows are on the maintenance page, not here).
    upcoming = []
    if user.organisation_id:
        upcoming, _ = organisation_maintenance(organisation_id=user.organisation_id, now=now, past_days=0)
    upcoming = [v for v in upcoming if v.window.status != MaintenanceWindow.Status.CANCELLED]
    horizon = now + timedelta(days=MAINTENANCE_DAYS)
    soon = [v for v in upcoming if v.window.starts_at < horizon][:MAINTENANCE_SHOWN]

    # Claims awaiting a decision, and months still open for a claim with their closed figures.
    pending = list(
        claims_for_user(user=user)
        .filter(status=Claim.Status.SUBMITTED)
        .select_related("contract")
        .order_by("submitted_at", "pk")[: CLAIMS_SHOWN + 1]
    )
    claimable = claimable_with_figures(contracts=contracts, now=now, versions=versions)

    return Dashboard(
        now=now,
        contracts=cards,
        tickets=[TicketRow(t, clocks[t.pk]) for t in tickets],
        open_count=open_tickets.count(),
        maintenance=soon,
        maintenance_later=len(upcoming) - len(soon),
        next_maintenance=upcoming[0] if upcoming and not soon else None,
        pending_claims=[PendingClaim(c, zone.get(c.contract_id, "UTC")) for c in pending[:CLAIMS_SHOWN]],
        more_pending_claims=len(pending) > CLAIMS_SHOWN,
        claimable=claimable,
        incidents=open_incidents_for_user(user=user),
    )
