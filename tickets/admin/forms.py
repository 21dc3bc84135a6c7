"""The forms of the staff operations on a ticket: they shape input; the services decide."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from ..attachments import validate_uploads
from ..models import Ticket
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


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=Ticket.Status.choices)


class PriorityForm(forms.Form):
    priority = forms.ChoiceField(help_text="The clocks are recomputed from filing under the new priority.")

    def __init__(self, *args, ticket: Ticket, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["priority"].choices = [
            (p.priority, p.get_priority_display()) for p in ticket.sla_version.priorities.all()
        ]


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(is_staff=True, is_active=True).order_by("name", "email"),
        required=False,
        empty_label="— unassigned —",
    )


class ExcludeForm(forms.Form):
    cause = forms.ChoiceField(error_messages={"invalid_choice": "Choose a cause from the contract's exclusion list."})
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="Kept in the ticket's audit trail.")

    def __init__(self, *args, causes, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cause"].choices = [(c, cause_label(c)) for c in causes]
