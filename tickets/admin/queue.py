"""The staff queue's changelist: its order, its capped count, the page's clocks in one batch, and
its rows written once per page's column plan (portal.core.django_speedups: without it the queue
falls below its floor against the peer, bench/RESULTS.md session 6)."""

from __future__ import annotations

from typing import get_type_hints

from django.db.models import F
from django.utils import timezone

from portal.core.django_speedups import FastRowsChangeList

from .. import deadlines
from ..models import Ticket
from ..selectors import ticket_clock_views

NEXT_DEADLINE = F("next_deadline").asc(nulls_last=True)  # nearest or most overdue first, none last
QUEUE_ORDER = (NEXT_DEADLINE, "-id")  # the order of the partial index ticket_queue_active


class TicketChangeList(FastRowsChangeList):
    # The queue's columns as rows() writes them (templates/admin/tickets/ticket/change_list.html).
    fast_values = {
        "action_checkbox": FastRowsChangeList.action_checkbox,
        "number": lambda admin_, t: t.number,
        "subject_line": lambda admin_, t: admin_.subject_line(t),
        "organisation_name": lambda admin_, t: admin_.organisation_name(t),
        "priority_code": lambda admin_, t: admin_.priority_code(t),
        "status": lambda admin_, t: Ticket.Status(t.status).label,  # get_status_display() builds its dict each call
        "sla": lambda admin_, t: admin_.sla(t),
        "deadline": lambda admin_, t: admin_.deadline(t),
        "level": lambda admin_, t: admin_.level(t),
        "assignee_name": lambda admin_, t: admin_.assignee_name(t),
    }
    fast_classes = {"action_checkbox": "action-checkbox"}

    # What a row reads, and nothing else: its columns, and what its clock is computed from (the
    # rules' Stored columns, and ClockView's). The texts, the search documents (tsvectors the driver
    # would decode for every row) and the organisations' and assignees' other columns stay in the
    # database: the page's statement is half as wide and a page 11% fewer instructions (bench/RESULTS.md,
    # session 15). A column read here that is not named costs a query a row: tests/test_query_counts.py.
    shown = (
        "kind", "subject", "status", "priority", "escalation_level", "next_deadline", "next_escalation_due",
        "sla_version", *get_type_hints(deadlines.Stored),
        "organisation__name", "assignee__name", "assignee__email",
    )  # fmt: skip

    def get_queryset(self, request, exclude_parameters=None):
        return super().get_queryset(request, exclude_parameters).only(*self.shown)

    def get_results(self, request):
        super().get_results(request)
        # The page's clocks in one batch (a fixed number of queries, however many rows); the queue
        # shows each ticket's level, not whom the customer calls at it.
        tickets = list(self.result_list)  # evaluates (and caches) the page the template iterates
        views = ticket_clock_views(tickets, now=timezone.now(), contacts=False)
        for ticket in tickets:
            ticket.sla_clock = views[ticket.pk]
