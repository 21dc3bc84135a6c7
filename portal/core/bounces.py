"""Bounces: the return path (VERP) every email goes out with, and the recogniser of what comes back.

- `verp_address(pk)`: the envelope sender of an outbox row, BOUNCE_ADDRESS with the row's id and
  an HMAC of it after a "+" (`bounces+1f.3a9c0e1b7d42@vendor.example`), lower case (MTAs may fold
  a local part's case). A bounce is sent to the return path, so the address it comes back to names
  the email, whatever the reporting MTA writes (or fails to write) about it.
- `bounce_read(message, recipients=...)`: what a message that reached us says as a bounce, or
  None when it is not one. A DSN (RFC 3464 multipart/report; report-type=delivery-status) gives
  its per-recipient Action, Status and Diagnostic-Code; the common non-standard bounces (qmail,
  old Exim, Exchange's text) are known by a mailer-daemon or postmaster sender, a null return
  path, or their subject, and read for a status code in their text. The outbox row is found by
  the VERP token (in the envelope recipients the caller passes, else in Delivered-To,
  X-Original-To, Envelope-To or To), else by the Message-ID of the returned message (a DSN's
  message/rfc822 or text/rfc822-headers part, or one of ours quoted in the text).
- `bounce_receive(message=..., recipients=..., now=...)`: reads and, for a failure, marks the row
  (bounced_at, its status) and the address it was sent to (BouncedAddress) for staff. An email
  ingest calls it first: a message it recognises (a failure, a delay, or anything else sent to the
  bounce address, such as an out-of-office, which RFC 3834 sends to the return path) is taken and
  never filed as a customer's message.

Only a row found by its signed token or its Message-ID is marked: a forged bounce cannot mark an
address we did not email.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from email.utils import getaddresses, parseaddr

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from portal.models import BouncedAddress, OutboxMessage

SALT = "portal.bounces.verp"
MAC_LENGTH = 12  # hex digits: 48 bits, unguessable for a token that only marks an email as bounced
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
TOKEN = re.compile(rf"([0-9a-z]{{1,13}})\.([0-9a-f]{{{MAC_LENGTH}}})")  # base-36 id, HMAC
# The headers where an MTA or a mailbox leaves the envelope recipient.
ENVELOPE_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "X-Original-Recipient", "To")
BOUNCE_SENDERS = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon)@", re.I)
BOUNCE_SUBJECTS = re.compile(
    r"undeliver|delivery (status notification|failure|has failed)|failure notice|returned mail|"
    r"mail delivery (failed|failure|system)|non[- ]?delivery|could not be delivered|delivery problem",
    re.I,
)
ENHANCED_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
SMTP_REPLY = re.compile(r"(?<![\d.])([45])(\d\d)[ -]")
DELAYED_WORDS = re.compile(r"delayed|will (be )?retr|temporar|not yet been delivered|still trying", re.I)


class Outcome:
    FAILED = "failed"  # the email could not be delivered: the row and address are marked
    DELAYED = "delayed"  # an MTA is still trying (Action: delayed, a 4.x.x status): nothing is marked
    OTHER = "other"  # sent to the bounce address but no failure report (an out-of-office, a relay's note)


@dataclass(frozen=True)
class Bounce:
    outcome: str
    row: OutboxMessage | None  # the email it is about, when found
    address: str  # the address it bounced from (the row's, else the report's final recipient)
    status: str = ""  # the enhanced status code (RFC 3463), e.g. 5.1.1
    detail: str = ""  # the diagnostic, one line


# --- The return path ------------------------------------------------------------------------------
def _base36(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _DIGITS[r] + out
        if not n:
            return out


def _mac(pk: int) -> str:
    return salted_hmac(SALT, str(pk)).hexdigest()[:MAC_LENGTH]


def _bounce_parts() -> tuple[str, str]:
    local, _, domain = settings.BOUNCE_ADDRESS.strip().rpartition("@")
    return local.lower(), domain.lower()


def verp_address(pk: int) -> str:
    """The return path of outbox row `pk`."""
    local, domain = _bounce_parts()
    return f"{local}+{_base36(pk)}.{_mac(pk)}@{domain}"


def verp_read(address: str) -> int | None:
    """The outbox row an address of ours names, if it is a return path whose token is genuine."""
    local_part, _, domain = (address or "").strip().strip("<>").lower().rpartition("@")
    base, plus, token = local_part.partition("+")
    if not plus or (base, domain) != _bounce_parts():
        return None
    match = TOKEN.fullmatch(token)
    if match is None:
        return None
    pk = int(match[1], 36)
    return pk if constant_time_compare(match[2], _mac(pk)) else None


def is_bounce_address(address: str) -> bool:
    """Whether an address is our bounce address or one of its plus-addresses (genuine or not)."""
    local_part, _, domain = (address or "").strip().strip("<>").lower().rpartition("@")
    return (local_part.partition("+")[0], domain) == _bounce_parts()


# --- Reading a message ------------------------------------------------------------------------------
def _recipients(message: Message, given) -> list[str]:
    found = [a for a in given if a]
    for name in ENVELOPE_HEADERS:
        found += [addr for _, addr in getaddresses([str(v) for v in message.get_all(name, [])]) if addr]
    return found


def _dsn_blocks(message: Message) -> list[Message] | None:
    """The per-recipient blocks of a DSN (RFC 3464), or None when the message is not one."""
    if message.get_content_type() != "multipart/report":
        return None
    if (message.get_param("report-type") or "").lower() != "delivery-status":
        return None
    for part in message.walk():
        if part.get_content_type() == "message/delivery-status":
            payload = part.get_payload()
            if isinstance(payload, list):  # the per-message block first, then one per recipient
                return [b for b in payload[1:] if b.get("Action") or b.get("Final-Recipient")]
            return []
    return []


def _returned_message_id(message: Message) -> str | None:
    """The Message-ID of our email a bounce returns: in its returned message or headers, or quoted."""
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822" and isinstance(part.get_payload(), list) and part.get_payload():
            found = part.get_payload()[0].get("Message-ID")
            if found:
                return str(found).strip()
        if kind == "text/rfc822-headers":
            text = part.get_payload(decode=True) or b""
            found = re.search(rb"^Message-ID:\s*(<[^>\s]+>)", text, re.I | re.M)
            if found:
                return found[1].decode("ascii", "replace")
    ours = re.compile(rf"<[0-9a-f]{{32}}@{re.escape(settings.MESSAGE_ID_DOMAIN)}>", re.I)
    found = ours.search(_text(message))
    return found[0] if found else None


def _text(message: Message, limit: int = 200_000) -> str:
    """The text parts of a message, decoded, up to `limit` characters (a bounce is small)."""
    out = []
    for part in message.walk():
        if part.get_content_maintype() == "text":
            raw = part.get_payload(decode=True) or b""
            out.append(raw.decode(part.get_content_charset() or "utf-8", "replace"))
        if sum(map(len, out)) > limit:
            break
    return "\n".join(out)[:limit]


def _one_line(text: str, limit: int = 500) -> str:
    return " ".join(str(text or "").split())[:limit]


def _address(value) -> str:
    """An address from a DSN field: `rfc822; alice@example.com`."""
    text = str(value or "")
    return parseaddr(text.split(";", 1)[-1].strip())[1].lower()


def _looks_like_bounce(message: Message) -> bool:
    sender = parseaddr(_header(message, "From"))[1]
    return_path = _header(message, "Return-Path").strip()
    return bool(
        BOUNCE_SENDERS.match(sender) or return_path == "<>" or BOUNCE_SUBJECTS.search(_header(message, "Subject"))
    )


def _header(message: Message, name: str) -> str:
    """A header's text; empty when it cannot be decoded (a UTF-7 subject with a lone surrogate)."""
    try:
        return str(message.get(name, ""))
    except Exception:  # noqa: BLE001 - unreadable: not a sign of a bounce
        return ""


