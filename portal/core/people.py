"""The one rule every path that changes a customer's role or activity keeps (the portal's People
page and the staff admin's, through contracts.people.members, and the User admin): an organisation
always keeps an active customer admin."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from .roles import CustomerRole


def is_last_active_admin(member) -> bool:
    """Whether `member`, as stored, is their organisation's only active admin."""
    if not member.organisation_id:
        return False
    admins = get_user_model().objects.filter(
        organisation_id=member.organisation_id, customer_role=CustomerRole.ADMIN, is_active=True
    )
    return admins.filter(pk=member.pk).exists() and not admins.exclude(pk=member.pk).exists()
