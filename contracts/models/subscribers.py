"""Public subscribers of the status page: an email address with no account behind it, the public
services it follows (or all of them), and where it stands in the double opt-in. The logic is
contracts.subscribers."""

from django.db import models
from django.db.models import Q

from .terms import Service


class StatusSubscriber(models.Model):
    """One mailbox (unique by address_key: lower case, without a +tag). Pending until its owner
    confirms by POST; `round` names the current confirmation: a new round (after an unsubscribe)
    makes the links of earlier ones worthless."""

    email = models.EmailField(max_length=254, help_text="As the subscriber typed it; emails go here.")
    address_key = models.CharField(max_length=254, unique=True, editable=False)
    all_services = models.BooleanField(default=True, help_text="Every public service, new ones too.")
    services = models.ManyToManyField(Service, blank=True, related_name="status_subscribers")
    round = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(editable=False)
    confirmation_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    confirmed_at = models.DateTimeField(null=True, blank=True, editable=False)
    unsubscribed_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        indexes = [
            models.Index(
                fields=["confirmed_at"],
                name="status_subscriber_active",
                condition=Q(confirmed_at__isnull=False, unsubscribed_at__isnull=True),
            )
        ]

    def __str__(self):
        return self.email

    @property
    def active(self) -> bool:
        return self.confirmed_at is not None and self.unsubscribed_at is None


class SubscriptionRequest(models.Model):
    """One use of the public form, kept for its limits (per address and per network address, a keyed
    hash of it, never the address itself)."""

    address_key = models.CharField(max_length=254, db_index=True)
    source_key = models.CharField(max_length=32, blank=True, db_index=True)
    requested_at = models.DateTimeField(db_index=True)

    def __str__(self):
        return f"{self.address_key} at {self.requested_at:%Y-%m-%d %H:%M}"
