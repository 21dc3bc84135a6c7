"""Forms of the customer ticket pages. They check input and shape it for the services in
tickets.services; the rules themselves (who may file on which contract, which moves are allowed)
stay in the services, which raise TicketError."""

from __future__ import annotations

from datetime import datetime

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from contracts.choices import Priority
from contracts.models import Contract, PriorityTerm, Service
from contracts.people.support import openable_contracts
from contracts.selectors import version_in_force
from portal.core.once import OnceField

from . import search
from .attachments import ALLOWED_BINARY, MAX_FILES, TEXT_SUFFIXES, validate_upload
from .models import Ticket

# --- Attachments --------------------------------------------------------------------------------
# A hint for the browser's file picker only: the content decides (tickets.attachments).
ACCEPT = ",".join(sorted({*ALLOWED_BINARY.values(), ".jpeg", *TEXT_SUFFIXES}))


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one input (Django docs, "Uploading multiple files"). Each file is checked
    on its content by tickets.attachments; the checked type is kept on the upload as
    `checked_type`, which the services store instead of the browser's claim."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ACCEPT}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single_clean = super().clean
        if isinstance(data, list | tuple):
            uploads = [single_clean(d, initial) for d in data]
        else:
            uploads = [single_clean(data, initial)] if data else []
        uploads = [u for u in uploads if u]
        if len(uploads) > MAX_FILES:
            raise ValidationError(f"At most {MAX_FILES} files at once.")
        errors = []
        for upload in uploads:
            try:
                upload.checked_type = validate_upload(upload)
            except ValidationError as exc:
                errors.extend(exc.messages)
        if errors:
            raise ValidationError(errors)  # every refused file is named, not only the first
        return uploads


def attachments_help() -> str:
    limit = settings.ATTACHMENT_MAX_BYTES // (1024 * 1024)
    return (
        f"Up to {MAX_FILES} files of at most {limit} MB each: images (PNG, JPEG, GIF, WebP), PDF, "
        f"ZIP/GZip, or text ({', '.join(TEXT_SUFFIXES)})."
    )


# --- Filing a ticket ----------------------------------------------------------------------------
class ContractChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Contract) -> str:
        return f"{obj.name} ({obj.reference})"


