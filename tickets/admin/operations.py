"""The staff operations on a ticket page: one POST-only URL each (CSRF-checked, staff-only through
admin_view, each with its permission: PERMISSIONS), whose small form is validated and whose one
service in tickets.services is called (portal.core.admin_operations runs them). Nothing here
changes a ticket by itself. Also the download of a ticket's attachment."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from portal.core.admin_operations import OperationsMixin
from portal.core.ids import as_id

from .. import channels, incident_links, services
from ..attachments import attachment_response
from ..canned import CannedReplyError, canned_fill, canned_for
from ..models import Attachment, EscalationRequest, Ticket
from ..services import TicketError
from .forms import (
    AssignForm,
    CallForm,
    ExcludeForm,
    FileForCustomerForm,
    IncidentLinkForm,
    PriorityForm,
    ReplyForm,
    StatusForm,
)

OPERATIONS = ["reply", "call", "status", "priority", "assign", "take", "exclude", "escalate", "incident"]
# Each operation's permission; the others (reply or internal note, a call, status, assign, take) are
# the ticket's change permission: working tickets. Filing a ticket for a caller is a page of its own.
PERMISSIONS = {
    "priority": "tickets.change_priority",
    "exclude": "tickets.exclude_ticket",
    "escalate": "tickets.handle_escalation",
    "acknowledge": "tickets.handle_escalation",
    "file": "tickets.file_for_customer",
}


class TicketOperations(OperationsMixin):
    """The operations' URLs and views, mixed into TicketAdmin."""

    refusal = TicketError

    def op_url(self, name: str, ticket: Ticket, *args) -> str:
        return reverse(f"admin:tickets_ticket_{name}", args=[ticket.pk, *args])

    # --- The operations: POST only, CSRF-checked and staff-only (admin_view), change permission ---
    def get_urls(self):
        def post(view):
            return self.admin_site.admin_view(require_POST(view))

        ops = [path(f"<int:object_id>/{name}/", post(getattr(self, f"{name}_view")), name=f"tickets_ticket_{name}") for name in OPERATIONS]  # fmt: skip
        return [
            *ops,
            path(
                "file/",
                self.admin_site.admin_view(require_http_methods(["GET", "POST"])(self.file_view)),
                name="tickets_ticket_file",
            ),
            path(
                "<int:object_id>/escalations/<int:request_id>/acknowledge/",
                post(self.acknowledge_view),
                name="tickets_ticket_acknowledge",
            ),
            path(
                "<int:object_id>/canned/",
                self.admin_site.admin_view(require_GET(self.canned_view)),
                name="tickets_ticket_canned",
            ),
            path(
                "<int:object_id>/attachments/<int:attachment_id>/",
                self.admin_site.admin_view(self.attachment_view),
                name="tickets_ticket_attachment",
            ),
            *super().get_urls(),
        ]

    def reply_view(self, request, object_id):
        ticket, user = self.object_to_change(request, object_id), request.user

        def call(data):
            services.ticket_reply(
                ticket=ticket, author=user, body=data["body"], internal=data["internal"], files=data["attachments"],
                status=data["status"] or None,
            )  # fmt: skip

        def text(data):
            done = "Internal note added." if data["internal"] else "Reply sent to the customer."
            return f"{done} Status: {Ticket.Status(data['status']).label.lower()}." if data["status"] else done

        form = ReplyForm(request.POST, request.FILES, ticket=ticket, user=user)
        return self.run(request, ticket, "reply", form, call, text, "#conversation")

    def call_view(self, request, object_id):
        ticket, user = self.object_to_change(request, object_id), request.user
        tz = ticket.sla_version.timezone

        def call(data):
            logged = channels.ticket_call_log(
                ticket=ticket, actor=user, direction=data["direction"], contact=data["contact"],
                contact_name=data["contact_name"], started_at=data["started_at"], duration=data["duration"],
                notes=data["notes"], internal=data["internal"], answered=data["answered"],
            )  # fmt: skip
            data["breach_stands"] = logged.answered and logged.ticket.breached

        def text(data):
            done = "Call logged" + ("" if data["internal"] else ": the customer sees it on the ticket")
            if data["answered"]:
                done += ". It counts as the first response at its start unless someone answered earlier"
                if data["breach_stands"]:
                    done += "; the first-response breach already recorded stands"
            return done + "."

        form = CallForm(request.POST, ticket=ticket, tz=tz)
        return self.run(request, ticket, "call", form, call, text, "#conversation")

    def file_view(self, request):
        """A ticket filed for a customer who called (or emailed a person): the form, then the new
        ticket's page. A refusal is the form again with its reasons (400)."""
        if not request.user.has_perm(PERMISSIONS["file"]):
            raise PermissionDenied
        form = FileForCustomerForm(request.POST or None)
        status = 200
        if request.method == "POST":
            status = 400
            if form.is_valid():
                data = form.cleaned_data
                try:
                    ticket = channels.ticket_file_for_customer(
                        actor=request.user, customer=data["customer"], contract=data["contract"],
                        service=data["service"], priority=data["priority"] or None, subject=data["subject"],
                        description=data["description"], channel=data["channel"], reached_at=data["reached_at"],
                        override=data["override"],
                    )  # fmt: skip
                except TicketError as exc:
                    form.add_error(exc.field if exc.field in form.fields else None, str(exc))
                else:
                    self.message_user(
                        request, f"Ticket {ticket.number} filed for {data['customer'].get_full_name()}; "
                        "they are emailed the receipt.", messages.SUCCESS,
                    )  # fmt: skip
                    return HttpResponseRedirect(reverse("admin:tickets_ticket_change", args=[ticket.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": "File a ticket for a customer",
            "opts": self.opts,
            "form": form,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/tickets/ticket/file_for_customer.html", context, status=status)

    def status_view(self, request, object_id):
        ticket, user = self.object_to_change(request, object_id), request.user

        def call(data):
            services.ticket_set_status(ticket=ticket, actor=user, status=data["status"])

        return self.run(request, ticket, "status", StatusForm(request.POST), call, "Status changed.")

    def priority_view(self, request, object_id):
        ticket, user = self.object_to_change(request, object_id, PERMISSIONS["priority"]), request.user

        def call(data):
            services.ticket_change_priority(ticket=ticket, actor=user, priority=data["priority"], reason=data["reason"])

        form = PriorityForm(request.POST, ticket=ticket)
        return self.run(request, ticket, "priority", form, call, "Priority changed; the clocks were recomputed.")

    def assign_view(self, request, object_id):
        ticket, user = self.object_to_change(request, object_id), request.user

        def call(data):
            services.ticket_assign(ticket=ticket, actor=user, assignee=data["assignee"])

        form = AssignForm(request.POST, security=ticket.kind == Ticket.Kind.SECURITY)
        return self.run(request, ticket, "assign", form, call, "Assignee changed.")

    def incident_view(self, request, object_id):
        ticket, user = self.object_to_change(request, object_id), request.user

        def call(data):
            incident_links.ticket_link_incident(ticket=ticket, incident=data["incident"], actor=user)

        def text(data):
            return f"Linked to incident “{data['incident']}”." if data["incident"] else "Unlinked from its incident."

        keep = (ticket.incident_id, getattr(incident_links.incident_suggested(ticket), "pk", None))
        return self.run(request, ticket, "incident", IncidentLinkForm(request.POST, keep=keep), call, text)

    def take_view(self, request, object_id):
        ticket, user = self.object_to_change(request, object_id), request.user

        def call(data):
            services.ticket_assign(ticket=ticket, actor=user, assignee=user)

        return self.run(request, ticket, "take", forms.Form({}), call, "The ticket is yours.")

    def exclude_view(self, request, object_id):
        ticket, user = self.object_to_change(request, object_id, PERMISSIONS["exclude"]), request.user

        def call(data):
            services.ticket_exclude(ticket=ticket, actor=user, cause=data["cause"], reason=data["reason"])

        form = ExcludeForm(request.POST, causes=ticket.sla_version.exclusion_causes or [])
        return self.run(request, ticket, "exclude", form, call, "The ticket is excluded from the SLA.")

    def escalate_view(self, request, object_id):
        ticket, user = self.object_to_change(request, object_id, PERMISSIONS["escalate"]), request.user

        def call(data):
            services.ticket_escalate_now(ticket=ticket, actor=user)

        return self.run(request, ticket, "escalate", forms.Form({}), call, "Escalated one level up.")

    def acknowledge_view(self, request, object_id, request_id):
        ticket, user = self.object_to_change(request, object_id, PERMISSIONS["acknowledge"]), request.user
        escalation = get_object_or_404(EscalationRequest, pk=request_id, ticket=ticket)

        def call(data):
            services.escalation_acknowledge(request=escalation, actor=user)

        return self.run(request, ticket, "acknowledge", forms.Form({}), call, "Escalation request acknowledged.")

    def canned_view(self, request, object_id):
        """A canned reply (`?reply=<id>`, one this user may insert) filled for the ticket, as JSON
        ({"name", "body"}) for the reply form's script (static/js/admin-canned.js) to insert. Only
        for those who may reply on the ticket; nothing changes."""
        ticket = self.object_to_change(request, object_id)
        reply = canned_for(request.user).filter(pk=as_id(request.GET.get("reply", ""))).first()
        if reply is None:
            return JsonResponse({"error": "No such canned reply among yours and your teams'."}, status=404)
        try:
            body = canned_fill(reply=reply, ticket=ticket, user=request.user)
        except CannedReplyError as exc:
            return JsonResponse({"error": str(exc)}, status=400)
        return JsonResponse({"name": reply.name, "body": body})

    def attachment_view(self, request, object_id, attachment_id):
        ticket = self.get_object(request, str(object_id))  # vulnerability reports: security staff only
        if ticket is None or not self.has_view_permission(request, ticket):
            raise Http404("No such ticket.")
        return attachment_response(get_object_or_404(Attachment, pk=attachment_id, ticket=ticket))
