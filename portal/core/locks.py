"""Locks that last until the transaction ends, for writers that touch no common row.

On PostgreSQL, an advisory lock per key (`pg_advisory_xact_lock`), taken in sorted order so two
writers sharing two keys cannot wait on each other. SQLite's transactions take the write lock as
they begin (portal/settings.py): writers are one after the other already, and nothing is taken."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import DEFAULT_DB_ALIAS, connections


def transaction_lock(keys: Iterable[str], *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Wait for, then hold until the current transaction ends, a lock on each of `keys`."""
    connection = connections[using]
    if connection.vendor != "postgresql" or not connection.in_atomic_block:
        return
    with connection.cursor() as cursor:
        for key in sorted(set(keys)):
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [key])