class TicketForm(forms.Form):
    """File a ticket on one of the user's organisation's contracts. The services and priorities
    offered are those of the chosen contract and of the SLA version in force now; a version with a
    single priority term (Klart) offers no choice."""

    contract = ContractChoiceField(
        queryset=Contract.objects.none(),
        empty_label="Choose a contract",
        error_messages={"invalid_choice": "Choose one of your organisation's contracts."},
    )
    service = forms.ModelChoiceField(
        queryset=Service.objects.none(),
        empty_label="Choose a service",
        error_messages={"invalid_choice": "Choose a service covered by the contract."},
    )
    subject = forms.CharField(max_length=200, help_text="One line: what is wrong.")
    submission = OnceField()  # sent twice, filed once (portal.core.once)
    description = forms.CharField(
        max_length=20000,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="What happened, since when, and what it affects.",
    )
    steps_to_reproduce = forms.CharField(
        label="Steps to reproduce",
        required=False,
        max_length=20000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="It saves a round trip: the clock pauses while we wait for details.",
    )
    attachments = MultipleFileField(required=False)

    def __init__(self, *args, user, now: datetime | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        # Only the contracts the user is a designated support contact of (contracts.people.support).
        contracts = openable_contracts(user=user).select_related("sla").order_by("name", "pk")
        self.fields["contract"].queryset = contracts
        self.fields["attachments"].help_text = attachments_help()
        self.chosen_contract = self._chosen(contracts)
        self.version = (
            version_in_force(sla_id=self.chosen_contract.sla_id, at=now or timezone.now())
            if self.chosen_contract
            else None
        )
        self.terms = (
            list(
                PriorityTerm.objects.filter(version=self.version)
                .select_related("calendar", "resolution_calendar")
                .order_by("priority")
            )
            if self.version
            else []
        )
        if self.chosen_contract:
            self.fields["service"].queryset = self.chosen_contract.services.order_by("name")
            services = list(self.fields["service"].queryset)
            if len(services) == 1:
                self.fields["service"].initial = services[0].pk
        else:
            self.fields["service"].queryset = (
                Service.objects.filter(contracts__in=contracts).distinct().order_by("name")
            )
        if len(self.terms) > 1:
            self.fields["priority"] = forms.ChoiceField(
                choices=[(t.priority, t.get_priority_display()) for t in self.terms],
                widget=forms.RadioSelect,
                error_messages={
                    "required": "Choose a priority.",
                    "invalid_choice": "Choose one of the priorities listed.",
                },
            )
            self.order_fields(["contract", "service", "priority"])

    def _chosen(self, contracts) -> Contract | None:
        raw = self.data.get("contract") if self.is_bound else self.initial.get("contract")
        try:
            return contracts.filter(pk=int(raw)).first()
        except (TypeError, ValueError):
            return None

    @property
    def single_term(self) -> PriorityTerm | None:
        """The only priority of a version like Klart's: shown, not chosen."""
        return self.terms[0] if len(self.terms) == 1 else None

    def priority_options(self) -> list[tuple[object, PriorityTerm]]:
        """Each radio button with its term, so the template shows the meaning beside the choice."""
        if "priority" not in self.fields:
            return []
        by_code = {t.priority: t for t in self.terms}
        return [(radio, by_code[radio.data["value"]]) for radio in self["priority"]]

    def clean(self):
        data = super().clean()
        contract, service = data.get("contract"), data.get("service")
        if contract and self.version is None:
            self.add_error("contract", "This contract has no SLA terms in force yet.")
        if contract and service and not contract.services.filter(pk=service.pk).exists():
            self.add_error("service", "This service is not covered by the contract.")
        return data

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        return {
            "contract": data["contract"],
            "service": data["service"],
            "priority": data.get("priority") or None,
            "subject": data["subject"],
            "description": data["description"],
            "steps_to_reproduce": data["steps_to_reproduce"],
            "files": data["attachments"],
        }


# --- On a ticket --------------------------------------------------------------------------------
class ReplyForm(forms.Form):
    body = forms.CharField(label="Your reply", max_length=20000, widget=forms.Textarea(attrs={"rows": 5}))
    submission = OnceField()  # sent twice, added once (portal.core.once)
    attachments = MultipleFileField(required=False)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "reply_%s")
        super().__init__(*args, **kwargs)
        self.fields["attachments"].help_text = attachments_help()


class EscalateForm(forms.Form):
    reason = forms.CharField(
        label="Why should this ticket be escalated?",
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="For example: the impact has grown, or a deadline of yours is close.",
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "escalate_%s")
        super().__init__(*args, **kwargs)


class StatusForm(forms.Form):
    """A customer closes a ticket or reopens it; the service decides whether the move is allowed."""

    status = forms.ChoiceField(
        choices=[(Ticket.Status.CLOSED, "Close"), (Ticket.Status.OPEN, "Reopen")],
        error_messages={"invalid_choice": "A ticket can be closed or reopened here."},
    )


# --- The list's filters -------------------------------------------------------------------------
class TicketFilterForm(forms.Form):
    AT_RISK = "at_risk"

    q = forms.CharField(
        label="Search", required=False, strip=True,
        help_text="Words from the subject, description or replies, who filed it, or a ticket number (#42).",
    )  # fmt: skip
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *Ticket.Status.choices])
    priority = forms.ChoiceField(required=False, choices=[("", "Any priority"), *Priority.choices])
    sla = forms.ChoiceField(
        label="SLA", required=False, choices=[("", "Any SLA state"), (AT_RISK, "At risk or breached (open tickets)")]
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "filter_%s")
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            label = field.label or name
            field.error_messages["invalid_choice"] = f"Unknown {label} “%(value)s”: that filter was ignored."

    def clean_q(self):
        try:
            return search.parse(self.cleaned_data["q"])
        except search.SearchError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def filters(self) -> dict[str, str]:
        """The valid filters only: an unknown value is ignored (and said so), never an error page."""
        self.is_valid()
        return {k: v for k, v in self.cleaned_data.items() if v}
