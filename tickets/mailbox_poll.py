"""The inbound IMAP mailbox, polled by beat every minute (tickets.tasks.poll_mailbox): each message
is handed to the one ingest service with the time the server received it (its IMAP INTERNALDATE)
and where it lay (mailbox, UIDVALIDITY, UID), then moved to the processed folder.

A fetched group of messages is stored in one transaction (tickets.inbound.group: what they share
read once; bench/RESULTS.md, session 8), first without a savepoint a message (session 11): if a
message fails, the whole group is rolled back and taken again with a savepoint each; a message
whose savepoint failed is tried again alone once the group is committed, and a group whose commit
failed is taken one by one.

Exactly once, without a lock: a message is moved only after the transaction that stored it was
committed, so a crash in between leaves it in the inbox and the next run hands it over again; the
service's unique keys (the bytes' hash, the sender and Message-ID) answer "duplicate" and the
message is moved then. Two runs at once (a slow run overlapping the next minute's, two beats) both
hand the message over and the same keys keep one of it (the second waits on the first's unique key
until its group commits); moving an already moved message is a no-op on the server. A message the
service could not store stays in the inbox for the next run, and the run ends in an error after
moving the others, so that its heartbeat goes stale and /healthz shows the stalled mailbox.

Read with imap-tools (login, folders, UID MOVE); the fetch asks for INTERNALDATE and the raw bytes
itself, which imap-tools does not return, and never sets \\Seen (BODY.PEEK).
"""

from __future__ import annotations

import logging
import re
import ssl
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

from imap_tools import BaseMailBox, MailBox, MailBoxUnencrypted
from imap_tools.errors import MailboxFolderCreateError, MailboxMoveError

log = logging.getLogger(__name__)

SOURCE = "imap"
# Bodies are fetched in groups of at most this many bytes (a group holds one message at least).
FETCH_GROUP_BYTES = 16 * 1024 * 1024


class MailboxStalled(Exception):
    """Some messages could not be stored and stay in the inbox (the run's heartbeat stays stale)."""


@dataclass
class PollResult:
    outcomes: Counter = field(default_factory=Counter)
    moved: int = 0
    left: int = 0

    def __str__(self) -> str:
        taken = ", ".join(f"{kind} {n}" for kind, n in sorted(self.outcomes.items())) or "nothing new"
        return f"{taken}; moved {self.moved}" + (f"; left in the inbox {self.left}" if self.left else "")


@dataclass(frozen=True)
class Fetched:
    uid: int
    received_at: datetime
    raw: bytes


def connect(config: dict, *, timeout: float) -> BaseMailBox:
    """A logged-in mailbox (no folder selected). imaps:// checks the server's certificate against
    the system's CAs (imaplib alone would not); plain imap:// is for a server on a trusted network."""
    if config["SSL"]:
        mailbox = MailBox(config["HOST"], config["PORT"], timeout=timeout, ssl_context=ssl.create_default_context())
    else:
        mailbox = MailBoxUnencrypted(config["HOST"], config["PORT"], timeout=timeout)
    mailbox.login(config["USER"], config["PASSWORD"], initial_folder=None)
    # The capabilities imaplib read before login; servers announce MOVE only after it, and without
    # it imap-tools falls back to COPY + \Deleted + EXPUNGE instead of one atomic UID MOVE.
    mailbox.client.capabilities = tuple(mailbox.client.capability()[1][-1].decode().upper().split())
    return mailbox


