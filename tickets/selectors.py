"""Reads for tickets. Customer reads are scoped to the user's organisation (and never include
vulnerability reports, which only security staff see)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import BooleanField, Exists, F, OuterRef, Q, QuerySet, Subquery, prefetch_related_objects
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.utils import timezone

from contracts.selectors import Versions, level_contact
from portal.core.roles import sees_security
from portal.core.staff_otp import may_use_staff_site
from portal.domain.dates import add_months
from tickets.sweeps import StaffDirectory
from tickets.terms_cache import TermsCache

from . import deadlines
from .attainment import Attainment, TicketTimes, attainment
from .models import (
    Attachment,
    EscalationRequest,
    SLACrossing,
    Ticket,
    TicketCall,
    TicketEvent,
    TicketMessage,
    TicketRating,
)

MONTH_SLACK = timedelta(days=2)  # a month in any timezone lies within its UTC month +- 2 days


def tickets_for_user(*, user) -> QuerySet[Ticket]:
    if not getattr(user, "is_authenticated", False) or not user.organisation_id:
        return Ticket.objects.none()
    return Ticket.objects.filter(organisation_id=user.organisation_id, kind=Ticket.Kind.SUPPORT)


def attachments_for_user(*, user) -> QuerySet[Attachment]:
    """Attachments a user may download (the portal's link and the API's): staff who may view
    tickets, past the staff site's second factor, any (vulnerability reports': staff who see them,
    portal.core.roles.sees_security); a customer those of their organisation's tickets, never an
    internal note's."""
    if user.is_staff:
        # The staff site's second factor too: a staff password alone opens the customers' login.
        if not (user.is_active and may_use_staff_site(user) and user.has_perm("tickets.view_ticket")):
            return Attachment.objects.none()
        qs = Attachment.objects.all()
        if not sees_security(user):
            qs = qs.exclude(ticket__kind=Ticket.Kind.SECURITY)
        return qs
    return Attachment.objects.filter(ticket__in=tickets_for_user(user=user)).filter(
        Q(message__isnull=True) | Q(message__internal=False)
    )


def rating_of(ticket: Ticket) -> TicketRating | None:
    """The filer's satisfaction rating of the ticket (tickets.satisfaction), or None; read with the
    ticket where its query joined it (select_related("rating"))."""
    try:
        return ticket.rating
    except TicketRating.DoesNotExist:
        return None


def ratings_of(tickets) -> dict[int, TicketRating]:
    """The ratings of these tickets by ticket id: those their query joined, and the others in one query."""
    tickets = list(tickets)
    joined = [t for t in tickets if Ticket.rating.is_cached(t)]
    out = {t.pk: rating for t in joined if (rating := rating_of(t)) is not None}
    others = [t.pk for t in tickets if not Ticket.rating.is_cached(t)]
    if others:
        out.update((r.ticket_id, r) for r in TicketRating.objects.filter(ticket__in=others))
    return out


@dataclass(frozen=True)
class EscalationRequestView:
    """A ticket's latest escalation request as the customer's API shows it (the open one, if any: a
    new one is refused while one waits for acknowledgement)."""

    requested_at: datetime
    ack_due: datetime | None
    acknowledged_at: datetime | None


ESCALATION_COLUMNS = ("requested_at", "ack_due", "acknowledged_at")


def with_escalation_request(qs: QuerySet[Ticket]) -> QuerySet[Ticket]:
    """Tickets with their latest escalation request's moments as columns of their own query: a page
    reads them with no query more (escalation_requests_of)."""
    latest = EscalationRequest.objects.filter(ticket=OuterRef("pk")).order_by("-requested_at", "-pk")
    return qs.annotate(**{f"escalation_{c}": Subquery(latest.values(c)[:1]) for c in ESCALATION_COLUMNS})


def escalation_requests_of(tickets) -> dict[int, EscalationRequestView | None]:
    """The latest escalation request of each ticket by id (None: never asked): read from the columns of
    with_escalation_request where the query had them, for the others in one query."""
    tickets = list(tickets)
    out: dict[int, EscalationRequestView | None] = {}
    others = []
    for t in tickets:
        if hasattr(t, "escalation_requested_at"):
            moments = [getattr(t, f"escalation_{c}") for c in ESCALATION_COLUMNS]
            out[t.pk] = EscalationRequestView(*moments) if moments[0] is not None else None
        else:
            out[t.pk] = None
            others.append(t.pk)
    if others:
        found = EscalationRequest.objects.filter(ticket__in=others).order_by("ticket_id", "-requested_at", "-pk")
        for ticket_id, *moments in found.values_list("ticket_id", *ESCALATION_COLUMNS):
            out[ticket_id] = out[ticket_id] or EscalationRequestView(*moments)
    return out