def _status_of_text(text: str) -> tuple[str, str]:
    """(status, outcome) read from a non-standard bounce's text."""
    enhanced = ENHANCED_STATUS.search(text)
    if enhanced:
        status = enhanced.group(0)
    else:
        reply = SMTP_REPLY.search(text)
        status = f"{reply[1]}.0.0" if reply else ""
    if status.startswith("4") or (not status and DELAYED_WORDS.search(text)):
        return status, Outcome.DELAYED
    return status or "5.0.0", Outcome.FAILED


def _find_row(message: Message, recipients) -> OutboxMessage | None:
    for address in recipients:
        pk = verp_read(address)
        if pk is not None:
            return OutboxMessage.objects.filter(pk=pk).first()
    message_id = _returned_message_id(message)
    if message_id:
        return OutboxMessage.objects.filter(message_id=message_id).first()
    return None


def bounce_read(message: Message, *, recipients=()) -> Bounce | None:
    """What `message` says as a bounce (see the module's doc), or None: not one, file it as usual.
    `recipients`: the envelope recipients when the caller knows them (an MTA's pipe)."""
    to = _recipients(message, recipients)
    blocks = _dsn_blocks(message)
    ours = any(is_bounce_address(a) for a in to)
    if blocks is None and not ours and not _looks_like_bounce(message):
        return None
    if blocks is None and not ours and _returned_message_id(message) is None:
        return None  # a "mail delivery failed" note about no email of ours: a person's to read
    row = _find_row(message, to)
    if blocks is not None:
        failed = [b for b in blocks if str(b.get("Action", "")).strip().lower() == "failed"]
        block = (failed or blocks or [None])[0]
        status = _one_line(block.get("Status", ""), 20) if block is not None else ""
        detail = _one_line(block.get("Diagnostic-Code", "")) if block is not None else ""
        address = row.to if row is not None else (_address(block.get("Final-Recipient")) if block else "")
        delayed = any(str(b.get("Action", "")).strip().lower() == "delayed" for b in blocks)
        outcome = Outcome.FAILED if failed else Outcome.DELAYED if delayed else Outcome.OTHER
        return Bounce(outcome, row, address, status, detail)
    if not _looks_like_bounce(message) or str(message.get("Auto-Submitted", "")).lower().startswith("auto-replied"):
        return Bounce(Outcome.OTHER, row, row.to if row is not None else "")
    text = _text(message)
    status, outcome = _status_of_text(text)
    detail = _one_line(next((line for line in text.splitlines() if ENHANCED_STATUS.search(line)), ""))
    return Bounce(outcome, row, row.to if row is not None else "", status, detail or _one_line(message.get("Subject")))


