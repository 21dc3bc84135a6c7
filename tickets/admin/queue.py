"""The staff queue's changelist: its order, its capped count, the page's clocks in one batch, and
its rows written once per page's column plan (portal.core.django_speedups: without it the queue
falls below its floor against the peer, bench/RESULTS.md session 6)."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.db.models import F
from django.utils import timezone
from django.utils.functional import cached_property

from portal.core.django_speedups import FastRowsChangeList

from ..selectors import ticket_clock_views

NEXT_DEADLINE = F("next_deadline").asc(nulls_last=True)  # nearest or most overdue first, none last
QUEUE_ORDER = (NEXT_DEADLINE, "-id")  # the order of the partial index ticket_queue_active


class CappedPaginator(Paginator):
    """Counts the matching tickets only up to CAP + 1. A full count reads every active ticket, so
    it grows with the backlog while the rest of the page does not; staff who need a ticket beyond
    the first thousand filter or search for it. The pagination and the actions'
    "select all" say "more than 1,000" then (templates/admin/tickets/ticket/)."""

    CAP = 1000
    # The order in which an index finds the first CAP + 1 rows (TicketAdmin.get_paginator sets the
    # queue's own where the partial index ticket_queue_active serves the filter). Unordered, the
    # count is a sequential scan that stops at the 1,001st active ticket: quick only when PostgreSQL
    # happens to start it near the newest tickets (synchronised scans); from the table's first page
    # it reads every closed ticket filed before the first active one (bench/RESULTS.md, session 5).
    count_order: tuple = ()

    @cached_property
    def count(self) -> int:
        return self.object_list.order_by(*self.count_order)[: self.CAP + 1].count()

    @property
    def capped(self) -> bool:
        return self.count > self.CAP


class TicketChangeList(FastRowsChangeList):
    # The queue's columns as rows() writes them (templates/admin/tickets/ticket/change_list.html).
    fast_values = {
        "action_checkbox": FastRowsChangeList.action_checkbox,
        "number": lambda admin_, t: t.number,
        "subject_line": lambda admin_, t: admin_.subject_line(t),
        "organisation_name": lambda admin_, t: admin_.organisation_name(t),
        "priority_code": lambda admin_, t: admin_.priority_code(t),
        "status": lambda admin_, t: t.get_status_display(),
        "sla": lambda admin_, t: admin_.sla(t),
        "deadline": lambda admin_, t: admin_.deadline(t),
        "level": lambda admin_, t: admin_.level(t),
        "assignee_name": lambda admin_, t: admin_.assignee_name(t),
    }
    fast_classes = {"action_checkbox": "action-checkbox"}

    def get_results(self, request):
        super().get_results(request)
        # The page's clocks in one batch (a fixed number of queries, however many rows); the queue
        # shows each ticket's level, not whom the customer calls at it.
        tickets = list(self.result_list)  # evaluates (and caches) the page the template iterates
        views = ticket_clock_views(tickets, now=timezone.now(), contacts=False)
        for ticket in tickets:
            ticket.sla_clock = views[ticket.pk]