def messages_for_customer(ticket: Ticket) -> QuerySet[TicketMessage]:
    """The conversation as the customer sees it: internal notes never appear."""
    return ticket.messages.filter(internal=False).select_related("author").prefetch_related("attachments")


def with_presence(qs: QuerySet[Ticket]) -> QuerySet[Ticket]:
    """Tickets that say, as columns of their own query, whether they have attachments and escalation
    requests (and calls shown to the customer): a page then skips the query that would find none (most tickets have neither; each
    query costs more in Django than its EXISTS in PostgreSQL). Pauses are never read by a page: the
    clock columns stored on the ticket already count them.

    The flags are what the query read: code that adds files or requests to a ticket reads
    it again before showing it (the views redirect after every change). For a queryset whose
    ticket table is not aliased (the SQL names it)."""
    ticket = f"{Ticket._meta.db_table}.id"
    # Written out (table names only, no input): Django building Exists() subqueries cost more than
    # the queries they save.
    return qs.annotate(
        **{
            flag: RawSQL(
                f"EXISTS (SELECT 1 FROM {model._meta.db_table} x WHERE x.ticket_id = {ticket}{also})",
                (),
                BooleanField(),
            )
            for flag, model, also in (
                ("has_attachments", Attachment, ""),
                ("has_escalation_requests", EscalationRequest, ""),
                ("has_calls", TicketCall, " AND NOT x.internal"),  # the calls shown to the customer
                # the deadlines an edit of the calendar or terms moved (shown to the customer)
                ("has_deadline_moves", TicketEvent, f" AND x.kind = '{TicketEvent.Kind.DEADLINE_MOVED}'"),
            )
        }
    )


# What a page shows of a person beside what they wrote (get_full_name, the staff badge): the other
# twelve columns of a user (the password hash among them) were read and turned into Python for every
# message and filer (bench/RESULTS.md, session 6).
SHOWN_PERSON = ("name", "email", "is_staff")


def conversation_for_customer(ticket: Ticket) -> tuple[list, list[TicketMessage | TicketCall]]:
    """The files attached to the ticket itself, and the conversation with each message's files as
    `m.files`, the calls shown to the customer (`is_call`) and the moves of their deadlines
    (`is_move`: TicketEvent.Kind.DEADLINE_MOVED, with `m.moves`) in their place in time: four
    queries, whatever the number of messages, calls and moves (one fewer for each the ticket says,
    through with_presence, that it has none of)."""
    conversation = list(
        ticket.messages.filter(internal=False)
        .select_related("author")
        .only(*(f.name for f in TicketMessage._meta.concrete_fields), *(f"author__{f}" for f in SHOWN_PERSON))
    )
    files: dict[int | None, list] = {}
    for a in ticket.attachments.all() if getattr(ticket, "has_attachments", True) else ():
        files.setdefault(a.message_id, []).append(a)
    for m in conversation:
        m.files, m.is_call, m.is_move, m.at = files.get(m.pk, []), False, False, m.created_at
    extra = []
    if getattr(ticket, "has_calls", True):
        calls = ticket.calls.filter(internal=False).select_related("contact", "logged_by")
        for c in calls.only(*CALL_SHOWN):
            c.is_call, c.is_move, c.at = True, False, c.started_at
            extra.append(c)
    if getattr(ticket, "has_deadline_moves", True):
        for e in ticket.events.filter(kind=TicketEvent.Kind.DEADLINE_MOVED).only("at", "data", "ticket_id"):
            e.is_call, e.is_move, e.moves = False, True, e.deadline_moves()
            extra.append(e)
    if extra:
        conversation = sorted(conversation + extra, key=lambda item: item.at)
    return files.get(None, []), conversation


# What the customer's page shows of a call (not when it was typed in).
CALL_SHOWN = (
    "ticket_id", "direction", "contact", "contact_name", "started_at", "duration", "notes", "answered", "logged_by",
    *(f"contact__{f}" for f in SHOWN_PERSON), *(f"logged_by__{f}" for f in SHOWN_PERSON),
)  # fmt: skip


