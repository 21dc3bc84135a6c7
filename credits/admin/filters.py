"""The sidebar filters of the claim and month admins."""

from __future__ import annotations

from datetime import date

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters

from ..models import Claim


class MonthFilter(admin.SimpleListFilter):
    """The months present (one query), newest first."""

    title = "month"
    parameter_name = "month"

    def lookups(self, request, model_admin):
        months = model_admin.get_queryset(request).order_by().dates("month", "month", order="DESC")
        return [(f"{m:%Y-%m}", f"{m:%B %Y}") for m in months]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            year, month = (int(part) for part in self.value().split("-"))
            return queryset.filter(month=date(year, month, 1))
        except ValueError as exc:
            raise IncorrectLookupParameters(exc) from exc


class ClaimStatusFilter(admin.SimpleListFilter):
    """Awaiting review unless asked otherwise: the queue."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [*Claim.Status.choices, ("all", "All")]

    def choices(self, changelist):
        for value, label in self.lookup_choices:
            yield {
                "selected": (self.value() or Claim.Status.SUBMITTED) == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }

    def queryset(self, request, queryset):
        value = self.value() or Claim.Status.SUBMITTED
        return queryset if value == "all" else queryset.filter(status=value)
