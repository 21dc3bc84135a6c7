"""Incidents: an outage published to customers, with a public title and a timeline of updates.

An incident is a draft (published_at empty, seen by staff only) until staff publish it, or until
publish_due_at for one drafted from an alert (docs/decisions.md, "Incidents"). An update, once
published, never changes: a correction is a new update. Its state changes live in
contracts.incidents.services, its emails in contracts.incidents.publishing."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from ..choices import Impact
from .downtime import Outage


class IncidentStatus(models.TextChoices):
    INVESTIGATING = "investigating", "Investigating"
    IDENTIFIED = "identified", "Identified"
    MONITORING = "monitoring", "Monitoring"
    RESOLVED = "resolved", "Resolved"


class Incident(models.Model):
    Status = IncidentStatus

    outage = models.OneToOneField(Outage, on_delete=models.CASCADE, related_name="incident")
    title = models.CharField(max_length=200, help_text="Public: what customers and the status page read.")
    status = models.CharField(max_length=20, choices=IncidentStatus.choices, default=IncidentStatus.INVESTIGATING)
    impact = models.CharField(
        max_length=10, choices=Impact.choices, default=Impact.MAJOR, help_text="The worst of its services' impacts."
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    published_at = models.DateTimeField(null=True, blank=True, help_text="Empty: a draft, seen by staff only.")
    publish_due_at = models.DateTimeField(
        null=True, blank=True, help_text="A draft from an alert is published then unless staff publish it first."
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["publish_due_at"], name="incident_publish_due", condition=Q(publish_due_at__isnull=False)),
            models.Index(fields=["resolved_at"], name="incident_resolved"),
        ]  # fmt: skip
        permissions = [("publish_incident", "Can publish an incident and post its updates")]

    def __str__(self):
        return self.title

    @property
    def is_open(self) -> bool:
        return self.status != IncidentStatus.RESOLVED

    @property
    def is_published(self) -> bool:
        return self.published_at is not None


class IncidentUpdate(models.Model):
    """One entry of an incident's timeline: numbered 1, 2, ... within the incident (the unique
    number is what keeps two staff posting at once from both taking the same place)."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="updates")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=IncidentStatus.choices)
    body = models.TextField()
    created_at = models.DateTimeField()
    published_at = models.DateTimeField(null=True, blank=True, help_text="Empty: a draft. Published: never changes.")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["incident", "number"]
        constraints = [models.UniqueConstraint(fields=["incident", "number"], name="incident_update_number")]

    def __str__(self):
        return f"#{self.number} {self.get_status_display()}: {self.body[:40]}"
