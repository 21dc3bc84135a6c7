"""A group of inbound messages taken together (the IMAP poller's fetched group; the pipe command
and a provider's webhook are a group of one): what every message of the group would otherwise
read again is read once, and the poller's group is one transaction.

    with group(raws):          # one transaction; the messages' bytes, parsed once
        for raw in raws:
            ingest(raw, ...)   # each in a savepoint of its own (tickets.inbound.service)

The poller first takes a group whole, without a savepoint a message (`group(raws, savepoints=False)`:
two statements a message less): a message that fails then raises Undone, nothing of the group can
be kept, and the poller rolls it back and takes it again with savepoints.

Read once per group: the bytes already stored (one query for the group's hashes), our own
addresses, the senders (one query for all of them), each organisation's contracts with their
support contacts and services, each SLA's published versions, the terms revision, and the
senders' recent filings (the rate limit; one query for all of them). Within the group's transaction a message sees the ones
before it (a flood is counted as it grows). Nothing read here outlives the group.

The poller's group is also a portal.core.batch: the notifications' recipients and their choices and
the webhook endpoints are read once per organisation, the tickets' search documents written once
before the commit, and the outbox's and webhooks' workers woken once after it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Prefetch
from django.db.models.functions import Lower

from contracts import terms_revision
from contracts.choices import Channel
from contracts.models import Contract, EscalationLevel, Service, SLAVersion
from contracts.selectors import in_force_of
from portal.core.batch import batch

from ..models import InboundMessage
from . import parse

_current: ContextVar[Group | None] = ContextVar("inbound_group", default=None)
COUNTED = (InboundMessage.Outcome.FILED, InboundMessage.Outcome.REPLIED)  # what the rate limit counts


def digest_of(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


class Undone(Exception):
    """A message failed in a group taken without savepoints: the group must be rolled back."""


class Group:
    def __init__(self, raws: Iterable[bytes] = (), *, savepoints: bool = True):
        self.savepoints = savepoints
        self._parsed: dict[str, tuple | None] = {}
        for raw in raws:
            if len(raw) <= settings.INBOUND_MAX_BYTES:
                try:
                    msg = parse.parse(raw)
                    self._parsed[digest_of(raw)] = (msg, parse.envelope(msg))
                except Exception:  # noqa: BLE001 - the service parses it again and holds it
                    self._parsed[digest_of(raw)] = None
        self._stored: dict[str, InboundMessage] | None = None
        self._own: set[str] | None = None
        self._people: dict[str, object] = {}
        self._contracts: dict[int, list[Contract]] = {}
        self._versions: dict[int, list] = {}
        self._recent: dict[str, tuple[datetime, dict[str, datetime]]] = {}  # sender: (since, {sha256: received_at})
        self._taken: dict[object, InboundMessage] = {}

    # --- The messages ---------------------------------------------------------------------------
    def savepoint(self):
        """Around a message's effect: its savepoint; in a group taken whole none, and a failure
        raises Undone (the service's own handling, a held row in place of the rolled-back effect,
        needs the savepoint)."""
        return transaction.atomic() if self.savepoints else _undone_on_failure()

    def parsed(self, digest: str, raw: bytes):
        """(message, envelope) of a message's bytes, parsed once (raises as parse does)."""
        found = self._parsed.get(digest)
        if found is None:
            msg = parse.parse(raw)
            found = (msg, parse.envelope(msg))
        return found

    def stored(self, digest: str) -> InboundMessage | None:
        """The message stored before with these bytes (None: none). For the group's own messages
        read at once for all, when the group begins (a twin stored since is the unique key's)."""
        if digest not in self._parsed:
            return InboundMessage.objects.filter(sha256=digest).first()
        if self._stored is None:
            rows = InboundMessage.objects.filter(sha256__in=list(self._parsed))
            self._stored = {r.sha256: r for r in rows.only("pk", "sha256", "outcome", "ticket_id", "reason")}
        return self._stored.get(digest)

    # --- Who -----------------------------------------------------------------------------------
    def own_addresses(self) -> set[str]:
        """Addresses that are ours: mail from them is never answered (a loop)."""
        if self._own is None:
            ours = {settings.SUPPORT_QUEUE_EMAIL, settings.SECURITY_CONTACT_EMAIL, settings.DEFAULT_FROM_EMAIL}
            levels = EscalationLevel.objects.filter(channel=Channel.EMAIL).exclude(contact="")
            self._own = set(parse.addresses(ours | set(levels.values_list("contact", flat=True))))
        return self._own

    def person(self, address: str):
        """The user with this address (any case), with their organisation; None if there is none.
        The first look-up reads every sender of the group's messages."""
        key = address.lower()
        if key not in self._people:
            wanted = {key} | {found[1].sender for found in self._parsed.values() if found and found[1].sender}
            wanted -= set(self._people)
            users = get_user_model().objects.annotate(lower_email=Lower("email")).filter(lower_email__in=wanted)
            for user in users.select_related("organisation").order_by("pk"):
                self._people.setdefault(user.lower_email, user)
            for k in wanted:
                self._people.setdefault(k, None)
        return self._people[key]

    # --- Where -----------------------------------------------------------------------------------
    def contracts(self, organisation_id: int) -> list[Contract]:
        """The organisation's contracts by reference, with their support contacts and services (by
        name) read with them: contracts.people.support and the filing check read those."""
        if organisation_id not in self._contracts:
            self._contracts[organisation_id] = list(
                Contract.objects.filter(organisation_id=organisation_id)
                .order_by("reference")
                .prefetch_related(
                    Prefetch("support_contacts", queryset=get_user_model().objects.only("pk")),
                    "contacts",  # the designated contacts: who the receipt's rule lets through
                    Prefetch("services", queryset=Service.objects.order_by("name")),
                )
            )
        return self._contracts[organisation_id]

    def version_in_force(self, sla_id: int, at: datetime):
        """contracts.selectors.version_in_force, from one read of the SLA's published versions."""
        if sla_id not in self._versions:
            published = SLAVersion.objects.filter(sla_id=sla_id, published_at__isnull=False)
            self._versions[sla_id] = list(published.order_by("effective_from", "number"))
        return in_force_of(self._versions[sla_id], at)

    # --- How many ----------------------------------------------------------------------------------
    def recent(self, sender: str, at: datetime, window: timedelta) -> int:
        """How many messages of `sender` filed a ticket or a reply in the `window` before `at`
        (read once per group: the first look-up reads every sender of the group's messages not read
        yet; then counted as the group files more). A message received earlier than the window read
        reads its sender again; the group's own filings, held in the batch until its commit where
        that read does not see them, are counted with it."""
        since, times = self._recent.get(sender, (None, None))
        if since is None or at - window < since:
            wanted = {sender} | {found[1].sender for found in self._parsed.values() if found and found[1].sender}
            wanted -= {s for s in self._recent if s != sender}
            rows = InboundMessage.objects.filter(sender__in=wanted, outcome__in=COUNTED, received_at__gt=at - window)
            for s in wanted:
                self._recent[s] = (at - window, {})
            for digest, s, t in rows.values_list("sha256", "sender", "received_at"):
                self._recent[s][1][digest] = t
            for row in self._taken.values():  # by the bytes' hash: one inserted already is not counted twice
                if row.outcome in COUNTED and row.sender in wanted:
                    self._recent[row.sender][1][row.sha256] = row.received_at
            times = self._recent[sender][1]
        return sum(1 for t in times.values() if t > at - window)

    def counted(self, row: InboundMessage) -> None:
        """A message of the group stored, once its savepoint is released: its twins later in the
        group are duplicates, and it counts for the rate limit if it filed or replied."""
        self._taken[row.sha256] = row
        if row.message_id:
            self._taken[(row.sender, row.message_id)] = row
        if row.outcome in COUNTED and row.sender in self._recent:
            self._recent[row.sender][1][row.sha256] = row.received_at

    def taken(self, digest: str, env) -> InboundMessage | None:
        """The message of this group stored before with these bytes, or this sender and Message-ID
        (the unique keys' question, asked before its row is inserted with the group's)."""
        found = self._taken.get(digest)
        if found is None and env is not None and env.message_id:
            found = self._taken.get((env.sender, env.message_id))
        return found


@contextmanager
def _undone_on_failure() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        raise Undone(f"{type(exc).__name__}: {exc}") from exc


def current() -> Group | None:
    return _current.get()


@contextmanager
def group(raws: Iterable[bytes] = (), *, savepoints: bool = True) -> Iterator[Group]:
    """The messages ingested inside it share one transaction (each in a savepoint, unless
    `savepoints` is False: see Undone) and one read of what they have in common. A failure of the
    transaction itself rolls every message back."""
    g = Group(raws, savepoints=savepoints)
    token = _current.set(g)
    try:
        # Durable: its commit is the group's (the poller moves its messages only after it).
        with terms_revision.held(), transaction.atomic(durable=True), batch():
            yield g
    finally:
        _current.reset(token)


@contextmanager
def one() -> Iterator[Group]:
    """A group of one message outside any group (the pipe, the webhook): the same reads, no
    transaction of its own (the service makes the message's)."""
    g = _current.get()
    if g is not None:
        yield g
        return
    g = Group()
    token = _current.set(g)
    try:
        with terms_revision.held():
            yield g
    finally:
        _current.reset(token)
