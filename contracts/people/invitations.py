"""Invitations: a customer admin (or staff) invites an address; the email's link carries a signed,
timestamped token naming the invitation and its nonce; the invitee chooses a name and a password
(the AUTH_PASSWORD_VALIDATORS) and is signed in. Single use: accepting locks the row and marks it.

A refused link says why: not valid (forged, altered, or replaced by a newer invitation), expired,
already used, withdrawn or replaced by a newer one, or for an address that meanwhile has an account elsewhere."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from portal.core.audit import audit
from portal.core.notify_rules import Kind
from portal.core.outbox import outbox_enqueue
from portal.core.roles import CustomerRole
from portal.core.unsubscribe import email_to_address
from portal.domain.formats import in_tz

from ..models import Invitation, Organisation
from . import PeopleError

SALT = "contracts.people.invitation"
VALID_FOR = timedelta(days=7)


class InvitationRefused(PeopleError):
    """The link cannot be used; the message says why and what to do."""


def invitation_token(invitation: Invitation) -> str:
    return signing.dumps({"i": invitation.pk, "n": invitation.nonce}, salt=SALT)


def invitation_url(invitation: Invitation) -> str:
    return settings.PORTAL_BASE_URL + reverse("invitation-accept", args=[invitation_token(invitation)])


def _address_taken(email: str, organisation: Organisation) -> str | None:
    """Why this address cannot join the organisation, if it cannot."""
    user = get_user_model().objects.filter(email__iexact=email).only("organisation_id").first()
    if user is None:
        return None
    if user.organisation_id == organisation.pk:
        return f"{email} is already one of {organisation.name}'s people."
    return (
        f"{email} already has an account with another organisation, and an address belongs to one "
        "organisation only: invite another address, or ask us to move the account."
    )


@transaction.atomic
def invitation_create(
    *, organisation: Organisation, email: str, role: str, actor, support_contracts=None, now: datetime | None = None
) -> tuple[Invitation, str]:
    """Invite `email`; an open invitation to the same address is replaced (its link stops working).
    The new person becomes a support contact of `support_contracts` (all the organisation's
    contracts when not given) on accepting. Returns the invitation and its token. The email goes
    through the outbox."""
    now = now or timezone.now()
    email = get_user_model().objects.normalize_email(email).strip().lower()
    if role not in CustomerRole.values:
        raise PeopleError("Choose admin or member.", field="role")
    if reason := _address_taken(email, organisation):
        raise PeopleError(reason, field="email")
    Organisation.objects.select_for_update().filter(pk=organisation.pk).first()  # one invitation at a time
    replaced = Invitation.objects.filter(
        organisation=organisation, email=email, accepted_at=None, revoked_at=None
    ).update(revoked_at=now)
    invitation = Invitation.objects.create(
        organisation=organisation, email=email, role=role, invited_by=actor, nonce=secrets.token_hex(16),
        created_at=now, expires_at=now + VALID_FOR,
    )  # fmt: skip
    contracts = list(organisation.contracts.all() if support_contracts is None else support_contracts)
    if any(c.organisation_id != organisation.pk for c in contracts):
        raise PeopleError("Choose among your organisation's contracts.", field="support_contracts")
    invitation.support_contracts.set(contracts)
    audit(
        actor=actor, action="people.invited", target=invitation, now=now,
        after={"email": email, "role": role, "organisation": organisation.name, "replaced": replaced,
               "support_contact_of": sorted(c.reference for c in contracts)},
    )  # fmt: skip
    outbox_enqueue(  # mandatory (portal.core.notify_rules): no account, no choices yet
        email=email_to_address(
            Kind.ACCOUNT,
            key=f"invitation:{invitation.pk}:{invitation.nonce}",
            to=email,
            template="people_invitation",
            context={
                "organisation_name": organisation.name,
                "inviter_name": actor.get_full_name() if actor else "",
                "role": CustomerRole(role).label,
                "accept_url": invitation_url(invitation),
                "expires": in_tz(invitation.expires_at, "UTC"),
            },
        ),
        now=now,
    )
    return invitation, invitation_token(invitation)


def invitation_revoke(*, invitation: Invitation, actor, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    done = Invitation.objects.filter(pk=invitation.pk, accepted_at=None, revoked_at=None).update(revoked_at=now)
    if done:
        audit(actor=actor, action="people.invitation_revoked", target=invitation, now=now,
              before={"email": invitation.email}, after={"revoked_at": now})  # fmt: skip
    return bool(done)


def may_invite(inviter, organisation_id) -> bool:
    """Whether an invitation `inviter` sent still stands: they are still an active admin of the
    organisation, or active staff who manage people. An invitation is only as good as its sender's
    standing: a departed or demoted admin's pending ones (an admin's included) are no longer."""
    if inviter is None or not inviter.is_active:
        return False
    if inviter.is_staff:
        return inviter.has_perm("contracts.manage_people")
    return inviter.organisation_id == organisation_id and inviter.customer_role == CustomerRole.ADMIN


# A change of these (portal.core.staff_access) may end someone's standing to invite.
STANDING = {"is_active", "is_staff", "is_superuser", "customer_role", "organisation_id", "groups", "user_permissions"}


def invitations_withdraw_sent_by(*, inviter, actor, now: datetime | None = None) -> int:
    """The open invitations `inviter` sent that no longer stand (may_invite), withdrawn: one audit
    entry each (people.invitation_revoked, with why). Returns how many."""
    now = now or timezone.now()
    open_ones = Invitation.objects.filter(invited_by=inviter, accepted_at=None, revoked_at=None)
    withdrawn = 0
    for invitation in open_ones.select_related("organisation"):
        if may_invite(inviter, invitation.organisation_id):
            continue
        if Invitation.objects.filter(pk=invitation.pk, accepted_at=None, revoked_at=None).update(revoked_at=now):
            audit(actor=actor, action="people.invitation_revoked", target=invitation, now=now,
                  before={"email": invitation.email, "role": invitation.role},
                  after={"revoked_at": now, "reason": f"{inviter.email} may no longer invite to {invitation.organisation.name}"})  # fmt: skip
            withdrawn += 1
    return withdrawn


def on_access_changed(sender, user, actor, before, after, **kwargs) -> None:
    """portal.core.staff_access.access_changed: whoever is deactivated, demoted, moved to another
    organisation or loses their staff rights takes back the invitations they can no longer give."""
    if STANDING & set(after):
        invitations_withdraw_sent_by(inviter=user, actor=actor)


def invitation_check(*, token: str, now: datetime | None = None, lock: bool = False) -> Invitation:
    """The open invitation the token names, or InvitationRefused saying why not."""
    now = now or timezone.now()
    not_valid = InvitationRefused(
        "This invitation link is not valid: check that you copied all of it, or ask for a new invitation."
    )
    try:
        data = signing.loads(token, salt=SALT)
        pk, nonce = int(data["i"]), str(data["n"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise not_valid from None
    rows = Invitation.objects.select_related("organisation", "invited_by")
    invitation = (rows.select_for_update(of=("self",)) if lock else rows).filter(pk=pk).first()
    if invitation is None or not constant_time_compare(invitation.nonce, nonce):
        raise not_valid
    inviter = invitation.invited_by.get_full_name() if invitation.invited_by else "your organisation's admin"
    if invitation.accepted_at is not None:
        raise InvitationRefused(f"This invitation has already been used. Log in as {invitation.email}.")
    if invitation.revoked_at is not None:
        raise InvitationRefused(
            f"This invitation was withdrawn or replaced by a newer one (use the latest email's link), "
            f"or ask {inviter} for a new one."
        )
    if invitation.expires_at <= now:
        raise InvitationRefused(
            f"This invitation expired on {in_tz(invitation.expires_at, 'UTC')}. Ask {inviter} for a new one."
        )
    if not may_invite(invitation.invited_by, invitation.organisation_id):
        sender = invitation.invited_by.get_full_name() if invitation.invited_by else "the person who sent it"
        raise InvitationRefused(
            f"This invitation was withdrawn: {sender} no longer looks after {invitation.organisation.name}'s "
            "people. Ask one of its admins for a new invitation."
        )
    if reason := _address_taken(invitation.email, invitation.organisation):
        raise InvitationRefused(reason)
    return invitation


def password_problems(password: str, *, email: str, name: str) -> list[str]:
    """What AUTH_PASSWORD_VALIDATORS say of a password for this person (nothing: it is good)."""
    try:
        validate_password(password, get_user_model()(email=email, name=name))
    except ValidationError as exc:
        return list(exc.messages)
    return []


@transaction.atomic
def invitation_accept(*, token: str, name: str, password: str, now: datetime | None = None):
    """The invitee's account, made from the invitation (single use: the row is locked and marked).
    Raises InvitationRefused, or PeopleError on the password's field."""
    now = now or timezone.now()
    invitation = invitation_check(token=token, now=now, lock=True)
    if problems := password_problems(password, email=invitation.email, name=name):
        raise PeopleError(" ".join(problems), field="password1")
    User = get_user_model()
    try:
        with transaction.atomic():
            user = User.objects.create_user(
                email=invitation.email, password=password, name=name.strip(),
                organisation=invitation.organisation, customer_role=invitation.role,
            )  # fmt: skip
    except IntegrityError:  # the address was taken between the check and the insert
        raise InvitationRefused(f"{invitation.email} already has an account. Log in instead.") from None
    invitation.accepted_at, invitation.accepted_by = now, user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    for contract in invitation.support_contracts.all():
        contract.support_contacts.add(user)
    audit(
        actor=user, action="people.invitation_accepted", target=user, now=now,
        after={"organisation": invitation.organisation.name, "role": invitation.role, "invitation": invitation.pk},
    )  # fmt: skip
    return user
