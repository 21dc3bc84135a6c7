"""The forms of the staff operations on claims and months: they shape input; the services decide."""

from __future__ import annotations

from django import forms


def reason_field(help_text: str):
    # Not required here: the service says why a reason is needed, in its own words.
    return forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, help_text=help_text)


class AdjustForm(forms.Form):
    amount = forms.DecimalField(max_digits=14, decimal_places=4, help_text="In the claim's currency.")
    reason = reason_field("Why the amount differs from the eligible credit: kept in the audit trail.")


class RejectForm(forms.Form):
    reason = reason_field("The customer is emailed this reason.")


class BulkRejectForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Each customer is emailed this reason.",
        error_messages={"required": "Say why the claims are rejected: each customer is told."},
    )


class ReopenForm(forms.Form):
    reason = reason_field("Why the month is reopened (e.g. an outage's cause was corrected): kept with the month.")
