"""Limits of the public forms that need no login (the security report, the status page's
subscription): how a mailbox and a submitter are counted, and when the next use is allowed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.utils.crypto import salted_hmac

from portal.core.locks import transaction_lock


def address_key(email: str) -> str:
    """One mailbox, however it is spelt: lower case, without a +tag (eve+1@x is eve@x)."""
    local, _, domain = email.strip().lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


def source_key(source: str | None, *, purpose: str) -> str:
    """A submitter's IP address as a limit counts it: a keyed hash, never the address itself."""
    if not source:
        return ""
    return salted_hmac(purpose, source, algorithm="sha256").hexdigest()[:32]


@dataclass(frozen=True)
class Exceeded:
    """A limit reached: `limit` uses by `whom` in `window`; the next is allowed after `retry_after`."""

    limit: int
    window: timedelta
    whom: str
    retry_after: timedelta


def exceeded(uses: QuerySet, *, at: str, limits, now: datetime) -> Exceeded | None:
    """The first limit a new use would pass, or None. `uses`: the rows of earlier uses, `at` their
    time field; `limits`: (field, value, (limit, window), whom) each, a limit on the uses with that
    value of that field (an empty value is not counted). Called in the transaction that records the
    use: two uses counting the same value count one after the other (_counted_alone)."""
    _counted_alone(uses, limits)
    for field, value, (limit, window), whom in limits:
        if not value:
            continue
        recent = uses.filter(**{field: value, f"{at}__gt": now - window}).order_by(f"-{at}")
        times = list(recent.values_list(at, flat=True)[:limit])
        if len(times) >= limit:
            return Exceeded(limit, window, whom, times[-1] + window - now)
    return None


def _counted_alone(uses: QuerySet, limits) -> None:
    """A lock on each counted value until the transaction ends: two submissions from one mailbox at
    once counted the same earlier uses and both passed the last allowed one. Now the second waits
    for the first's row."""
    transaction_lock(
        (f"{uses.model._meta.label}:{field}:{value}" for field, value, _, _ in limits if value), using=uses.db
    )
