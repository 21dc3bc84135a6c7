"""The forms of the staff operations on a ticket: they shape input; the services decide."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone

from contracts.choices import Priority
from contracts.models import Contract, Service
from contracts.selectors import version_in_force, zones_in_force
from portal.core.django_speedups import ListedModelChoiceField
from portal.core.roles import security_staff, working_staff
from portal.domain.dates import wall_moment

from ..attachments import validate_uploads
from ..canned import canned_values, placeholders_left
from ..models import Ticket, TicketCall
from .display import cause_label


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class AttachmentsField(forms.FileField):
    """Several files in one input, each checked on its content by tickets.attachments; the checked
    type rides on the upload as `checked_type`, which the services store."""

    widget = MultipleFileInput

    def __init__(self, **kwargs):
        super().__init__(required=False, **kwargs)

    def clean(self, data, initial=None):
        uploads = [u for u in (data if isinstance(data, list | tuple) else [data]) if u]
        for upload, checked in validate_uploads(uploads):
            upload.checked_type = checked
        return uploads


class ReplyForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}), max_length=20000)
    internal = forms.BooleanField(required=False, label="Internal note (staff only: the customer is not told)")
    attachments = AttachmentsField()
    status = forms.ChoiceField(
        required=False, label="And set the status to",
        choices=[("", "— leave as it is —"), *Ticket.Status.choices],
        help_text="The customer gets one email: the reply, saying the new status.",
    )  # fmt: skip

    def __init__(self, *args, ticket: Ticket | None = None, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.ticket, self.user = ticket, user

    def clean(self):
        data = super().clean()
        body = data.get("body", "")
        left = placeholders_left(body)
        if left and self.ticket is not None:  # the ticket's own words (its subject...) filled in are no placeholder
            left = placeholders_left(body, canned_values(self.ticket, self.user).values())
        if left and not data.get("internal"):  # a canned reply's placeholder typed or pasted, never filled
            names = ", ".join("{{ %s }}" % n for n in left)  # noqa: UP031 (braces)
            self.add_error("body", f"Replace {names} with the text it stands for (Insert fills it in for this ticket).")
        return data


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=Ticket.Status.choices)


class PriorityForm(forms.Form):
    priority = forms.ChoiceField(help_text="The clocks are recomputed from filing under the new priority.")
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), help_text="The customer is emailed it with the new deadlines."
    )

    def __init__(self, *args, ticket: Ticket, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["priority"].choices = [
            (p.priority, p.get_priority_display()) for p in ticket.sla_version.priorities.all()
        ]


class AssignForm(forms.Form):
    assignee = ListedModelChoiceField(
        queryset=None,
        required=False,
        empty_label="— unassigned —",
        error_messages={"invalid_choice": "A ticket is assigned to staff who work tickets."},
    )

    def __init__(self, *args, security: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = working_staff(get_user_model().objects.order_by("name", "email"))
        if security:  # a vulnerability report: security staff alone (tickets.services.ticket_assign)
            field = self.fields["assignee"]
            field.queryset = security_staff(field.queryset)
            field.error_messages["invalid_choice"] = "A vulnerability report is assigned to security staff only."


class ExcludeForm(forms.Form):
    cause = forms.ChoiceField(error_messages={"invalid_choice": "Choose a cause from the contract's exclusion list."})
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="Kept in the ticket's audit trail.")

    def __init__(self, *args, causes, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cause"].choices = [(c, cause_label(c)) for c in causes]


# --- Phone: a call on a ticket, a ticket filed for a caller --------------------------------------
def aware_in(wall: datetime | None, tz: str) -> datetime | None:
    """A wall time typed in `tz` (the contract's) as a moment, whatever the server's or the staff
    member's zone; a time `tz` skips or passes twice is refused (portal.domain.dates.wall_moment)."""
    if wall is None:
        return None
    try:
        return wall_moment(wall, tz)
    except ValueError as exc:
        raise forms.ValidationError(str(exc)) from None


class WallDateTimeField(forms.DateTimeField):
    """A date and time as typed, naive: the form says in which zone it is (aware_in). Django's own
    reads it in the current zone, the staff member's, and refuses a time that zone skips although
    the contract's has it."""

    def to_python(self, value):
        with timezone.override(UTC):  # a zone with every wall time, once
            moment = super().to_python(value)
        return None if moment is None else timezone.make_naive(moment, UTC)


class LocalDateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self):
        super().__init__(format="%Y-%m-%dT%H:%M")


