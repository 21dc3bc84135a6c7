"""A customer organisation's people: the invitations its customer admins send (contracts.people)."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from portal.core.roles import CustomerRole

from .terms import Organisation


class Invitation(models.Model):
    """An invitation to join an organisation. Its link carries a signed token (the row's id and its
    nonce, timestamped): a forged one fails the signature, an old one the expiry, a used or
    withdrawn one its row; a new invitation for the same address withdraws the open one, so only
    the latest link works."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=20, choices=CustomerRole.choices, default=CustomerRole.MEMBER)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    nonce = models.CharField(max_length=32, editable=False)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    # The contracts the new person becomes a support contact of (may open tickets on) when accepting.
    support_contracts = models.ManyToManyField("contracts.Contract", blank=True, related_name="+")

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # One open invitation per address and organisation: a new one replaces it.
            models.UniqueConstraint(
                fields=["organisation", "email"],
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_one_open_per_email",
            )
        ]

    def __str__(self):
        return f"{self.email} → {self.organisation}"

    @property
    def is_open(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None