def poll(*, config: dict, processed_folder: str, batch: int, ingest, group=None, timeout: float = 60.0) -> PollResult:
    """Read up to `batch` messages of the configured folder, oldest first; `ingest(raw, *,
    received_at, source, source_ref)` stores one and returns an outcome (tickets.ingest).
    `group(raws, savepoints=...)` (by default tickets.inbound.group.group) is a context in which a
    fetched group's messages are stored in one transaction, each in a savepoint or (savepoints=False)
    all or none: the group's messages are moved only after its commit, and one that failed is tried
    again alone. Raises MailboxStalled when a message
    could not be stored (after moving the others)."""
    if group is None:
        from .inbound.group import group
    result = PollResult()
    folder = config["FOLDER"]
    with connect(config, timeout=timeout) as mailbox:
        _ensure_folder(mailbox, processed_folder)
        mailbox.folder.set(folder)
        uidvalidity = _uidvalidity(mailbox)
        uids = sorted(int(u) for u in mailbox.uids("ALL"))[:batch]
        for fetched in _groups(mailbox, uids):
            messages = _fetch(mailbox, fetched)
            where = f"{folder}:{uidvalidity}"
            taken, failed = _take_group(messages, where, ingest, group, result)
            for message in failed:  # alone, in a transaction of its own
                try:
                    kind = _hand_over(message, where, ingest)
                except Exception:  # noqa: BLE001 - any failure leaves the message for the next run
                    log.exception("inbound mail %s:%s: not stored, left in the mailbox", where, message.uid)
                    kind = None
                if kind is None:
                    result.left += 1
                    continue
                result.outcomes[kind] += 1
                taken.append(str(message.uid))
            if taken:
                _move(mailbox, taken, processed_folder)
                result.moved += len(taken)
    if result.left:
        raise MailboxStalled(str(result))
    return result


def _hand_over(message: Fetched, where: str, ingest) -> str | None:
    """The kind of the message's outcome once stored; None when the service did not store it."""
    source_ref = f"{where}:{message.uid}"
    outcome = ingest(message.raw, received_at=message.received_at, source=SOURCE, source_ref=source_ref)
    if not _stored(outcome):
        log.warning("inbound mail %s: not stored (%s)", source_ref, outcome)
        return None
    return _kind(outcome)


def _take_group(messages: list[Fetched], where: str, ingest, group, result: PollResult):
    """The group's messages handed over in its transaction: the UIDs stored (to move, now that it
    is committed) and the messages that failed (to try alone). The group is taken whole first,
    without a savepoint a message; if a message fails, the group is rolled back and taken again
    with a savepoint each (nothing of the first try kept). If the transaction fails, every message
    is tried alone."""
    if group is None or len(messages) < 2:
        return [], messages
    try:
        try:
            return _in_one(messages, where, ingest, group, result, savepoints=False)
        except _MessageFailed as failed:
            log.info("inbound mail %s: %s in a group of %d; taken again, a savepoint a message",
                     where, failed, len(messages))  # fmt: skip
        return _in_one(messages, where, ingest, group, result, savepoints=True)
    except Exception:  # noqa: BLE001 - the group's transaction failed: each message alone
        log.exception("inbound mail %s: a group of %d was not committed; taken one by one", where, len(messages))
        return [], messages


class _MessageFailed(Exception):
    """A message raised in a group taken without savepoints (its transaction is rolled back)."""


def _in_one(messages: list[Fetched], where: str, ingest, group, result: PollResult, *, savepoints: bool):
    taken, failed, outcomes = [], [], Counter()
    with group([m.raw for m in messages], savepoints=savepoints):
        for message in messages:
            try:
                kind = _hand_over(message, where, ingest)
            except Exception as exc:  # noqa: BLE001 - its savepoint is rolled back; tried alone below
                if not savepoints:
                    raise _MessageFailed(f"message {message.uid} failed ({type(exc).__name__})") from exc
                log.warning("inbound mail %s:%s: failed in its group", where, message.uid, exc_info=True)
                kind = None
            if kind is None:
                failed.append(message)
            else:
                outcomes[kind] += 1
                taken.append(str(message.uid))
    result.outcomes.update(outcomes)
    return taken, failed


def _ensure_folder(mailbox: BaseMailBox, folder: str) -> None:
    """Create the folder unless it exists. Two pollers starting at once may both find it missing:
    the second's create fails, and the folder it wanted is there all the same."""
    if mailbox.folder.exists(folder):
        return
    try:
        mailbox.folder.create(folder)
    except MailboxFolderCreateError:
        if not mailbox.folder.exists(folder):
            raise


