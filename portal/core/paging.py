"""A paginator for lists that may hold more rows than anyone pages through: the staff queue, a
customer's search of a large organisation's tickets, and the outbox's list of every email sent."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.utils.functional import cached_property


class CappedPaginator(Paginator):
    """Counts the matching rows only up to CAP + 1. A full count reads every active ticket (every
    email ever sent), so it grows with the backlog while the rest of the page does not; staff who
    need a row beyond the first thousand filter or search for it. The pagination and the actions'
    "select all" say "more than 1,000" then (templates/admin/capped/), as a customer's search of her
    ticket list does (templates/tickets/ticket_list.html)."""

    CAP = 1000
    # The order in which an index finds the first CAP + 1 rows (TicketAdmin.get_paginator sets the
    # queue's own where the partial index ticket_queue_active serves the filter; the outbox's list
    # its newest-first order, outbox_list_order). Unordered, the
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
