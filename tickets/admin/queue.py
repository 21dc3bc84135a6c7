"""The staff queue's changelist: its order, its capped count, and the page's clocks in one batch."""

from __future__ import annotations

from django.contrib.admin.templatetags.admin_list import ResultList, items_for_result
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.utils import display_for_value
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db.models import F
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import conditional_escape, escape
from django.utils.safestring import mark_safe

from ..models import Ticket
from ..selectors import ticket_clock_views

NEXT_DEADLINE = F("next_deadline").asc(nulls_last=True)  # nearest or most overdue first, none last
QUEUE_ORDER = (NEXT_DEADLINE, "-id")  # the order of the partial index ticket_queue_active


class CappedPaginator(Paginator):
    """Counts the matching tickets only up to CAP + 1. The queue's count of every active ticket
    (100,000 at scale) took longer in PostgreSQL than the rest of the page; staff who need a
    ticket beyond the first thousand filter or search for it. The pagination and the actions'
    "select all" say "more than 1,000" then (templates/admin/tickets/ticket/)."""

    CAP = 1000
    # The order in which an index finds the first CAP + 1 rows (TicketAdmin.get_paginator sets the
    # queue's own where the partial index ticket_queue_active serves the filter). Unordered, the
    # count was a sequential scan that stops at the 1,001st active ticket: 0.5 ms when PostgreSQL
    # happened to start it near the newest tickets (synchronised scans), 230 ms from the start of
    # the table at 1,000,000 tickets, where the first active ticket is 900,000 rows in.
    count_order: tuple = ()

    @cached_property
    def count(self) -> int:
        return self.object_list.order_by(*self.count_order)[: self.CAP + 1].count()

    @property
    def capped(self) -> bool:
        return self.count > self.CAP


class TicketChangeList(ChangeList):
    _change_url = None

    def url_for_result(self, result) -> str:
        # One reverse() for the page, not two per row (the number and the subject link).
        if self._change_url is None:
            self._change_url = super().url_for_result(Ticket(pk=0))
        return self._change_url.replace("/0/", f"/{result.pk}/", 1)

    def get_results(self, request):
        super().get_results(request)
        # The page's clocks in one batch (a fixed number of queries, however many rows).
        tickets = list(self.result_list)  # evaluates (and caches) the page the template iterates
        views = ticket_clock_views(tickets, now=timezone.now())
        for ticket in tickets:
            ticket.sla_clock = views[ticket.pk]

    # --- The rows ----------------------------------------------------------------------------------
    # Django's items_for_result decides, for every cell of every row, what kind of column it is
    # (lookup_field, the field's class, its link, its CSS classes) and builds each cell with two
    # format_html calls: a sixth of the queue's time for 25 rows of 10 cells. Here each column's
    # decisions are taken once per page and a row is one string, with the same markup
    # (tests/test_ticket_admin.py compares the two on tickets of every kind).
    COLUMN_VALUES = {
        "action_checkbox": lambda admin_, t: admin_.action_checkbox(t),
        "number": lambda admin_, t: t.number,
        "subject": lambda admin_, t: t.subject,
        "organisation": lambda admin_, t: str(t.organisation),
        "priority_code": lambda admin_, t: admin_.priority_code(t),
        "status": lambda admin_, t: t.get_status_display(),
        "sla": lambda admin_, t: admin_.sla(t),
        "deadline": lambda admin_, t: admin_.deadline(t),
        "level": lambda admin_, t: admin_.level(t),
        "assignee_name": lambda admin_, t: admin_.assignee_name(t),
    }
    COLUMN_CLASSES = {"action_checkbox": "action-checkbox", "organisation": "field-organisation nowrap"}

    def rows(self) -> list[ResultList]:
        """The page's rows for change_list_results.html: each a list of one string, its cells."""
        if self.formset is not None or self.is_popup or self.to_field or not self.fast_columns():
            return [ResultList(None, items_for_result(self, t, None)) for t in self.result_list]
        admin_, empty = self.model_admin, self.model_admin.get_empty_value_display()
        link = escape(
            add_preserved_filters(
                {"preserved_filters": self.preserved_filters, "opts": self.opts}, self.url_for_result(Ticket(pk=0))
            )
        )
        columns = []  # (opening, closing, value, linked) per column
        first_link = True
        for name in self.list_display:
            css = self.COLUMN_CLASSES.get(name, f"field-{name}")
            if name in self.list_display_links:
                tag = "th" if first_link else "td"  # as Django: the first link is the row's header
                first_link = False
                columns.append(
                    (f'<{tag} class="{css}"><a href="{link}">', f"</a></{tag}>", self.COLUMN_VALUES[name], True)
                )
            else:
                columns.append((f'<td class="{css}">', "</td>", self.COLUMN_VALUES[name], False))
        out = []
        for t in self.result_list:
            here = f"/{t.pk}/"
            cells = []
            for opening, closing, value, linked in columns:
                shown = value(admin_, t)
                if isinstance(shown, str):  # SafeString too: escaped only if it is not safe
                    shown = conditional_escape(shown) if shown.strip() else empty
                else:
                    shown = conditional_escape(display_for_value(shown, empty))
                cells.append((opening.replace("/0/", here, 1) if linked else opening) + shown + closing)
            out.append(ResultList(None, [mark_safe("".join(cells))]))  # every value was escaped above
        return out

    def fast_columns(self) -> bool:
        """Whether every column of the page is one rows() knows (else Django renders the rows).
        With no links named (None or empty) Django links none or the first column: its own path."""
        links = self.list_display_links
        return bool(links) and all(name in self.COLUMN_VALUES for name in (*self.list_display, *links))