def _move(mailbox: BaseMailBox, uids: list[str], folder: str) -> None:
    """UID MOVE, as one command. A server may refuse the whole command when another session has
    moved some of the messages meanwhile (Dovecot: NO [EXPUNGEISSUED]): the ones still here are
    moved again; the others are where they should be."""
    try:
        mailbox.move(uids, folder)
    except MailboxMoveError:
        typ, data = mailbox.client.uid("SEARCH", "UID", ",".join(uids))
        still_here = data[0].split() if typ == "OK" and data and data[0] else []
        if still_here:
            mailbox.move([u.decode() for u in still_here], folder)


def _stored(outcome) -> bool:
    """Whether the ingest service committed the message (filed, threaded, held, duplicate, ...)."""
    return outcome.taken


def _kind(outcome) -> str:
    return str(outcome.kind)


def _uidvalidity(mailbox: BaseMailBox) -> int:
    typ, data = mailbox.client.response("UIDVALIDITY")
    if not data or data[0] is None:  # every server sends it on SELECT (RFC 3501); ask if not
        return int(mailbox.folder.status(options=["UIDVALIDITY"])["UIDVALIDITY"])
    return int(data[0])


def _groups(mailbox: BaseMailBox, uids: list[int]):
    """The UIDs in groups whose bodies add up to at most FETCH_GROUP_BYTES (sizes read first, a
    cheap FETCH), so that a run never holds a mailbox full of large attachments in memory."""
    if not uids:
        return
    typ, data = mailbox.client.uid("FETCH", _uid_set(uids), "(UID RFC822.SIZE)")
    sizes = {}
    for item in data:
        if isinstance(item, bytes) and (uid := _UID.search(item)) and (size := _SIZE.search(item)):
            sizes[int(uid.group(1))] = int(size.group(1))
    group, group_bytes = [], 0
    for uid in uids:
        if uid not in sizes:  # expunged meanwhile (another run moved it)
            continue
        if group and group_bytes + sizes[uid] > FETCH_GROUP_BYTES:
            yield group
            group, group_bytes = [], 0
        group.append(uid)
        group_bytes += sizes[uid]
    if group:
        yield group


def _fetch(mailbox: BaseMailBox, uids: list[int]) -> list[Fetched]:
    typ, data = mailbox.client.uid("FETCH", _uid_set(uids), "(UID INTERNALDATE BODY.PEEK[])")
    fetched = []
    # imaplib gives (b'1 (UID 5 INTERNALDATE "..." BODY[] {123}', b'<raw>') then b')' per message;
    # the attributes may also follow the literal, in that closing item.
    items = [i for i in data if i is not None]
    for n, item in enumerate(items):
        if not isinstance(item, tuple):
            continue
        meta = item[0] + (items[n + 1] if n + 1 < len(items) and isinstance(items[n + 1], bytes) else b"")
        uid, date = _UID.search(meta), _INTERNALDATE.search(meta)
        if uid is None or date is None:
            continue
        fetched.append(Fetched(uid=int(uid.group(1)), received_at=internaldate(date.group(1)), raw=item[1]))
    return sorted(fetched, key=lambda m: m.uid)


def _uid_set(uids: list[int]) -> str:
    return ",".join(str(u) for u in uids)


_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_INTERNALDATE = re.compile(rb'\bINTERNALDATE "([^"]+)"')
_MONTHS = {
    m: i
    for i, m in enumerate(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], start=1)
}
_DATE_TIME = re.compile(rb"^ ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$")


def internaldate(value: bytes) -> datetime:
    """An IMAP date-time (RFC 3501: ` 6-Dec-2026 09:00:00 +0100`) as an aware UTC datetime, read
    without the process's locale (strptime's month names follow it)."""
    m = _DATE_TIME.match(value)
    if m is None or m.group(2).decode().title() not in _MONTHS:
        raise ValueError(f"not an IMAP date-time: {value!r}")
    day, month, year = int(m.group(1)), _MONTHS[m.group(2).decode().title()], int(m.group(3))
    sign = 1 if m.group(7) == b"+" else -1
    offset = timedelta(hours=int(m.group(8)), minutes=int(m.group(9))) * sign
    moment = datetime(year, month, day, int(m.group(4)), int(m.group(5)), int(m.group(6)), tzinfo=timezone(offset))
    return moment.astimezone(UTC)
