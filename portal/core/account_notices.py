"""The email that tells a person's old address that their sign-in address was changed: whoever
changed it (staff in the admin, or any other path: portal.core.staff_access sees every change),
to what and when. Its reader can act if they did not expect it: an address changed by someone else
is how an account is taken over, and password resets then go to the new one."""

from __future__ import annotations

from django.conf import settings

from portal.core.notify_rules import Kind
from portal.core.outbox import outbox_enqueue
from portal.core.unsubscribe import email_to_address
from portal.domain.formats import in_tz


def _who(user, actor) -> str:
    if actor is None or not getattr(actor, "pk", None):
        return "our staff"
    if actor.pk == user.pk:
        return "you"
    return f"{actor.get_full_name()} ({'our staff' if actor.is_staff else actor.email})"


def email_changed_notice(*, user, old: str, new: str, actor, entry) -> None:
    """Enqueued in the change's transaction, to the old address (mandatory: it is about the account)."""
    outbox_enqueue(
        email=email_to_address(
            Kind.ACCOUNT,
            key=f"email-changed:{user.pk}:{entry.pk}",
            to=old,
            template="account_email_changed",
            context={
                "name": user.get_full_name() if user.name else "",
                "old_email": old,
                "new_email": new,
                "changed_by": _who(user, actor),
                "changed_at": in_tz(entry.at, user.timezone or "UTC"),
                "contact_email": settings.SECURITY_CONTACT_EMAIL,
            },
        ),
        now=entry.at,
    )
