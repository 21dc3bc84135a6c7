"""The staff triage list of email in: held messages first (attach to a ticket, file for a person of
an organisation, discard: each a POST operation calling tickets.inbound.triage, audited), and every
other message read-only. Messages to the security address (the vulnerability reports' email) are
shown to those who see reports, the security staff, who see only those: a held one they file as a
report or discard."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.http import HttpResponseNotAllowed
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from contracts.models import Contract
from portal.core.admin_operations import OperationsMixin
from portal.core.roles import SECURITY_PERMISSION, sees_security

from ..inbound import parse, triage
from ..models import InboundMessage, Ticket
from ..services import TicketError
from .display import AdminMedia
from .readonly import ReadOnlyAdmin

PERMISSION = "tickets.triage_inboundmessage"
OPERATIONS = ["attach", "file", "report", "discard"]


class AttachForm(forms.Form):
    ticket = forms.IntegerField(min_value=1, label="Ticket number", help_text="e.g. 123 for ticket #123")
    as_staff_reply = forms.BooleanField(
        required=False, label="As their public reply",
        help_text="The sender is staff: post the message as their reply (the customer is emailed), not as a note.",
    )  # fmt: skip

    def __init__(self, *args, staff_sender: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if not staff_sender:  # offered only for a staff member's message
            del self.fields["as_staff_reply"]

    def clean_ticket(self):
        ticket = Ticket.objects.filter(pk=self.cleaned_data["ticket"], kind=Ticket.Kind.SUPPORT).first()
        if ticket is None:
            raise forms.ValidationError("No support ticket has this number.")
        return ticket


class FileForm(forms.Form):
    contract = forms.ModelChoiceField(queryset=Contract.objects.select_related("organisation"))
    person = forms.EmailField(label="For (the customer's email address)")

    def clean_person(self):
        person = get_user_model().objects.filter(email__iexact=self.cleaned_data["person"], is_active=True).first()
        if person is None or not person.organisation_id:
            raise forms.ValidationError("No active customer has this address.")
        return person


class ConfirmForm(forms.Form):
    """An operation with nothing to fill in (report, discard): its button is the decision."""


class InboundChangeList(ChangeList):
    """The list without each message's raw bytes (up to INBOUND_MAX_BYTES each, 25 MB: a page of
    100 rows read hundreds of MB to show a date, a sender and a subject); the change page, which
    parses the message, reads them."""

    def get_queryset(self, request, exclude_parameters=None):
        return super().get_queryset(request, exclude_parameters).defer("raw")


@admin.register(InboundMessage)
class InboundMessageAdmin(OperationsMixin, ReadOnlyAdmin):
    refusal = TicketError
    list_display = ["received_at", "sender", "subject", "outcome", "reason", "ticket_link"]
    list_filter = ["outcome", "source"]
    list_select_related = ["ticket"]
    search_fields = ["sender", "subject", "message_id"]
    date_hierarchy = "received_at"
    fields = ["received_at", "source", "source_ref", "sender", "return_path", "recipients", "subject",
              "message_id", "size", "outcome", "reason", "organisation", "ticket", "handled_at", "handled_by"]  # fmt: skip
    readonly_fields = fields
    change_form_template = "admin/tickets/inboundmessage/change_form.html"
    Media = AdminMedia  # the ticket pages' styles: operation forms, underlined breadcrumbs

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if not sees_security(request.user):
            return qs.exclude(security=True)
        return qs if super().has_view_permission(request) else qs.filter(security=True)

    def has_view_permission(self, request, obj=None):
        if obj is not None and obj.security:
            return sees_security(request.user)
        return super().has_view_permission(request, obj) or (obj is None and sees_security(request.user))

    def get_changelist(self, request, **kwargs):
        return InboundChangeList

    @staticmethod
    def triage_permission(row: InboundMessage) -> str:
        """Who decides a held message: who sees reports for the security address's, email triage for the rest."""
        return SECURITY_PERMISSION if row.security else PERMISSION

    @admin.display(description="Ticket", ordering="ticket")
    def ticket_link(self, obj):
        return super().ticket_link(obj) if obj.ticket_id else "—"

    def get_urls(self):
        def post(view):
            return self.admin_site.admin_view(require_POST(view))

        name = "tickets_inboundmessage_"
        ops = [path(f"<int:object_id>/{op}/", post(getattr(self, f"{op}_view")), name=name + op) for op in OPERATIONS]
        return [*ops, *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "POST":
            return HttpResponseNotAllowed(["GET"])  # every change is an operation below
        extra = dict(extra_context or {})
        bound = extra.pop("bound_forms", {})
        row = self.get_object(request, unquote(object_id))
        if row is not None:
            text = parse.content(parse.parse(bytes(row.raw)), max_file_bytes=0).text
            # A held message to the security address: a vulnerability report or nothing (tickets.inbound.triage).
            if row.security:
                offered = {"report": ConfirmForm()}
            else:  # "as their public reply" offered for a staff member's message only
                offered = {"attach": AttachForm(staff_sender=triage.staff_sender(row) is not None), "file": FileForm()}
            forms_ = {**offered, "discard": ConfirmForm(), **bound}
            extra.update(
                text=text[:20000], op_forms=forms_,
                can_triage=row.outcome == "held" and request.user.has_perm(self.triage_permission(row)),
                op_urls={op: reverse(f"admin:tickets_inboundmessage_{op}", args=[row.pk]) for op in OPERATIONS},
            )  # fmt: skip
        return super().change_view(request, object_id, form_url, extra)

    def attach_view(self, request, object_id):
        row, user = self.object_to_change(request, object_id, self.triage_permission), request.user

        def call(data):
            triage.triage_attach(
                inbound=row, ticket=data["ticket"], actor=user, as_staff_reply=data.get("as_staff_reply", False)
            )

        form = AttachForm(request.POST, staff_sender=triage.staff_sender(row) is not None)
        return self.run(request, row, "attach", form, call, "Attached to the ticket.")

    def file_view(self, request, object_id):
        row, user = self.object_to_change(request, object_id, self.triage_permission), request.user

        def call(data):
            triage.triage_file(inbound=row, contract=data["contract"], person=data["person"], actor=user)

        return self.run(request, row, "file", FileForm(request.POST), call, "Filed as a ticket.")

    def report_view(self, request, object_id):
        row, user = self.object_to_change(request, object_id, self.triage_permission), request.user

        def call(data):
            triage.triage_report(inbound=row, actor=user)

        return self.run(request, row, "report", ConfirmForm(request.POST), call, "Filed as a vulnerability report.")

    def discard_view(self, request, object_id):
        row, user = self.object_to_change(request, object_id, self.triage_permission), request.user

        def call(data):
            triage.triage_discard(inbound=row, actor=user)

        return self.run(request, row, "discard", ConfirmForm(request.POST), call, "Discarded.")
