"""Escalation requests and SLA crossings: read-only lists for staff."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import capfirst

from portal.core.roles import sees_security
from portal.domain.formats import in_tz

from .. import services
from ..models import EscalationRequest, SLACrossing, Ticket
from .display import AdminMedia, countdown
from .filters import PendingFilter
from .operations import PERMISSIONS


class ReadOnlyAdmin(admin.ModelAdmin):
    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if sees_security(request.user) else qs.exclude(ticket__kind=Ticket.Kind.SECURITY)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Ticket", ordering="ticket")
    def ticket_link(self, obj):
        url = reverse("admin:tickets_ticket_change", args=[obj.ticket_id])
        return format_html('<a href="{}">{} {}</a>', url, obj.ticket.number, obj.ticket.subject)

    @admin.display(description="Organisation", ordering="ticket__organisation__name")
    def organisation(self, obj):
        return obj.ticket.organisation


def in_contract_time(field: str, description: str):
    """A list column of a ticket's moment in its contract's time, as the ticket's page shows it (the
    rows select their ticket's SLA version)."""

    @admin.display(description=description, ordering=field)
    def column(self, obj):
        return in_tz(getattr(obj, field), obj.ticket.sla_version.timezone)

    return column


@admin.register(EscalationRequest)
class EscalationRequestAdmin(ReadOnlyAdmin):
    list_display = ["ticket_link", "organisation", "requested_by", "requested", "ack", "acknowledged", "acknowledged_by"]  # fmt: skip
    list_filter = [PendingFilter, "ticket__organisation"]
    list_select_related = ["ticket__organisation", "ticket__sla_version", "requested_by", "acknowledged_by"]
    search_fields = ["ticket__subject", "ticket__organisation__name", "reason"]
    ordering = [F("ack_due").asc(nulls_last=True)]
    actions = ["acknowledge"]
    Media = AdminMedia
    requested = in_contract_time("requested_at", "Requested at")
    acknowledged = in_contract_time("acknowledged_at", "Acknowledged at")

    @admin.display(description="Acknowledge by", ordering="ack_due")
    def ack(self, obj):
        if obj.ack_due is None or obj.acknowledged_at is not None:
            return "—"
        return countdown(obj.ack_due, obj.ticket.sla_version.timezone, timezone.now())

    def has_acknowledge_permission(self, request):
        return request.user.has_perm(PERMISSIONS["acknowledge"])

    @admin.action(description="Acknowledge", permissions=["acknowledge"])
    def acknowledge(self, request, queryset):
        count = 0
        for escalation in queryset.filter(acknowledged_at__isnull=True).select_related("ticket"):
            services.escalation_acknowledge(request=escalation, actor=request.user)
            count += 1
        self.message_user(request, f"{count} escalation request(s) acknowledged.", messages.SUCCESS)


@admin.register(SLACrossing)
class SLACrossingAdmin(ReadOnlyAdmin):
    list_display = ["ticket_link", "organisation", "priority", "clock_shown", "kind", "crossed", "recorded"]
    list_filter = ["kind", "ticket__priority", "ticket__organisation"]
    list_select_related = ["ticket__organisation", "ticket__sla_version"]
    crossed = in_contract_time("at", "Crossed at")
    recorded = in_contract_time("recorded_at", "Recorded at")
    search_fields = ["ticket__subject", "ticket__organisation__name"]
    date_hierarchy = "at"
    ordering = ["-at"]
    linked_lookups = frozenset({"at__gte"})  # the staff dashboard: this week's breaches

    @admin.display(description="Priority", ordering="ticket__priority")
    def priority(self, obj):
        return obj.ticket.priority_name

    @admin.display(description="Clock", ordering="clock")
    def clock_shown(self, obj):
        return capfirst(obj.clock_words)
