"""The revision of SLA terms and working calendars: a token in one row, replaced (in the change's
own transaction) whenever a version, its priorities, escalation levels or dwells, an SLA, or a
working calendar with its hours and closed dates is saved or deleted: what tickets.terms_cache
keeps (credit tiers are not among them).

Readers keep compiled terms for as long as the token they read holds (tickets.terms_cache): reading it
is one indexed row, against the six queries that load a version's terms (what that saves a page:
bench/RESULTS.md, session 6). Saves and deletes bump it through signals (connected in
contracts.apps); code that writes these models in bulk (bulk_create, QuerySet.update) calls `bump()`
itself, and so does contracts.calendars after an edit. A token is a fresh UUID, never a counter,
so a rolled-back change can never leave a process holding terms under a token that comes back.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import connection
from django.db.models import UUIDField
from django.db.models.expressions import RawSQL
from django.utils import timezone

from .models import (
    SLA,
    ClosedDate,
    EscalationDwell,
    EscalationLevel,
    PriorityTerm,
    SLAVersion,
    TermsRevision,
    WorkingCalendar,
    WorkingHours,
)

WATCHED = (SLA, SLAVersion, PriorityTerm, EscalationLevel, EscalationDwell, WorkingCalendar, WorkingHours, ClosedDate)


TOKEN_SQL = f"SELECT token FROM {TermsRevision._meta.db_table} WHERE id = 1"  # noqa: S608 - a constant


# Inside held(): the token as first read there (a list of one), or an empty list before that read.
_held: ContextVar[list | None] = ContextVar("terms_revision_held", default=None)


@contextmanager
def held() -> Iterator[None]:
    """Within it, the token is read once (one unit of work that builds several TermsCaches, e.g. a
    group of inbound messages); a bump() within it is read again."""
    token = _held.set([])
    try:
        yield
    finally:
        _held.reset(token)


def bump() -> None:
    """A new token: every process reloads terms on its next read."""
    if (kept := _held.get()) is not None:
        kept.clear()
    if not TermsRevision.objects.filter(pk=1).update(token=uuid.uuid4()):
        TermsRevision.objects.update_or_create(pk=1, defaults={"token": uuid.uuid4()})


def current() -> str | None:
    """The token now, or None when there is none yet (then nothing may be kept across reads)."""
    kept = _held.get()
    if kept:
        return kept[0]
    with connection.cursor() as cursor:
        cursor.execute(TOKEN_SQL)
        row = cursor.fetchone()
    token = str(uuid.UUID(str(row[0]))) if row else None  # one spelling on every backend, as column() reads
    if kept is not None:
        kept.append(token)
    return token


def column() -> RawSQL:
    """The token as a column of another query (`.annotate(terms_revision=column())`): read in the
    same statement, and so the same snapshot, as the rows it goes with; pass it to TermsCache."""
    return RawSQL(TOKEN_SQL, (), UUIDField())


def on_change(sender, instance, **kwargs) -> None:
    if kwargs.get("raw"):
        return  # loaddata: the fixture's rows, no side effects
    if sender in (WorkingHours, ClosedDate):
        # Compiled clocks are kept per (calendar, updated_at) (contracts.calendars): a calendar's
        # hours or closed dates changing is the calendar changing.
        WorkingCalendar.objects.filter(pk=instance.calendar_id).update(updated_at=timezone.now())
    bump()


def connect() -> None:
    from django.db.models.signals import post_delete, post_save

    for model in WATCHED:
        post_save.connect(on_change, sender=model, dispatch_uid=f"terms-revision-save-{model.__name__}")
        post_delete.connect(on_change, sender=model, dispatch_uid=f"terms-revision-delete-{model.__name__}")
