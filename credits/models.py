"""Monthly uptime (one closed row per contract and month), credit claims and their audit."""

import os
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from contracts.choices import CreditKind


class MonthlyUptime(models.Model):
    """A contract's month, closed by the month-end run: its uptime, the tier and the credit it is
    eligible for, and a breakdown per outage and maintenance window. Closing again (after it was
    reopened: by staff, or because evidence that touches it changed) replaces the figures, but
    never the invoice amount and currency frozen when it was first closed."""

    class Status(models.TextChoices):
        CLOSED = "closed", "Closed"
        REOPENED = "reopened", "Reopened (to be closed again)"

    contract = models.ForeignKey("contracts.Contract", on_delete=models.CASCADE, related_name="monthly_uptimes")
    month = models.DateField(help_text="The first day of the month.")
    sla_version = models.ForeignKey(
        "contracts.SLAVersion", on_delete=models.PROTECT, related_name="+", verbose_name="SLA version"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CLOSED)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    total_minutes = models.PositiveIntegerField()
    down_minutes = models.PositiveIntegerField()
    excluded_minutes = models.PositiveIntegerField()
    # Exact figures are (total - down) / total; this is that value for display and sorting.
    uptime_percent = models.DecimalField(max_digits=12, decimal_places=8)
    guarantee = models.DecimalField(max_digits=6, decimal_places=3)
    tier_percent = models.DecimalField(max_digits=6, decimal_places=3, null=True, blank=True)
    credit_amount = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    invoice_amount = models.DecimalField(
        max_digits=14, decimal_places=4,
        help_text="The month's invoice, frozen when the month is first closed: closing it again uses this amount "
        "and currency, whatever the contract's are by then.",
    )  # fmt: skip
    currency = models.CharField(max_length=3)
    service_ids = models.TextField(
        default="", blank=True,
        help_text="The contract's services when the month was first closed, as ',3,5,': closing it again, and "
        "deciding which late evidence reopens it, use these, whatever the contract's services are by then.",
    )  # fmt: skip
    credit_kind = models.CharField(max_length=20, choices=CreditKind.choices)
    flagged = models.BooleanField(default=False, help_text="Below the guarantee but in a gap of the credit table.")
    breakdown = models.JSONField(default=list, blank=True)
    closed_at = models.DateTimeField()
    credit_changed_at = models.DateTimeField(
        null=True, blank=True, help_text="When closing it again last changed its tier or credit (staff review it)."
    )
    claim_reminder_at = models.DateTimeField(
        null=True, blank=True,
        help_text="A month below the guarantee: when its contacts are reminded to claim (7 days before the claim "
        "window closes), cleared once the reminder is sent or a claim filed.",
    )  # fmt: skip

    class Meta:
        ordering = ["-month", "contract"]
        verbose_name = "monthly uptime"
        constraints = [models.UniqueConstraint(fields=["contract", "month"], name="one_close_per_contract_month")]
        permissions = [
            ("reopen_monthlyuptime", "Can reopen a closed month"),
            ("view_compliance", "Can view the SLA compliance report"),
        ]
        indexes = [
            models.Index(fields=["month", "status"]),
            models.Index(fields=["flagged"], name="uptime_flagged", condition=Q(flagged=True)),
            models.Index(
                fields=["credit_changed_at"], name="uptime_credit_changed", condition=Q(credit_changed_at__isnull=False)
            ),
            models.Index(fields=["month"], name="uptime_reopened", condition=Q(status="reopened")),
            models.Index(
                fields=["claim_reminder_at"], name="uptime_claim_reminder", condition=Q(claim_reminder_at__isnull=False)
            ),
        ]

    def __str__(self):
        return f"{self.contract.reference} {self.month:%Y-%m}: {self.uptime_percent}%"

    @property
    def below_guarantee(self) -> bool:
        return self.uptime_percent < self.guarantee


class MonthReopening(models.Model):
    """Audit: a closed month reopened, by staff (an outage was corrected) or, with no actor, because
    evidence that touches it changed (the reason names it: credits.evidence)."""

    monthly_uptime = models.ForeignKey(MonthlyUptime, on_delete=models.CASCADE, related_name="reopenings")
    at = models.DateTimeField()
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.TextField()
    previous = models.JSONField(help_text="The figures before reopening.")

    class Meta:
        ordering = ["at"]

    def __str__(self):
        return f"Reopened {self.monthly_uptime} at {self.at:%Y-%m-%d %H:%M}"


class Claim(models.Model):
    class Status(models.TextChoices):
        SUBMITTED = "submitted", "Awaiting review"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        SETTLED = "settled", "Credited / refunded"

    contract = models.ForeignKey("contracts.Contract", on_delete=models.PROTECT, related_name="claims")
    month = models.DateField(help_text="The first day of the claimed month.")
    monthly_uptime = models.ForeignKey(MonthlyUptime, on_delete=models.PROTECT, related_name="claims")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SUBMITTED)
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    submitted_at = models.DateTimeField()
    note = models.TextField(max_length=10000, blank=True)
    tickets = models.ManyToManyField("tickets.Ticket", blank=True, related_name="claims")
    eligible_amount = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    amount = models.DecimalField(
        max_digits=14, decimal_places=4, null=True, blank=True,
        help_text="What is credited: set when the claim is approved; empty while it awaits review and once rejected.",
    )  # fmt: skip
    currency = models.CharField(max_length=3)
    credit_kind = models.CharField(max_length=20, choices=CreditKind.choices)
    decision_reason = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    figure_changed_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When its month was judged again to another tier or credit after the claim was decided: the "
        "claim is not changed; staff review it.",
    )  # fmt: skip

    class Meta:
        ordering = ["-submitted_at"]
        constraints = [models.UniqueConstraint(fields=["contract", "month"], name="one_claim_per_contract_month")]
        permissions = [
            ("decide_claim", "Can approve, adjust or reject a claim"),
            ("settle_claim", "Can mark a claim as credited or refunded"),
        ]
        indexes = [
            models.Index(fields=["status", "submitted_at"]),
            models.Index(
                fields=["figure_changed_at"], name="claim_figure_changed", condition=Q(figure_changed_at__isnull=False)
            ),
        ]

    def __str__(self):
        return f"Claim {self.pk}: {self.contract.reference} {self.month:%Y-%m} ({self.get_status_display()})"


def claim_file_path(instance, filename):
    return f"claims/{uuid.uuid4().hex}{os.path.splitext(filename)[1].lower()[:10]}"


class ClaimAttachment(models.Model):
    claim = models.ForeignKey(Claim, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=claim_file_path)
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField()

    def __str__(self):
        return self.original_name


class ClaimEvent(models.Model):
    """Audit of a claim: submitted, approved, rejected, adjusted, settled; its month judged again
    (refigured while awaiting review, flagged once decided)."""

    class Kind(models.TextChoices):
        SUBMITTED = "submitted", "Submitted"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        ADJUSTED = "adjusted", "Amount adjusted"
        SETTLED = "settled", "Credited / refunded"
        REFIGURED = "refigured", "Eligible amount follows the month judged again"
        FLAGGED = "flagged", "Month judged again after the decision"

    claim = models.ForeignKey(Claim, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    at = models.DateTimeField()
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self):
        return f"{self.get_kind_display()} at {self.at:%Y-%m-%d %H:%M}"