def bounce_receive(*, message: Message, recipients=(), now: datetime | None = None) -> Bounce | None:
    """Read `message` as a bounce and, for a failure of an email of ours, mark its row and address.
    Safe to call twice with one bounce: a row is counted once on its address. Every inbound message
    is read here: only a failure opens a transaction (a savepoint less for all the others)."""
    bounce = bounce_read(message, recipients=recipients)
    if bounce is None or bounce.outcome != Outcome.FAILED or bounce.row is None:
        return bounce
    return _mark_failed(bounce, now or timezone.now())


@transaction.atomic
def _mark_failed(bounce: Bounce, now: datetime) -> Bounce:
    first = OutboxMessage.objects.filter(pk=bounce.row.pk, bounced_at__isnull=True).update(
        bounced_at=now, bounce_status=bounce.status, bounce_detail=bounce.detail
    )
    address = bounce.row.to.lower()
    entry, created = BouncedAddress.objects.select_for_update().get_or_create(
        address=address, defaults={"first_bounced_at": now, "last_bounced_at": now}
    )
    entry.last_bounced_at = max(entry.last_bounced_at, now)
    entry.bounces += 1 if first or created else 0
    entry.last_status, entry.last_detail, entry.last_message_id = bounce.status, bounce.detail, bounce.row.pk
    entry.save()
    return bounce
