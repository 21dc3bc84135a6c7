"""A member's role and whether they may log in. Each change is one audit entry with before and
after (the access audit of portal.core.staff_access, under the action named here). An organisation
always keeps an active admin: the last one can be neither demoted nor deactivated, and nobody
deactivates or demotes themselves here (another admin does, so that nobody locks themselves out)."""

from __future__ import annotations

from django.db import transaction

from portal.core.people import is_last_active_admin
from portal.core.roles import CustomerRole
from portal.core.staff_access import AccessChange

from ..models import Organisation
from . import PeopleError


def _lock_organisation(member) -> None:
    """Changes of one organisation's admins happen one at a time (two admins demoting each other
    at once must not leave none)."""
    Organisation.objects.select_for_update().filter(pk=member.organisation_id).first()


def _refuse_last_admin(member, what: str) -> None:
    if is_last_active_admin(member):
        raise PeopleError(
            f"{member.get_full_name()} is the organisation's only admin: make someone else an admin before you {what}."
        )


def _refuse_self(member, actor, what: str) -> None:
    if actor is not None and actor.pk == member.pk:
        raise PeopleError(f"You cannot {what} yourself: ask another admin.")


@transaction.atomic
def member_set_role(*, member, role: str, actor):
    if role not in CustomerRole.values:
        raise PeopleError("Choose admin or member.", field="role")
    if member.customer_role == role:
        return member
    _lock_organisation(member)
    member.refresh_from_db()
    if role != CustomerRole.ADMIN:
        _refuse_self(member, actor, "demote")
        _refuse_last_admin(member, "demote them")
    with AccessChange(member, actor=actor, action="people.role_changed"):
        member.customer_role = role
        member.save(update_fields=["customer_role"])
    return member


@transaction.atomic
def member_set_active(*, member, active: bool, actor):
    """Deactivated: cannot log in (their sessions end, their API tokens are refused); their tickets,
    messages and claims stay. Reactivated: as before."""
    if member.is_active == active:
        return member
    _lock_organisation(member)
    member.refresh_from_db()
    if not active:
        _refuse_self(member, actor, "deactivate")
        _refuse_last_admin(member, "deactivate them")
    with AccessChange(member, actor=actor, action="people.activated" if active else "people.deactivated"):
        member.is_active = active
        member.save(update_fields=["is_active"])
    return member
