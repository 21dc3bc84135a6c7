"""The sidebar filters of the staff queue and of the escalation requests."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.auth import get_user_model
from django.utils import timezone

from ..deadlines import at_risk_q, breached_q, warned_q
from ..models import Ticket, TicketRating
from ..selectors import waiting_on_staff
from ..terms_cache import top_escalation_level


def chosen(list_filter: admin.SimpleListFilter, what: str) -> int:
    """The filter's value as one of the ids it offers; anything else is refused with a message (the
    list's 400, portal.core.admin_lookups), not read with int() ("²" was a 500) nor ignored."""
    value = list_filter.value()
    if value not in {str(key) for key, _ in list_filter.lookup_choices}:
        raise IncorrectLookupParameters(f"“{value}” is none of the {what} it offers.")
    return int(value)


class SLAFilter(admin.SimpleListFilter):
    """The SLA states by the rules of tickets.deadlines (the badges, the staff dashboard's counts),
    and the tickets waiting on staff (tickets.selectors.waiting_on_staff)."""

    title = "SLA"
    parameter_name = "sla"

    def lookups(self, request, model_admin):
        return [
            ("breached", "Breached"), ("at_risk", "At risk"), ("warned", "Target passed"),
            ("waiting_on_staff", "Waiting on staff"), ("unassigned", "Unassigned (active)"),
        ]  # fmt: skip

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "breached":
            return queryset.filter(breached_q(now))
        if self.value() == "at_risk":
            return queryset.filter(at_risk_q(now))
        if self.value() == "warned":
            return queryset.filter(warned_q(now))
        if self.value() == "waiting_on_staff":
            return waiting_on_staff(queryset)
        if self.value() == "unassigned":
            return queryset.filter(assignee__isnull=True, status__in=Ticket.ACTIVE)
        return queryset


class StatusFilter(admin.SimpleListFilter):
    """The queue opens on the work still to do (new, open, waiting): the partial index
    ticket_queue_active serves it in deadline order however many tickets were ever filed."""

    title = "status"
    parameter_name = "status"
    ACTIVE = "active"
    ALL = "all"

    def lookups(self, request, model_admin):
        return [(self.ACTIVE, "Active (new, open, waiting)"), *Ticket.Status.choices, (self.ALL, "All")]

    def value(self):
        return super().value() or self.ACTIVE

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == str(lookup),
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        value = self.value()
        if value == self.ACTIVE:
            return queryset.filter(status__in=Ticket.ACTIVE)
        if value in Ticket.Status.values:
            return queryset.filter(status=value)
        return queryset


class LevelFilter(admin.SimpleListFilter):
    """Escalation level. Its choices come from the SLA terms' ladders (a few rows), not from a
    SELECT DISTINCT over every ticket, which the plain field filter runs on every page of the
    queue and which grows with every ticket ever filed."""

    title = "escalation level"
    parameter_name = "level"

    def lookups(self, request, model_admin):
        return [(str(n), f"Level {n}") for n in range(1, top_escalation_level() + 1)]

    def queryset(self, request, queryset):
        return queryset.filter(escalation_level=chosen(self, "escalation levels")) if self.value() else queryset


class AssigneeFilter(admin.SimpleListFilter):
    """The staff a ticket can be assigned to, from one query of names (Django's related-field
    filter builds a model instance per person on every page of the queue)."""

    title = "assignee"
    parameter_name = "assignee__id__exact"

    def lookups(self, request, model_admin):
        staff = get_user_model().objects.filter(is_staff=True).order_by("name", "email")
        return [(str(pk), name or email) for pk, name, email in staff.values_list("pk", "name", "email")]

    def queryset(self, request, queryset):
        return queryset.filter(assignee_id=chosen(self, "staff members")) if self.value() else queryset


class PendingFilter(admin.SimpleListFilter):
    """Pending requests unless asked otherwise."""

    title = "acknowledgement"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("pending", "Pending"), ("acknowledged", "Acknowledged"), ("all", "All")]

    def choices(self, changelist):
        for value, label in self.lookup_choices:
            yield {
                "selected": (self.value() or "pending") == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }

    def queryset(self, request, queryset):
        value = self.value() or "pending"
        if value == "pending":
            return queryset.filter(acknowledged_at__isnull=True)
        if value == "acknowledged":
            return queryset.filter(acknowledged_at__isnull=False)
        return queryset


class ChannelFilter(admin.SimpleListFilter):
    """How tickets reached us (portal, API, email, phone). Its choices are the channels themselves
    (no query); a value that is not one is refused with a message (the list's 400)."""

    title = "channel"
    parameter_name = "channel"

    def lookups(self, request, model_admin):
        return Ticket.Channel.choices

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if value not in Ticket.Channel.values:
            raise IncorrectLookupParameters(f"“{value}” is no channel this list can be filtered by.")
        return queryset.filter(channel=value)


class SatisfactionFilter(admin.SimpleListFilter):
    """The filer's rating (tickets.satisfaction). Rated tickets are resolved or closed, or reopened:
    each choice lists tickets of every status, not only the active ones the queue opens on."""

    title = "satisfaction"
    parameter_name = "rating"
    UNRATED = "unrated"

    def lookups(self, request, model_admin):
        return [
            *((v, f"Rated {label.lower()}") for v, label in TicketRating.Rating.choices),
            (self.UNRATED, "Resolved, not rated"),
        ]

    def choices(self, changelist):
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "All",
        }
        for value, label in self.lookup_choices:
            yield {
                "selected": self.value() == value,
                "query_string": changelist.get_query_string(
                    {self.parameter_name: value, StatusFilter.parameter_name: StatusFilter.ALL}
                ),
                "display": label,
            }

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if value == self.UNRATED:
            return queryset.filter(rating__isnull=True, resolved_at__isnull=False)
        if value not in TicketRating.Rating.values:
            raise IncorrectLookupParameters(f"“{value}” is no rating this list can be filtered by.")
        return queryset.filter(rating__rating=value)