@dataclass(frozen=True)
class ClockView:
    state: str  # Ticket.SLAState value
    first_response_due: datetime | None
    first_response_at: datetime | None
    resolution_target_at: datetime | None
    resolution_due: datetime | None
    time_left: timedelta | None  # working time to the nearest pending deadline
    next_deadline: datetime | None
    overdue_since: datetime | None  # breached with no deadline pending: the one it is most late on
    paused: bool
    breached: bool
    escalation_level: int
    level_instruction: str  # what the customer does now ("Call your Account Manager")
    level_contact: str  # with whom ("Ayo, +254 ...")
    next_escalation_due: datetime | None
    timezone: str
    status: str  # the ticket's (Ticket.Status value)

    @property
    def active(self) -> bool:
        return self.status in Ticket.ACTIVE

    @property
    def waiting(self) -> bool:
        """Waiting on the customer's reply."""
        return self.status == Ticket.Status.WAITING

    @property
    def do_now(self) -> str:
        """What the customer does now, as the dashboard, the ticket list and the ticket's page say
        it: reply while we wait for them; else the current level's instruction (do_now_level and
        do_now_contact then say which level and whom); else, on a contract without a ladder, reply
        or ask to escalate; nothing once the ticket is resolved or closed."""
        if not self.active:
            return ""
        if self.waiting:
            return "Reply on the ticket: we are waiting for you"
        return self.level_instruction or "Reply on the ticket, or ask to escalate"

    @property
    def do_now_level(self) -> int | None:
        return self.escalation_level if self.active and not self.waiting and self.level_instruction else None

    @property
    def do_now_contact(self) -> str:
        return self.level_contact if self.do_now_level else ""


def ticket_clock_views(
    tickets, *, now: datetime | None = None, terms: TermsCache | None = None, contacts: bool = True
) -> dict[int, ClockView]:
    """Clock views for many tickets in a fixed number of queries: their stored clock columns (no
    deadline is derived here), their state by tickets.deadlines.sla_state, and the working time
    left to the nearest pending deadline on that deadline's calendar (terms loaded once per SLA
    version; pass `terms` to share them with the caller). With contacts=False, for a page that
    shows no level's instruction or contact (the staff queue), both are left empty and nobody is
    looked up for them."""
    now = now or timezone.now()
    tickets = list(tickets)
    if not tickets:
        return {}
    # The organisations' own managers, whom a level may name (level_contact): looked for only where
    # an organisation has one (prefetching two empty relations cost the ticket page: bench/RESULTS.md).
    if contacts:
        prefetch_related_objects(tickets, "organisation")
    if contacts and any(t.organisation.account_manager_id or t.organisation.solutions_manager_id for t in tickets):
        prefetch_related_objects(tickets, "organisation__account_manager", "organisation__solutions_manager")
    terms = terms or TermsCache()
    terms.load({t.sla_version_id for t in tickets})
    out = {}
    found: dict[tuple[int, int], tuple[str, str]] = {}
    # A level without a contact of its own falls back to the staff member with its role: looked up
    # once for the page (one query on first use), not once per organisation or SLA version.
    staff = StaffDirectory()
    for t in tickets:
        state = deadlines.sla_state(t, now=now)
        nearest = deadlines.nearest_pending(t, now=now) if not t.paused else None
        left = None
        if nearest is not None:
            due, clock = nearest
            targets = terms.targets(t.sla_version_id, t.priority)
            # Every pause of an unpaused ticket has ended: none lies between now and the deadline.
            left = deadlines.clock_of(targets, clock).elapsed(now, due)
        levels = terms.levels(t.sla_version_id) if contacts else None
        level = levels[t.escalation_level - 1] if levels and t.escalation_level <= len(levels) else None
        if level and (level.pk, t.organisation_id) not in found:
            found[level.pk, t.organisation_id] = level_contact(
                level=level, organisation=t.organisation, staff_by_role=staff.first
            )
        instruction, contact = found[level.pk, t.organisation_id] if level else ("", "")
        out[t.pk] = ClockView(
            state=state.value,
            first_response_due=t.first_response_due,
            first_response_at=t.first_response_at,
            resolution_target_at=t.resolution_target_at,
            resolution_due=t.resolution_due,
            time_left=left,
            next_deadline=nearest[0] if nearest else None,
            overdue_since=t.next_deadline if nearest is None and state == deadlines.State.BREACHED else None,
            paused=t.paused,
            breached=state == deadlines.State.BREACHED,
            escalation_level=t.escalation_level,
            level_instruction=instruction,
            level_contact=contact,
            next_escalation_due=t.next_escalation_due,
            timezone=terms.version(t.sla_version_id).timezone,
            status=t.status,
        )
    return out


def at_risk_or_breached(qs: QuerySet[Ticket], *, now: datetime | None = None) -> QuerySet[Ticket]:
    """Active tickets whose state is at risk, warned or breached (a filter for the lists): the rules
    of tickets.deadlines.sla_state as a query on the stored columns."""
    now = now or timezone.now()
    return qs.filter(status__in=Ticket.ACTIVE).filter(
        deadlines.breached_q(now) | deadlines.warned_q(now) | deadlines.at_risk_q(now)
    )


