"""The incident admin (contracts.admin.incidents) with what only the tickets layer knows: the
tickets linked to the incident, and one public update posted to all of them (resolving them
together if staff say so) through tickets.incident_links."""

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from contracts.admin.incidents import IncidentAdmin, IncidentChangeForm
from contracts.models import Incident

from ..incident_links import incident_tickets_reply
from ..services import TicketError


class IncidentWithTicketsForm(IncidentChangeForm):
    tickets_body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}), required=False, label="Reply to every linked ticket",
        help_text="One public reply on each open linked ticket (the customer is emailed as for any reply).",
    )  # fmt: skip
    tickets_resolve = forms.BooleanField(required=False, label="Resolve them with it")


@admin.register(Incident)
class IncidentWithTicketsAdmin(IncidentAdmin):
    change_form_class = IncidentWithTicketsForm

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        fields = ["linked_tickets"]
        if self.has_change_permission(request, obj):
            fields += ["tickets_body", "tickets_resolve"]
        return [*fieldsets, ("Linked tickets", {"fields": fields})]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), *(["linked_tickets"] if obj else [])]

    @admin.display(description="Tickets")
    def linked_tickets(self, obj):
        tickets = obj.tickets.select_related("organisation").order_by("pk")
        if not tickets:
            return "None yet: link tickets from the queue (the action “Link to the incident chosen beside”)."
        return format_html_join(
            mark_safe("<br>"), '<a href="{}">#{} {}</a> ({}, {})',
            ((reverse("admin:tickets_ticket_change", args=[t.pk]), t.pk, t.subject, t.organisation.name,
              t.get_status_display()) for t in tickets),
        )  # fmt: skip

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        body = form.cleaned_data.get("tickets_body", "").strip() if change else ""
        if not body:
            return
        try:
            done = incident_tickets_reply(incident=obj, body=body, actor=request.user,
                                          resolve=form.cleaned_data.get("tickets_resolve", False), now=timezone.now())  # fmt: skip
        except TicketError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(request, f"Replied on {done} linked ticket(s).", messages.SUCCESS)
