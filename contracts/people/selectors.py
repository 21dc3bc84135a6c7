"""What the People pages read, scoped to one organisation."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from portal.core.roles import CustomerRole

from ..models import Invitation


def people_of(*, organisation_id: int) -> QuerySet:
    """The organisation's people, admins first, then by name (deactivated ones included, last)."""
    return (
        get_user_model()
        .objects.filter(organisation_id=organisation_id)
        .order_by("-is_active", "customer_role", "name", "email")
    )


def admins_of(*, organisation_id: int) -> list:
    """The active admins: whom a member asks about people and rights."""
    return list(people_of(organisation_id=organisation_id).filter(customer_role=CustomerRole.ADMIN, is_active=True))


def member_of(*, organisation_id: int, pk: int):
    """One of the organisation's people; anyone else (another organisation's, staff) is a 404."""
    return get_object_or_404(get_user_model(), pk=pk, organisation_id=organisation_id)


def open_invitations(*, organisation_id: int, now: datetime) -> QuerySet[Invitation]:
    return Invitation.objects.filter(
        organisation_id=organisation_id, accepted_at=None, revoked_at=None, expires_at__gt=now
    ).select_related("invited_by")


def invitation_of(*, organisation_id: int, pk: int) -> Invitation:
    return get_object_or_404(Invitation, pk=pk, organisation_id=organisation_id)
