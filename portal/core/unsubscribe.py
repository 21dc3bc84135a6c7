"""One-click unsubscribe (RFC 8058): a signed token bound to one person and one choice, the headers
of an optional email, and the service that turns the choice off (or on again) and says so.

The token is django.core.signing with a salt of its own, timestamped: it is refused after
UNSUBSCRIBE_MAX_AGE (docs/decisions.md). It names the person by id and the choice by its value;
nothing else, so it changes exactly that preference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.db import transaction
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone

from portal.core.notify_rules import Choice, Kind, Recipient
from portal.core.outbox import Email
from portal.models import NotificationPreference

SALT = "portal.unsubscribe"
# Long enough for an email read weeks later, short enough that an old leaked link stops working.
UNSUBSCRIBE_MAX_AGE = timedelta(days=180)
ONE_CLICK = "List-Unsubscribe=One-Click"


# Links whose last part is a token that acts for its reader without a sign-in: a member's one-click
# unsubscribe, a status subscriber's confirmation and page (it unsubscribes them, or changes their
# services), a ticket's rating. The longer of two prefixes first.
TOKEN_LINKS = ("unsubscribe", "status-subscription-confirm", "status-subscription-manage", "ticket-rate")


def without_link_tokens(text: str) -> str:
    """`text` with the token of every such link in it left out: what staff read of an email in the
    outbox."""
    return _token_links().sub(r"\1(withheld)", text)


@lru_cache
def _token_links() -> re.Pattern:
    prefixes = (re.escape(reverse(name, args=["-"]).removesuffix("-/")) for name in TOKEN_LINKS)
    return re.compile("(" + "|".join(prefixes) + r")[\w:.-]+")


def token_for(user, choice: Choice) -> str:
    return signing.dumps({"u": user.pk, "c": str(choice)}, salt=SALT)


def unsubscribe_url(user, choice: Choice) -> str:
    before, after = _around_token(settings.PORTAL_BASE_URL, get_urlconf(settings.ROOT_URLCONF), get_script_prefix())
    return f"{before}{token_for(user, choice)}{after}"


_MARK = "TOKEN"


@lru_cache(maxsize=8)
def _around_token(base: str, urlconf: str, script_prefix: str) -> tuple[str, str]:
    """The link's text before and after its token, reversed once per configuration (an incident
    writes 30,000 links): a token's characters (URL-safe base64 and ":") are those reverse() keeps."""
    before, _, after = (base + reverse("unsubscribe", args=[_MARK], urlconf=urlconf)).partition(_MARK)
    return before, after


class BadToken(Exception):
    """A token that was forged, altered, expired, or names no one any more."""


@dataclass(frozen=True)
class Target:
    user: object
    choice: Choice


def signed_read(token: str, *, salt: str, max_age: timedelta | None, expired: str, invalid: str):
    """What a signed link's token carries, or BadToken with `expired` or `invalid` (its age by the
    clock; max_age None: the caller judges it, as the rating link does from the ticket's resolution).
    The members' links and the status page subscribers' share it."""
    try:
        return signing.loads(token, salt=salt, max_age=max_age)
    except signing.SignatureExpired:
        raise BadToken(expired) from None
    except signing.BadSignature:
        raise BadToken(invalid) from None


def one_click_headers(url: str) -> dict:
    """List-Unsubscribe (RFC 2369) of an optional email, and List-Unsubscribe-Post where the link is
    https (RFC 8058: the one-click POST is for an https URI only)."""
    headers = {"List-Unsubscribe": f"<{url}>"}
    if url.startswith("https://"):
        headers["List-Unsubscribe-Post"] = ONE_CLICK
    return headers


def is_one_click(post) -> bool:
    """Whether a POST is a mail client's one-click unsubscribe (body `List-Unsubscribe=One-Click`)."""
    return post.get("List-Unsubscribe") == ONE_CLICK.split("=")[1]


def token_read(token: str) -> Target:
    """The person and choice a token names, or BadToken saying why (its age by the clock)."""
    data = signed_read(
        token, salt=SALT, max_age=UNSUBSCRIBE_MAX_AGE,
        expired="This link has expired. Change your email choices on your preferences page.",
        invalid="This link is not valid. Copy the whole link from the email, or sign in.",
    )  # fmt: skip
    try:
        choice = Choice(data["c"])
        user = get_user_model().objects.get(pk=int(data["u"]), is_active=True)
    except (KeyError, TypeError, ValueError, get_user_model().DoesNotExist):
        raise BadToken("This link no longer names an account of ours.") from None
    return Target(user, choice)


@transaction.atomic
def preference_set(
    *, user, choice: Choice, enabled: bool, via: str, now: datetime | None = None
) -> NotificationPreference:
    """Record a person's choice for one kind of email (the preferences page, a link, the API)."""
    now = now or timezone.now()
    pref, _ = NotificationPreference.objects.update_or_create(
        user=user, kind=str(Choice(choice)), defaults={"enabled": enabled, "updated_at": now, "via": via}
    )
    return pref


def email_to(recipient: Recipient, *, key: str, template: str, context: dict) -> Email:
    """The outbox email for one recipient the rule let through: an optional one carries the
    List-Unsubscribe header (RFC 2369), List-Unsubscribe-Post too where the link is https (RFC 8058),
    and its link in the footer; a mandatory one none."""
    user, choice = recipient.user, recipient.choice
    context = {**context, "recipient": user}
    headers = {}
    if choice is not None:
        url = unsubscribe_url(user, choice)
        headers = one_click_headers(url)
        context |= {"unsubscribe_url": url, "unsubscribe_label": choice.label}
    return Email(key=key, to=user.email, template=template, context=context, headers=headers)


def email_to_address(kind: Kind, *, key: str, to: str, template: str, context: dict) -> Email:
    """An email to an address with no account behind it yet (an invitation): only a kind no one
    can turn off goes there, and it carries no unsubscribe link."""
    if kind != Kind.ACCOUNT:
        raise ValueError(f"An email of kind {kind} goes to a person (notify_rules.recipients), not an address.")
    return Email(key=key, to=to, template=template, context=context)
