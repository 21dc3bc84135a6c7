"""Forms of the customer claim pages. They check input and shape it for credits.services; the rules
(the month has ended, the claim window, one claim per month, whose tickets may be linked) stay in
the services, which raise ClaimError."""

from __future__ import annotations

from datetime import date, datetime

from django import forms
from django.core.exceptions import ValidationError

from contracts.models import Contract
from contracts.selectors import contracts_for_user
from portal.core.ids import IdMultipleChoiceField
from portal.core.once import OnceField
from portal.domain.dates import month_from_text
from tickets.forms import ContractChoiceField, MultipleFileField, attachments_help
from tickets.models import Ticket
from tickets.selectors import tickets_for_user

from .selectors import claimable_months

OWN_CONTRACTS = "Choose one of your organisation's contracts."
OWN_TICKETS = "Link only your organisation's tickets."


class MonthField(forms.CharField):
    """A month as YYYY-MM. Offered as a select of the months still claimable, but any well-formed
    month is accepted here: the service refuses it, with the reason, if no claim can be filed."""

    widget = forms.Select

    def to_python(self, value) -> date | None:
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        try:
            return month_from_text(value)
        except ValueError as exc:
            raise ValidationError(self.invalid_message(value, exc), code="invalid") from None

    def invalid_message(self, value: str, exc: ValueError) -> str:
        return str(exc)


class TicketChoiceField(IdMultipleChoiceField):
    """An id beyond the integer range, or one int() refuses ("²"), is no ticket of theirs."""

    def label_from_instance(self, obj: Ticket) -> str:
        return f"{obj.number} {obj.subject} (filed {obj.filed_at:%Y-%m-%d})"


class ClaimMonthForm(forms.Form):
    """The first step: which contract and month. The month select lists the chosen contract's
    claimable months (every contract's when none is chosen yet)."""

    contract = ContractChoiceField(
        queryset=Contract.objects.none(),
        empty_label="Choose a contract",
        error_messages={"invalid_choice": OWN_CONTRACTS, "required": "Choose a contract."},
    )
    month = MonthField(
        error_messages={"required": "Choose the month to claim for."},
        help_text="Months that have ended and whose claim window is still open.",
    )

    def __init__(self, *args, user, now: datetime, **kwargs):
        super().__init__(*args, **kwargs)
        contracts = contracts_for_user(user=user).order_by("name", "pk")
        self.fields["contract"].queryset = contracts
        self.contracts = list(contracts)
        self.chosen_contract = self._chosen()
        if self.chosen_contract is None and len(self.contracts) == 1 and not self.is_bound:
            self.chosen_contract = self.contracts[0]
            self.initial["contract"] = self.chosen_contract.pk
        scope = [self.chosen_contract] if self.chosen_contract else self.contracts
        by_contract = claimable_months(contracts=scope, now=now)
        self.claimable = sorted({m for months in by_contract.values() for m in months}, reverse=True)
        choices = [("", "Choose a month")] + [(f"{m:%Y-%m}", f"{m:%B %Y}") for m in self.claimable]
        # A month typed into the URL (or posted) that is not on the list stays chosen, so that the
        # page shows it with the reason it cannot be claimed.
        given = str((self.data.get("month") if self.is_bound else self.initial.get("month")) or "").strip()
        if given and given not in {value for value, _ in choices}:
            try:
                label = f"{month_from_text(given):%B %Y} (not on the list)"
            except ValueError:
                label = given
            choices.append((given, label))
        self.fields["month"].widget.choices = choices

    def _chosen(self):
        raw = self.data.get("contract") if self.is_bound else self.initial.get("contract")
        try:
            pk = int(raw)
        except (TypeError, ValueError):
            return None
        return next((c for c in self.contracts if c.pk == pk), None)


class ClaimForm(ClaimMonthForm):
    """The claim itself: the month's contract and month, a note and the evidence."""

    note = forms.CharField(
        required=False,
        max_length=10000,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="What you noticed: when the service was unavailable, and how it affected you.",
    )
    tickets = TicketChoiceField(
        queryset=Ticket.objects.none(),
        required=False,
        label="Linked tickets",
        error_messages={"invalid_choice": OWN_TICKETS, "invalid_pk_value": OWN_TICKETS},
        help_text="Your organisation's tickets about the downtime. Hold Ctrl (⌘ on a Mac) to choose several.",
    )
    attachments = MultipleFileField(required=False, label="Evidence files")
    submission = OnceField()  # sent twice, filed once (portal.core.once)

    def __init__(self, *args, user, now: datetime, **kwargs):
        super().__init__(*args, user=user, now=now, **kwargs)
        self.fields["tickets"].queryset = tickets_for_user(user=user).order_by("-filed_at", "-pk")
        self.fields["tickets"].widget.attrs["size"] = 6
        self.fields["attachments"].help_text = attachments_help()

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        return {
            "contract": data["contract"],
            "month": data["month"],
            "note": data["note"],
            "tickets": list(data["tickets"]),
            "files": data["attachments"],
        }