def waiting_on_staff(qs: QuerySet[Ticket]) -> QuerySet[Ticket]:
    """Tickets waiting on staff: active and not waiting on the customer, and either nobody on staff
    has answered yet or the customer wrote after staff's last public reply. Annotated with
    `waiting_since`: the customer's first message since that reply, else when the ticket was filed
    (the staff dashboard lists the longest waiting first; the queue's filter is this rule too)."""
    public = TicketMessage.objects.filter(ticket=OuterRef("pk"), internal=False)
    last_staff = public.filter(author__is_staff=True).order_by("-created_at").values("created_at")[:1]
    qs = qs.filter(status__in=[Ticket.Status.NEW, Ticket.Status.OPEN]).annotate(
        staff_answered_at=Coalesce(Subquery(last_staff), F("first_response_at"))
    )
    unanswered = public.filter(author__is_staff=False, created_at__gt=OuterRef("staff_answered_at"))
    qs = qs.annotate(unanswered_at=Subquery(unanswered.order_by("created_at").values("created_at")[:1]))
    return qs.filter(Q(staff_answered_at__isnull=True) | Q(unanswered_at__isnull=False)).annotate(
        waiting_since=Coalesce("unanswered_at", "filed_at")
    )


def _recorded(crossing: deadlines.Crossing) -> Exists:
    """Whether the sweep recorded this crossing of the ticket (its SLACrossing row)."""
    clock, kind = deadlines.CROSSING_ROWS[crossing]
    return Exists(SLACrossing.objects.filter(ticket=OuterRef("pk"), clock=clock, kind=kind))


def contract_attainment(
    *, contracts, first: date, last: date, now: datetime
) -> dict[int, dict[tuple[date, str], Attainment]]:
    """Per contract id: (month, priority) -> Attainment of the support tickets filed in the months
    `first`..`last` (first days, inclusive) in the contract's timezone, as the clocks stand at
    `now`, with their filers' satisfaction. Three queries whatever the number of contracts and
    tickets (the SLA versions, their credit tiers, the tickets' clock columns and ratings)."""
    contracts = list(contracts)
    if not contracts:
        return {}
    versions = Versions(c.sla_id for c in contracts)
    zones = {}
    for c in contracts:
        version = versions.shown(c.sla_id, now)
        zones[c.pk] = version.timezone if version else "UTC"
    after = add_months(last, 1)
    lo = datetime.combine(first, time.min, tzinfo=UTC) - MONTH_SLACK
    hi = datetime.combine(after, time.min, tzinfo=UTC) + MONTH_SLACK
    rows = Ticket.objects.filter(
        contract__in=[c.pk for c in contracts], kind=Ticket.Kind.SUPPORT, filed_at__gte=lo, filed_at__lt=hi
    ).annotate(
        response_breached=_recorded(deadlines.Crossing.FIRST_RESPONSE_BREACH),
        target_passed=_recorded(deadlines.Crossing.RESOLUTION_WARNING),
        resolution_breached=_recorded(deadlines.Crossing.RESOLUTION_BREACH),
    ).values_list(
        "contract_id", "filed_at", "priority", "excluded_cause", "first_response_at", "first_response_due",
        "resolved_at", "resolution_target_at", "resolution_due", "rating__rating", "response_breached",
        "target_passed", "resolution_breached",
    )  # fmt: skip
    by_contract: dict[int, list[TicketTimes]] = {c.pk: [] for c in contracts}
    for contract_id, filed, priority, excluded, *times in rows.iterator(chunk_size=5000):
        by_contract[contract_id].append(TicketTimes(filed, priority, bool(excluded), *times))
    return {
        pk: {key: a for key, a in attainment(times, tz=zones[pk], now=now).items() if first <= key[0] < after}
        for pk, times in by_contract.items()
    }


def assigned_active(user, *, include_security: bool) -> QuerySet[Ticket]:
    """The active tickets assigned to `user` (the staff site's home page counts them)."""
    qs = Ticket.objects.filter(assignee=user, status__in=Ticket.ACTIVE)
    return qs if include_security else qs.exclude(kind=Ticket.Kind.SECURITY)


def last_written_in(user, *, include_security: bool, limit: int = 5) -> list[Ticket]:
    """The tickets `user` last wrote in (a reply or an internal note), the latest first."""
    recent = TicketMessage.objects.filter(author=user).order_by("-created_at", "-pk")
    ids = list(dict.fromkeys(recent.values_list("ticket_id", flat=True)[: limit * 10]))[:limit]
    tickets = Ticket.objects.filter(pk__in=ids)
    if not include_security:
        tickets = tickets.exclude(kind=Ticket.Kind.SECURITY)
    return sorted(tickets, key=lambda t: ids.index(t.pk))
