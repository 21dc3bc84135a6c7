"""System checks of the portal's own configuration, registered by portal.site.apps."""

from __future__ import annotations

from datetime import timedelta

from django.core.checks import Error, Tags, Warning, register
from django.utils import timezone

from portal.core.dkim_signing import dkim_header, signing_key
from portal.site.security_views import expires_at

SECURITY_TXT_WARN = timedelta(days=30)
SECURITY_TXT_MAX_AHEAD = timedelta(days=366)  # RFC 9116: less than a year ahead (and a leap day)
HINT = "Set SECURITY_TXT_EXPIRES to a date-time under a year ahead, e.g. 2027-06-30T00:00:00Z, and deploy."


@register(Tags.security)
def security_txt_expires(app_configs=None, **kwargs):
    """/.well-known/security.txt's Expires (settings.SECURITY_TXT_EXPIRES): an error once it has
    passed (RFC 9116: an expired file is to be treated as stale) or when it is not a date-time, a
    warning within 30 days of it, or when it is more than a year ahead."""
    expires = expires_at()
    if expires is None:
        return [
            Error("SECURITY_TXT_EXPIRES is not an ISO 8601 date-time with its offset.", hint=HINT, id="portal.E001")
        ]
    now = timezone.now()
    when = f"{expires:%Y-%m-%dT%H:%M:%SZ}"
    if expires <= now:
        return [Error(f"security.txt expired at {when} (SECURITY_TXT_EXPIRES).", hint=HINT, id="portal.E002")]
    if expires - now <= SECURITY_TXT_WARN:
        return [
            Warning(
                f"security.txt expires at {when}, in {(expires - now).days} days (SECURITY_TXT_EXPIRES).",
                hint=HINT,
                id="portal.W001",
            )
        ]
    if expires - now > SECURITY_TXT_MAX_AHEAD:
        return [
            Warning(
                f"security.txt expires at {when}, more than a year ahead (SECURITY_TXT_EXPIRES); RFC 9116 asks for "
                "less, so that a stale file is noticed.",
                hint=HINT,
                id="portal.W002",
            )
        ]
    return []


@register(Tags.security)
def dkim_key_usable(app_configs=None, **kwargs):
    """A configured DKIM key (DKIM_PRIVATE_KEY or DKIM_PRIVATE_KEY_FILE) that cannot be read or
    cannot sign is an error now, not a failure of every email later."""
    try:
        key = signing_key()
        if key is not None:
            dkim_header(b"From: check@example.invalid\r\nSubject: check\r\n\r\ncheck\r\n", key)
    except Exception as exc:  # noqa: BLE001 - any reason the key is unusable is reported
        return [
            Error(
                f"The DKIM key cannot sign: {type(exc).__name__}: {exc}",
                hint="Set DKIM_PRIVATE_KEY (PEM text) or DKIM_PRIVATE_KEY_FILE (a readable PEM file), or neither.",
                id="portal.E191",
            )
        ]
    return []


@register(Tags.database, deploy=True)
def no_invalid_indexes(app_configs=None, databases=None, **kwargs):
    """`check --deploy --database default`: an index an interrupted CREATE INDEX CONCURRENTLY left
    INVALID (PostgreSQL keeps it up to date on writes, never reads it). The migrations that build
    indexes concurrently build such an index again when run (portal.core.indexes); one found here was
    left by something else, or by a migration recorded done before that."""
    from django.db import connections

    from portal.core.indexes import invalid_indexes

    return [
        Warning(
            f"The index {name} of the {alias!r} database is INVALID: an interrupted build left it, and "
            "PostgreSQL does not use it.",
            hint=f"Build it again: REINDEX INDEX CONCURRENTLY {name};",
            id="portal.W003",
        )
        for alias in databases or ()
        for name in invalid_indexes(connections[alias])
    ]
