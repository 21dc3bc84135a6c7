"""API tokens (django-rest-knox): stored as a digest, shown once, recognised by their prefix.

A token acts as a customer. Staff hold none: `token_create` refuses them and the API refuses a
staff member's token if one exists all the same (a customer made staff later, a row written by
hand). Creation and revocation are audited with the token's prefix (its lookup key, the first 15
characters), never the secret."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from knox.auth import TokenAuthentication
from knox.models import AuthToken
from rest_framework import exceptions

from portal.core.audit import audit


class TokenRefused(Exception):
    pass


def holds_no_tokens(user) -> bool:
    """Staff (and superusers) work in the admin with a second factor; a bearer token would skip it."""
    return bool(user.is_staff or user.is_superuser)


def tokens_of(user):
    return AuthToken.objects.filter(user=user).order_by("-created")


def _unexpired(now: datetime) -> Q:
    return Q(expiry__isnull=True) | Q(expiry__gt=now)


def tokens_forget_expired(*, now: datetime) -> int:
    """Delete every expired token (the daily housekeeping, portal.core.housekeeping): knox deletes
    one only when it is presented again, and one never presented would stay for good. Returns how
    many. Not audited: nobody revoked them, they ran out (their creation says when)."""
    deleted, _ = AuthToken.objects.exclude(_unexpired(now)).delete()
    return deleted


@transaction.atomic
def token_create(*, user, ttl: timedelta | None) -> tuple[AuthToken, str]:
    """A new token for `user`, expiring after `ttl` (None: never). Returns the row and the secret,
    which is stored nowhere: the caller shows it once."""
    if holds_no_tokens(user):
        raise TokenRefused("Staff accounts cannot hold API tokens: staff work in the admin, with a second factor.")
    # Only the tokens that still work count: five expired ones (not yet removed by the daily
    # housekeeping) do not keep their owner from making a new one.
    if tokens_of(user).filter(_unexpired(timezone.now())).count() >= settings.API_TOKENS_PER_USER:
        raise TokenRefused(
            f"You already have {settings.API_TOKENS_PER_USER} API tokens: revoke one before you create another."
        )
    token, secret = AuthToken.objects.create(user=user, expiry=ttl, prefix=settings.API_TOKEN_PREFIX)
    audit(
        actor=user,
        action="token.created",
        target=user,
        after={"prefix": token.token_key, "expiry": token.expiry or "never"},
    )
    return token, secret


@transaction.atomic
def token_revoke(*, actor, tokens, reason: str = "") -> int:
    """Deletes `tokens` (a queryset or list of AuthToken), one audit entry each, on the owner (with
    `reason` when they went with a change of the person: a move, a password reset). Requests that
    use them are refused from then on."""
    count = 0
    for token in list(tokens):
        owner = token.user
        prefix = token.token_key
        token.delete()
        audit(
            actor=actor,
            action="token.revoked",
            target=owner,
            after={
                "prefix": prefix,
                "by_staff": getattr(actor, "pk", None) != owner.pk,
                **({"reason": reason} if reason else {}),
            },
        )
        count += 1
    return count


class CustomerTokenAuthentication(TokenAuthentication):
    """knox's `Authorization: Token <token>`, refused for staff."""

    def _cleanup_token(self, auth_token) -> bool:
        # knox also reads every other token of the user on each request, to delete the expired
        # ones: a query per request for rows that fail anyway. Only this token is judged here (an
        # expired one is deleted when it is next presented; the Account page shows it as expired).
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            auth_token.delete()
            return True
        return False

    def validate_user(self, auth_token):
        user, token = super().validate_user(auth_token)
        if holds_no_tokens(user):
            raise exceptions.AuthenticationFailed("Staff accounts cannot use API tokens.")
        return user, token


class CustomerTokenScheme(OpenApiAuthenticationExtension):
    """The schema names the scheme `tokenAuth`, as it did with DRF's TokenAuthentication."""

    target_class = CustomerTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        scheme = build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Token")
        scheme["description"] = (
            "An API token made on the Account page, sent as `Authorization: Token <token>` "
            f"(tokens start with `{settings.API_TOKEN_PREFIX}`)."
        )
        return scheme
