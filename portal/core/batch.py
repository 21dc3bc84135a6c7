"""A batch: many changes made in one transaction, each in a savepoint of its own (the inbound
poller's fetched group, tickets.inbound.group). Inside one, what every change would read again is
read once, what every change would write again to the same rows is written once before the commit,
and what every change would hand to a worker after the commit is handed over once.

    with transaction.atomic(), batch():
        for change in changes:
            with change(), transaction.atomic():   # a savepoint each
                ...            # shared(), insert_later(), before_commit(), after_commit() below

New rows no later change of the batch reads may be inserted with the batch's others: insert_later()
gathers them and inserts each kind in one multi-row statement before the commit. A failure of that
insert (a unique key taken by a concurrent writer meanwhile) fails the batch's transaction: its
caller takes the changes one by one, outside a batch (tickets.mailbox_poll).

Outside a batch each call does what it would have done alone (shared() returns None; the others
return False and the caller does its work now). Only what the batch's changes never write may be
shared: people, their choices, contracts' contacts, webhook endpoints. A change made inside
change() (around its savepoint) that fails leaves nothing behind; one made outside it may leave
items for before_commit and after_commit, whose work must then be a no-op for rows that do not
exist (a document of a ticket that was not filed, a key never written).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import transaction

_current: ContextVar[Batch | None] = ContextVar("portal_batch", default=None)


class Batch:
    def __init__(self):
        self.shared: dict[str, Any] = {}
        self.before: dict[Callable, list] = {}
        self.after: dict[Callable, list] = {}
        self.inserts: dict[Callable, list] = {}

    def run_before(self) -> None:
        for insert, rows in self.inserts.items():
            insert(rows)
        self.inserts = {}
        while self.before:
            work, items = self.before.popitem()
            work(list(dict.fromkeys(items)))

    def run_after(self) -> None:
        for work, items in self.after.items():
            work(list(dict.fromkeys(items)))


def shared(name: str, make: Callable[[], Any]) -> Any:
    """The batch's one `name` object (made by `make` at the first call); None outside a batch."""
    b = _current.get()
    if b is None:
        return None
    if name not in b.shared:
        b.shared[name] = make()
    return b.shared[name]


def before_commit(work: Callable[[list], None], items: Iterable) -> bool:
    """Have `work(items)` run once, with every change's items, at the batch's end inside its
    transaction. False outside a batch: the caller does its work now."""
    b = _current.get()
    if b is None:
        return False
    b.before.setdefault(work, []).extend(items)
    return True


def after_commit(work: Callable[[list], None], items: Iterable) -> bool:
    """Have `work(items)` run once, with every change's items, after the batch's transaction has
    committed (never if it rolls back). False outside a batch: the caller registers its own."""
    b = _current.get()
    if b is None:
        return False
    b.after.setdefault(work, []).extend(items)
    return True


def insert_later(insert: Callable[[list], Any], rows: list) -> bool:
    """Have `insert(rows)` insert these new rows with every change's, once, before the batch's
    other work at its end (Model.objects.bulk_create, or a writer's own multi-row insert). For rows
    that nothing in the batch reads back, and whose ids nothing needs before the commit. False
    outside a batch: the caller inserts them now."""
    b = _current.get()
    if b is None:
        return False
    b.inserts.setdefault(insert, []).extend(rows)
    return True


def save_new(row) -> None:
    """A new model row: inserted with the batch's others of its model (insert_later), or now,
    outside a batch."""
    if not insert_later(type(row)._default_manager.bulk_create, [row]):
        row.save()


@contextmanager
def change() -> Iterator[None]:
    """One change of the batch (enter it around the change's savepoint): if it fails, the rows,
    items and work it handed to the batch are dropped with its savepoint."""
    b = _current.get()
    if b is None:
        yield
        return
    marks = [{work: len(items) for work, items in kept.items()} for kept in (b.inserts, b.before, b.after)]
    try:
        yield
    except BaseException:
        for kept, mark in zip((b.inserts, b.before, b.after), marks, strict=True):
            for work, items in kept.items():
                del items[mark.get(work, 0) :]
        raise


@contextmanager
def batch() -> Iterator[Batch]:
    """Enter it inside the transaction, outside the changes' savepoints."""
    b = Batch()
    transaction.on_commit(b.run_after)  # the transaction's, not a savepoint's: kept if a change fails
    token = _current.set(b)
    try:
        yield b
        b.run_before()
    finally:
        _current.reset(token)
