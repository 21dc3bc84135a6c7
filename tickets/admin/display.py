"""How the staff side shows a ticket's SLA: the badge, the countdown, an exclusion's cause, an
event of the audit trail, and the media (countdown script, badge styles) of the ticket admins."""

from __future__ import annotations

import re
from datetime import datetime

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from contracts.choices import Cause, Priority, priority_name
from portal.domain.formats import in_tz, wall_left

from ..deadlines import clock_words
from ..models import SLACrossing, Ticket, TicketCall, TicketEvent


def cause_label(cause: str) -> str:
    return dict(Cause.choices).get(cause, cause)


# The queue writes these in each of its rows: written with escape() on every value put in, they cost
# a third of format_html's time (bench/RESULTS.md, session 11); tests/test_ticket_admin.py checks the escaping.
def sla_badge(state: str) -> SafeString:
    return mark_safe(f'<span class="sla-badge sla-{escape(state)}">{escape(Ticket.SLAState(state).label)}</span>')


def cut(text: str) -> SafeString:
    """A cell cut to its column's width by the stylesheet, the whole text on hover."""
    text = escape(text)
    return mark_safe(f'<span class="cut" title="{text}">{text}</span>')


def countdown(due: datetime, tz: str, now: datetime, note: str = "") -> SafeString:
    return mark_safe(
        f'<time datetime="{escape(due.isoformat())}" data-countdown title="{escape(note)}">{escape(wall_left(due - now))}'
        f'</time><br><small class="sla-due">{escape(in_tz(due, tz))}</small>'
    )


class AdminMedia:
    css = {"all": ["admin-extra/tickets.css"]}
    js = ["js/admin-countdown.js"]


class TicketPageMedia(AdminMedia):
    js = [*AdminMedia.js, "js/admin-canned.js"]  # the reply form's canned replies


# Codes an event keeps, as a person reads them: "Waiting on customer", "Standard", "Portal".
WORDS = {
    TicketEvent.Kind.STATUS: lambda code: Ticket.Status(code).label if code in Ticket.Status.values else code,
    TicketEvent.Kind.PRIORITY: lambda code: priority_name(code) if code in Priority.values else code,
}
FIELD_WORDS = {"priority": WORDS[TicketEvent.Kind.PRIORITY],
               "channel": lambda code: Ticket.Channel(code).label if code in Ticket.Channel.values else code,
               "clock": clock_words,
               "kind": lambda code: SLACrossing.Kind(code).label if code in SLACrossing.Kind.values else code,
               "direction": lambda code: TicketCall.Direction(code).label if code in TicketCall.Direction.values else code}  # fmt: skip
ROW_KEYS = {"call", "request", "inbound"}  # ids an event keeps of the rows it names
MOMENT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)")


def _word(key: str, value, tz: str) -> str:
    """A value an event keeps, as a person reads it: a moment in the contract's time, yes or no."""
    if key in FIELD_WORDS:
        return FIELD_WORDS[key](value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and MOMENT.fullmatch(value):
        return in_tz(datetime.fromisoformat(value), tz)
    return str(value)


def event_summary(event: TicketEvent, tz: str) -> str:
    """What an event of a ticket's audit trail changed or recorded, its moments in `tz` (the contract's)."""
    data = dict(event.data or {})
    if "old" in data and "new" in data:
        word = WORDS.get(event.kind, str)
        summary = f"{word(data.pop('old'))} → {word(data.pop('new'))}"
        return f"{summary}: {data['reason']}" if data.get("reason") else summary
    if event.kind == TicketEvent.Kind.ASSIGNED:
        return data.get("assignee") or "unassigned"
    if event.kind == TicketEvent.Kind.EXCLUDED:
        return f"{cause_label(data.get('cause', ''))}: {data.get('reason', '')}"
    if event.kind == TicketEvent.Kind.RATED:
        comment = data.get("comment")
        return f"{data.get('rating')}: “{comment}”" if comment else str(data.get("rating"))
    if event.kind == TicketEvent.Kind.ESCALATED:
        return f"level {data.get('from')} → {data.get('to')}" + ("" if event.actor_id is None else " (by staff)")
    if event.kind == TicketEvent.Kind.DEADLINE_MOVED:
        moves = "; ".join(f"{words} {in_tz(a, tz)} → {in_tz(b, tz)}" for words, a, b in event.deadline_moves())
        return f"{moves}: {data.get('reason', '')} (shown to the customer)"
    if event.kind == TicketEvent.Kind.CROSSING and {"clock", "kind", "deadline"} <= data.keys():
        # "deadline" is the moment crossed: an at-risk warning's is when the at-risk share began.
        words = (_word(k, data[k], tz) for k in ("clock", "kind", "deadline"))
        return "{}: {} at {}".format(*words)
    # Sorted: PostgreSQL's jsonb keeps keys in its own order, SQLite in the order they were written.
    # The rows an event names (its call, request, inbound message) are the database's: not shown.
    shown = sorted((k, v) for k, v in data.items() if k not in ROW_KEYS)
    return ", ".join(f"{k.replace('_', ' ')}: {_word(k, v, tz)}" for k, v in shown)
