"""An incident's emails as one conversation per recipient, answerable by email.

- **Threading**: the email of update n to a person has the Message-ID
  `<incident-<id>.<n>.<user id>@<MESSAGE_ID_DOMAIN>>`, fixed in advance, so update n answers update 1
  (In-Reply-To) and References every earlier one: mail clients show one thread per incident.
- **Reply address**: `Reply-To: support+i<id>.<token>@<support domain>` in the one scheme of
  portal.core.reply_address, the token binding the incident and the recipient; tickets.inbound
  reads it back (`incident_of_address`) and files the reply as a ticket linked to the incident.
"""

from __future__ import annotations

from django.conf import settings

from portal.core import reply_address

SALT = "contracts.incidents.mail.reply_address"
TAG = "i"


def _value(incident_id: int, recipient: str) -> str:
    return f"{incident_id}:{recipient.strip().lower()}"


def _domain() -> str:
    return settings.MESSAGE_ID_DOMAIN or "localhost"


def message_id(incident_id: int, number: int, user_id: int | str) -> str:
    """`user_id`: a person's id, or s<id> for a status page subscriber (contracts.subscribers)."""
    return f"<incident-{incident_id}.{number}.{user_id}@{_domain()}>"


def reply_address_for(incident_id: int, recipient: str) -> str:
    return reply_address.make(
        mailbox=settings.SUPPORT_QUEUE_EMAIL, tag=TAG, number=incident_id, salt=SALT,
        value=_value(incident_id, recipient),
    )  # fmt: skip


def headers(incident_id: int, number: int, user_id: int, recipient: str) -> dict:
    """Reply-To, and for a later update In-Reply-To (update 1) and References (every earlier one)."""
    out = {"Reply-To": reply_address_for(incident_id, recipient)}
    if number > 1:
        earlier = [message_id(incident_id, n, user_id) for n in range(1, number)]
        out |= {"In-Reply-To": earlier[0], "References": " ".join(earlier)}
    return out


def incident_of_address(address: str, sender: str) -> int | None:
    """The incident a reply address names, when its token is ours for this sender; else None."""
    parsed = reply_address.parse(address)
    if parsed is None or parsed.tag != TAG:
        return None
    return parsed.number if reply_address.verify(parsed, salt=SALT, value=_value(parsed.number, sender)) else None


def incident_of_message_ids(ids: list[str]) -> int | None:
    """The incident whose email one of these Message-IDs (In-Reply-To, References) is, else None."""
    prefix, suffix = "<incident-", f"@{_domain()}>"
    for mid in ids:
        if mid.startswith(prefix) and mid.endswith(suffix):
            head = mid[len(prefix) : -len(suffix)].split(".")
            if len(head) == 3 and all(p.isdigit() for p in head):
                return int(head[0])
    return None
