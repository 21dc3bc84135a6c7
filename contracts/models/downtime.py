"""Downtime evidence: maintenance windows with their notices, and outages with their updates and
cause changes."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from portal.domain.dates import EVIDENCE_YEARS_MESSAGE, in_evidence_years

from ..choices import Cause, Impact, worst_impact
from .terms import Contract, Service


# --- Maintenance and outages ------------------------------------------------------------------
def evidence_clean(evidence, what: str) -> None:
    errors = {
        name: EVIDENCE_YEARS_MESSAGE
        for name in ("starts_at", "ends_at")
        if not in_evidence_years(getattr(evidence, name))
    }
    if not errors and evidence.starts_at and evidence.ends_at and evidence.ends_at <= evidence.starts_at:
        errors["ends_at"] = f"The {what} must end after it starts."
    if errors:
        raise ValidationError(errors)


class MaintenanceWindow(models.Model):
    """Scheduled maintenance. A change of time or services starts a new revision (a new notice);
    notices go out through contracts.tasks.send_maintenance_notices."""

    class Impact(models.TextChoices):
        DOWNTIME = "downtime", "Downtime (services unavailable)"
        DEGRADED = "degraded", "Degraded performance"
        NONE = "none", "No expected impact"

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        CANCELLED = "cancelled", "Cancelled"

    title = models.CharField(max_length=200)
    description = models.TextField(help_text="What customers are told.")
    services = models.ManyToManyField(Service, related_name="maintenance_windows")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    impact = models.CharField(max_length=10, choices=Impact.choices, default=Impact.DOWNTIME)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SCHEDULED)
    revision = models.PositiveIntegerField(default=1, editable=False)
    published_at = models.DateTimeField(editable=False, help_text="When the window (this revision) was saved.")
    cancelled_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Its calendar event's SEQUENCE and DTSTAMP (RFC 5545; contracts.maintenance.ical): one more, and
    # the moment, on every change a calendar shows (a new revision, a title or description, the
    # cancellation). Never lowered: it started from each window's revision (+1 once cancelled).
    sequence = models.PositiveIntegerField(default=1, editable=False)
    changed_at = models.DateTimeField(null=True, editable=False, help_text="When its event last changed.")
    # The sweep's due-times: when the next notice / the reminder is to go out.
    notice_due_at = models.DateTimeField(null=True, blank=True, editable=False)
    reminder_due_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-starts_at"]
        indexes = [
            models.Index(fields=["notice_due_at"], name="maint_notice_due", condition=Q(notice_due_at__isnull=False)),
            models.Index(
                fields=["reminder_due_at"], name="maint_reminder_due", condition=Q(reminder_due_at__isnull=False)
            ),
            models.Index(fields=["starts_at", "ends_at"]),
            models.Index(fields=["ends_at"], name="maint_ends"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="maint_ends_after_start")
        ]

    def __str__(self):
        return f"{self.title} ({self.starts_at:%Y-%m-%d %H:%M} UTC)"

    def clean(self):
        evidence_clean(self, "window")


class MaintenanceNotice(models.Model):
    """A notice that went out for one revision of a window to one contract (its contacts get the
    emails through the outbox). Its moment decides whether the window kept the notice rule."""

    class Kind(models.TextChoices):
        ANNOUNCE = "announce", "Announcement"
        UPDATE = "update", "Updated notice"
        CANCEL = "cancel", "Cancellation"
        REMINDER = "reminder", "Reminder (1 hour before)"

    window = models.ForeignKey(MaintenanceWindow, on_delete=models.CASCADE, related_name="notices")
    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="maintenance_notices")
    revision = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    sent_at = models.DateTimeField()
    short_notice = models.BooleanField(default=False)
    # No email went out for it: the contract's designated contacts had left and its other members
    # had turned maintenance emails off. Nobody was told, so it earns no exclusion (judging).
    reached_nobody = models.BooleanField(default=False, editable=False)
    # The revision as this notice told it: its times, impact and services. The minutes an in-time
    # notice announced stay noticed when a later revision corrects the window (judging). Empty on
    # notices of a revision left behind before they were recorded: those announce nothing now.
    starts_at = models.DateTimeField(null=True, editable=False)
    ends_at = models.DateTimeField(null=True, editable=False)
    impact = models.CharField(max_length=10, blank=True, editable=False)
    service_ids = models.JSONField(default=list, editable=False)

    class Meta:
        ordering = ["sent_at"]
        constraints = [
            models.UniqueConstraint(fields=["window", "contract", "revision", "kind"], name="maint_notice_once")
        ]

    def __str__(self):
        return f"{self.get_kind_display()} r{self.revision} of {self.window_id} to {self.contract_id}"


class Outage(models.Model):
    """A stretch in which services were down. Its cause decides whether a contract excludes it."""

    class Source(models.TextChoices):
        STAFF = "staff", "Recorded by staff"
        ALERTMANAGER = "alertmanager", "Monitoring (Alertmanager)"

    title = models.CharField(max_length=200)
    services = models.ManyToManyField(Service, related_name="outages")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Blank while ongoing.")
    cause = models.CharField(max_length=40, choices=Cause.choices, default=Cause.UNPLANNED)
    description = models.TextField(blank=True, help_text="Public: shown on the status page and to customers.")
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.STAFF)
    fingerprint = models.CharField(max_length=100, blank=True, help_text="Alertmanager's alert fingerprint.")
    created_at = models.DateTimeField(auto_now_add=True)
    # Impact per service id (as a string key) where it is not major: {"3": "partial"}. Absent: major.
    impacts = models.JSONField(default=dict, blank=True, help_text="Impact per service where it is not a major outage.")
    # The contracts staff scope the outage to: a partial impact is down for them only; a
    # customer-scoped outage counts for them only and is shown to them only (never on the status page).
    contracts = models.ManyToManyField(
        Contract, blank=True, related_name="scoped_outages",
        help_text="A partial outage counts as down for these contracts only; a customer-scoped one affects only them.",
    )  # fmt: skip
    customer_scoped = models.BooleanField(
        default=False, help_text="Affects the chosen contracts only: counts and is shown only for them, never public."
    )

    class Meta:
        ordering = ["-starts_at"]
        # "Overlaps [a, b)": starts before b and ends after a (or is ongoing).
        indexes = [models.Index(fields=["starts_at", "ends_at"]), models.Index(fields=["ends_at"], name="outage_ends")]
        constraints = [
            models.UniqueConstraint(fields=["fingerprint", "starts_at"], condition=~Q(fingerprint=""), name="outage_alert_once"),
            models.CheckConstraint(condition=Q(ends_at__isnull=True) | Q(ends_at__gt=models.F("starts_at")), name="outage_ends_after_start"),
        ]  # fmt: skip
        # A cause other than "unplanned" may exclude the outage's minutes from a contract's uptime.
        permissions = [
            ("change_outage_cause", "Can change an outage's cause"),
            ("change_outage_impact", "Can change an outage's impact per service and the contracts it is scoped to"),
        ]

    def __str__(self):
        return f"{self.title} ({self.starts_at:%Y-%m-%d %H:%M} UTC)"

    def clean(self):
        evidence_clean(self, "outage")

    def impact_of(self, service_id: int) -> str:
        """The outage's impact on one of its services (major unless staff said otherwise)."""
        return (self.impacts or {}).get(str(service_id), Impact.MAJOR)

    def overall_impact(self, service_ids) -> str:
        """Its worst impact on these services (its own): the one impact its incident carries."""
        return worst_impact(self.impact_of(s) for s in service_ids)

    def impact_on(self, service_ids) -> Impact:
        """THE impact a reader is told of (a customer's emails and pages, a subscriber's emails): the
        worst on those of `service_ids` that are its services (the services of the reader's
        contracts, or those a subscriber follows), its worst overall when none of them is. A
        customer on a degraded service is not told "Major outage" because another service is down.
        Reads self.services.all() (prefetched where many are read)."""
        own = {s.pk for s in self.services.all()}
        return Impact(self.overall_impact((own & set(service_ids)) or own))


class OutageUpdate(models.Model):
    """A public timeline entry of an outage."""

    outage = models.ForeignKey(Outage, on_delete=models.CASCADE, related_name="updates")
    at = models.DateTimeField()
    body = models.TextField()

    class Meta:
        ordering = ["at"]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M}: {self.body[:40]}"


class OutageCauseChange(models.Model):
    """Audit of an outage's cause: a change decides what counts against uptime."""

    outage = models.ForeignKey(Outage, on_delete=models.CASCADE, related_name="cause_changes")
    at = models.DateTimeField()
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    old = models.CharField(max_length=40, choices=Cause.choices)
    new = models.CharField(max_length=40, choices=Cause.choices)

    class Meta:
        ordering = ["at"]

    def __str__(self):
        return f"{self.old} → {self.new} at {self.at:%Y-%m-%d %H:%M}"