def person_label(user) -> str:
    return f"{user.get_full_name()} <{user.email}>"


class CallForm(forms.Form):
    direction = forms.ChoiceField(choices=TicketCall.Direction.choices, initial=TicketCall.Direction.OUTBOUND)
    contact = ListedModelChoiceField(
        queryset=get_user_model().objects.none(), required=False, empty_label="— someone else (below) —",
        label="With", help_text="One of the organisation's people…",
    )  # fmt: skip
    contact_name = forms.CharField(
        max_length=200, required=False, label="or name and number", help_text="…or whoever it was, as they said."
    )
    started_at = WallDateTimeField(widget=LocalDateTimeInput(), label="Started")
    duration = forms.IntegerField(min_value=0, max_value=12 * 60, label="Duration (minutes)")
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), max_length=20000, required=False)
    answered = forms.BooleanField(
        required=False, label="This call answered the customer (outbound): it is the first response at its start"
    )
    internal = forms.BooleanField(required=False, label="Internal (staff only: the customer does not see the call)")

    def __init__(self, *args, ticket: Ticket, tz: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.tz = tz
        self.fields["started_at"].label = f"Started ({tz})"
        people = get_user_model().objects.filter(organisation_id=ticket.organisation_id, is_active=True, is_staff=False)
        self.fields["contact"].queryset = people.order_by("name", "email")
        self.fields["contact"].label_from_instance = person_label

    def clean_started_at(self):
        return aware_in(self.cleaned_data["started_at"], self.tz)

    def clean_duration(self):
        return timedelta(minutes=self.cleaned_data["duration"])


class FileForCustomerForm(forms.Form):
    """A ticket filed by staff for a caller (or for an email that reached a person, not support)."""

    channel = forms.ChoiceField(choices=Ticket.Channel.choices, initial=Ticket.Channel.PHONE)
    customer = forms.ModelChoiceField(
        queryset=get_user_model()
        .objects.filter(is_active=True, is_staff=False, organisation__isnull=False)
        .select_related("organisation")
        .order_by("organisation__name", "name", "email"),
        help_text="The person the ticket is for: they get the receipt and see it in the portal.",
    )
    contract = forms.ModelChoiceField(
        queryset=Contract.objects.select_related("organisation").order_by("organisation__name", "reference")
    )
    service = forms.ModelChoiceField(queryset=Service.objects.order_by("name"), help_text="Covered by the contract.")
    priority = forms.ChoiceField(choices=[("", "—"), *Priority.choices], required=False)
    subject = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}), max_length=20000)
    reached_at = WallDateTimeField(
        widget=LocalDateTimeInput(), label="The customer reached us at",
        help_text="In the contract's SLA timezone (named with each contract above). The clocks start then: not in "
        "the future, at most 7 days ago.",
    )  # fmt: skip
    override = forms.BooleanField(
        required=False,
        label="File it although they are not a designated support contact of the contract (audited)",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["customer"].label_from_instance = lambda u: f"{u.organisation.name}: {person_label(u)}"
        zones = zones_in_force(at=timezone.now())
        self.fields["contract"].label_from_instance = lambda c: (
            f"{c.organisation.name}: {c.reference} {c.name} ({zones.get(c.sla_id, 'no terms in force')})"
        )

    def clean(self):
        data = super().clean()
        contract, reached = data.get("contract"), data.get("reached_at")
        if contract is not None and reached is not None:
            version = version_in_force(sla_id=contract.sla_id, at=timezone.now())
            try:
                data["reached_at"] = aware_in(reached, version.timezone if version else "UTC")
            except forms.ValidationError as exc:
                self.add_error("reached_at", exc)
        return data


class IncidentLinkForm(forms.Form):
    """Link the ticket to an incident (empty: unlink)."""

    incident = ListedModelChoiceField(queryset=None, required=False, empty_label="(not linked)")

    def __init__(self, *args, keep: tuple = (), **kwargs):
        super().__init__(*args, **kwargs)
        from ..incident_links import incidents_for_linking

        self.fields["incident"].queryset = incidents_for_linking(*keep)


class IncidentChoiceForm(IncidentLinkForm):
    """The incident the queue's "Link to an incident" action links the selected tickets to."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["incident"].required = True
        self.fields["incident"].empty_label = "(choose an incident)"
