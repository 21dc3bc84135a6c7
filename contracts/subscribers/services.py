"""A subscription's life: requested on the public form (limited, one pending confirmation per
address), confirmed by a POST from the link in the confirmation email, changed or ended from the
manage page that every subscriber email links to (and by a mail client's one-click POST).

Links are django.core.signing tokens with salts of their own (portal.core.unsubscribe.signed_read):
the confirmation names the subscriber and its round (a link of an earlier round, from before an
unsubscribe, confirms nothing); the manage link names the subscriber.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from portal.core.form_limits import address_key, exceeded, source_key
from portal.core.notify_rules import Kind
from portal.core.outbox import outbox_enqueue
from portal.core.unsubscribe import UNSUBSCRIBE_MAX_AGE, BadToken, email_to_address, signed_read

from ..models import Service, StatusSubscriber, SubscriptionRequest

CONFIRM_SALT = "contracts.subscribers.confirm"
MANAGE_SALT = "contracts.subscribers.manage"
CONFIRM_MAX_AGE = timedelta(days=7)
# A pending (or already subscribed) address is emailed at most once in this interval, however often
# the form is sent for it: the form cannot be used to flood a mailbox.
RESEND_AFTER = timedelta(hours=1)
# The form's limits: uses per mailbox and per network address in a rolling day.
PER_ADDRESS = (5, timedelta(days=1))
PER_SOURCE = (20, timedelta(days=1))
SOURCE_PURPOSE = "contracts.subscribers.source"


class SubscriptionLimited(Exception):
    def __init__(self, message: str, retry_after: timedelta):
        super().__init__(message)
        self.retry_after = retry_after


class Requested(StrEnum):
    """What a use of the form did (the page says the same in every case: it never tells a stranger
    whether an address is subscribed)."""

    SENT = "sent"  # a confirmation email was written
    HELD = "held"  # one was sent less than RESEND_AFTER ago: nothing new
    KNOWN = "known"  # already subscribed: a link to the manage page was written (or held)


# --- Links ------------------------------------------------------------------------------------------
def confirm_url(sub: StatusSubscriber) -> str:
    token = signing.dumps({"s": sub.pk, "r": sub.round}, salt=CONFIRM_SALT)
    return settings.PORTAL_BASE_URL + reverse("status-subscription-confirm", args=[token])


def manage_token(sub: StatusSubscriber) -> str:
    return signing.dumps({"s": sub.pk}, salt=MANAGE_SALT)


def manage_url(sub: StatusSubscriber) -> str:
    return settings.PORTAL_BASE_URL + reverse("status-subscription-manage", args=[manage_token(sub)])


def _subscriber(data) -> StatusSubscriber:
    try:
        return StatusSubscriber.objects.prefetch_related("services").get(pk=int(data["s"]))
    except (KeyError, TypeError, ValueError, StatusSubscriber.DoesNotExist):
        raise BadToken("This link no longer names a subscription of ours.") from None


@dataclass(frozen=True)
class Confirmation:
    subscriber: StatusSubscriber
    round: int


def confirm_token_read(token: str) -> Confirmation:
    data = signed_read(
        token, salt=CONFIRM_SALT, max_age=CONFIRM_MAX_AGE,
        expired="This confirmation link has expired. Subscribe again on the status page for a new one.",
        invalid="This link is not valid. Copy the whole link from the email.",
    )  # fmt: skip
    sub = _subscriber(data)
    if data.get("r") != sub.round:
        raise BadToken("This confirmation link was replaced by a newer one. Use the link of the latest email.")
    return Confirmation(sub, sub.round)


def manage_token_read(token: str) -> StatusSubscriber:
    data = signed_read(
        token, salt=MANAGE_SALT, max_age=UNSUBSCRIBE_MAX_AGE,
        expired="This link has expired. Use the link of a recent email, or subscribe again on the status page.",
        invalid="This link is not valid. Copy the whole link from the email.",
    )  # fmt: skip
    sub = _subscriber(data)
    if sub.confirmed_at is None:
        raise BadToken("This subscription was never confirmed. Use the link of the confirmation email.")
    return sub


# --- The form ---------------------------------------------------------------------------------------
def public_services():
    """The services a subscriber may choose: those the public status page shows."""
    return Service.objects.only("pk", "name", "slug").order_by("name")


def _check_limits(*, address: str, source: str, now: datetime) -> None:
    limits = (
        ("address_key", address, PER_ADDRESS, "this email address"),
        ("source_key", source, PER_SOURCE, "your network address"),
    )
    if hit := exceeded(SubscriptionRequest.objects.all(), at="requested_at", limits=limits, now=now):
        raise SubscriptionLimited(
            f"We have had {hit.limit} subscription requests for {hit.whom} in the last "
            f"{hit.window.days * 24} hours. Please try again in "
            f"{max(1, round(hit.retry_after.total_seconds() / 3600))} hour(s).",
            retry_after=hit.retry_after,
        )


@transaction.atomic
def subscription_request(
    *, email: str, services: list[Service], all_services: bool, source: str | None = None, now: datetime | None = None
) -> Requested:
    """A use of the public form. A new or pending address gets a confirmation email (at most one per
    RESEND_AFTER; a pending address's choice of services is the latest asked for); an address that
    was unsubscribed starts a new round; a subscribed one is sent a link to its manage page, and its
    services change only there (a stranger cannot change them)."""
    now = now or timezone.now()
    key = address_key(email)
    _check_limits(address=key, source=source_key(source, purpose=SOURCE_PURPOSE), now=now)
    SubscriptionRequest.objects.create(
        address_key=key, source_key=source_key(source, purpose=SOURCE_PURPOSE), requested_at=now
    )
    StatusSubscriber.objects.get_or_create(address_key=key, defaults={"email": email, "created_at": now})
    sub = StatusSubscriber.objects.select_for_update().get(address_key=key)  # serialises two requests
    held = sub.confirmation_sent_at is not None and now - sub.confirmation_sent_at < RESEND_AFTER
    if sub.active:
        if held:
            return Requested.HELD
        _send(sub, "known", "status_subscription_known", {"manage_url": manage_url(sub)}, now)
        return Requested.KNOWN
    if sub.unsubscribed_at is not None:  # a new round: the old links confirm nothing
        sub.round += 1
        sub.confirmed_at = sub.unsubscribed_at = None
        held = False
    sub.email, sub.all_services = email, all_services
    sub.save(update_fields=["email", "all_services", "round", "confirmed_at", "unsubscribed_at"])
    sub.services.set([] if all_services else services)
    if held:
        return Requested.HELD
    names = [s.name for s in services] if not all_services else []
    _send(sub, "confirm", "status_subscription_confirm", {"confirm_url": confirm_url(sub), "services": names}, now)
    return Requested.SENT


def _send(sub: StatusSubscriber, what: str, template: str, context: dict, now: datetime) -> None:
    """An email the address did not opt in to yet (or about its subscription itself): no unsubscribe
    link, keyed by subscriber, round and moment so that each is written once."""
    sub.confirmation_sent_at = now
    sub.save(update_fields=["confirmation_sent_at"])
    key = f"status-subscriber:{sub.pk}:r{sub.round}:{what}:{now:%Y%m%dT%H%M%S.%f}"
    context = {**context, "email": sub.email, "status_url": settings.PORTAL_BASE_URL + reverse("status")}
    outbox_enqueue(
        email=email_to_address(Kind.ACCOUNT, key=key, to=sub.email, template=template, context=context), now=now
    )


# --- The links --------------------------------------------------------------------------------------
class Confirmed(StrEnum):
    """What a confirmation link's round is (its page) or what pressing it did (the answer)."""

    PENDING = "pending"  # not confirmed yet: the page offers the button
    FRESH = "fresh"  # the press confirmed it
    ALREADY = "already"  # confirmed before: nothing changes
    UNSUBSCRIBED = "unsubscribed"  # confirmed, then unsubscribed: the link does nothing; subscribe again


def confirmation_state(sub: StatusSubscriber) -> Confirmed:
    """The one reading of a round's state for its confirmation link. An unsubscribed round is its own
    state: its link neither confirms again (an unsubscribe is undone only from the manage page or by a
    new round from the form) nor counts as "replaced" (no newer link exists until the form is used)."""
    if sub.unsubscribed_at is not None:
        return Confirmed.UNSUBSCRIBED
    return Confirmed.PENDING if sub.confirmed_at is None else Confirmed.ALREADY


@transaction.atomic
def subscription_confirm(*, confirmation: Confirmation, now: datetime | None = None) -> Confirmed:
    """Confirm a round: FRESH if this press confirmed it; ALREADY or UNSUBSCRIBED change nothing."""
    now = now or timezone.now()
    sub = StatusSubscriber.objects.select_for_update().get(pk=confirmation.subscriber.pk)
    if sub.round != confirmation.round:
        raise BadToken("This confirmation link was replaced by a newer one. Use the link of the latest email.")
    confirmation.subscriber.unsubscribed_at = sub.unsubscribed_at
    if (state := confirmation_state(sub)) is not Confirmed.PENDING:
        return state
    sub.confirmed_at = confirmation.subscriber.confirmed_at = now
    sub.save(update_fields=["confirmed_at"])
    return Confirmed.FRESH


@transaction.atomic
def subscription_change(*, subscriber: StatusSubscriber, services: list[Service], all_services: bool) -> None:
    subscriber.all_services = all_services
    subscriber.save(update_fields=["all_services"])
    subscriber.services.set([] if all_services else services)


@transaction.atomic
def subscription_end(*, subscriber: StatusSubscriber, now: datetime | None = None) -> bool:
    """Unsubscribe; False if it already was (nothing changes)."""
    now = now or timezone.now()
    updated = StatusSubscriber.objects.filter(pk=subscriber.pk, unsubscribed_at__isnull=True).update(
        unsubscribed_at=now
    )
    subscriber.unsubscribed_at = subscriber.unsubscribed_at or now
    return bool(updated)


@transaction.atomic
def subscription_resume(*, subscriber: StatusSubscriber) -> None:
    """Undo an unsubscribe from the manage link (it proves the mailbox as the confirmation did)."""
    StatusSubscriber.objects.filter(pk=subscriber.pk).update(unsubscribed_at=None)
    subscriber.unsubscribed_at = None
