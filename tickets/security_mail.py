"""A vulnerability report's email with its reporter, who is an address and no portal user.

- Every email to the reporter carries the report's **reply address**, `security+r<number>.<token>@`
  the security contact's domain (settings.SECURITY_CONTACT_EMAIL plus-addressed), in the one scheme
  of portal.core.reply_address (the token an HMAC of the report's number), so nobody can make one
  up; `report_id_of_address` reads it back.
- The emails thread: the receipt starts the thread, and each later email (a staff reply) answers
  the thread's latest message, ours or the reporter's, with In-Reply-To and References (the first
  message and the last ones). The thread is kept on the report (SecurityReport.thread), written
  under the ticket's lock.
- Subjects are fixed ("Your vulnerability report #17"): the reporter's words go into no subject,
  since the form lets anyone send a receipt to any address.
- A staff reply's files reach the reporter as links (`file_link`), signed for that report and file
  and good for FILE_LINK_DAYS: the reporter has no login, and five files of 10 MB are no email.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from email.utils import getaddresses

from django.conf import settings
from django.core import signing
from django.urls import reverse

from portal.core import reply_address as reply_address_scheme
from portal.core.outbox import Email
from portal.models import new_message_id

from .models import Attachment, SecurityReport, Ticket

REFERENCES_KEPT = 10  # the first message and the 9 latest: a header that does not grow without end
_SALT = "tickets.security_mail.reply_address"
FILE_LINK_DAYS = 30
_FILE_SALT = "tickets.security_mail.file_link"


def _contact() -> tuple[str, str]:
    local, _, domain = settings.SECURITY_CONTACT_EMAIL.rpartition("@")
    return local.lower(), domain.lower()


def reply_address(ticket_id: int) -> str:
    """The report's own reply address: security+r17.<token>@vendor.example (portal.core.reply_address)."""
    return reply_address_scheme.make(
        mailbox=settings.SECURITY_CONTACT_EMAIL, tag="r", number=ticket_id, salt=_SALT, value=str(ticket_id)
    )


def report_id_of_address(address: str) -> int | None:
    """The report a reply address names (an address as it comes: "Name <addr>" too), or None when
    it is no reply address of ours or its token is wrong."""
    parsed = reply_address_scheme.parse(address)
    if parsed is None or parsed.tag != "r" or (parsed.local, parsed.domain) != _contact():
        return None
    return parsed.number if reply_address_scheme.verify(parsed, salt=_SALT, value=str(parsed.number)) else None


def addresses(values) -> list[str]:
    """The bare addresses of header values (To, Cc, Delivered-To...): "Eve <e@x>, f@y" -> [e@x, f@y]."""
    return [addr for _, addr in getaddresses(list(values)) if addr]


def is_security_address(address: str) -> bool:
    """The security contact address or one of its plus-addresses: mail to it is security mail,
    which the inbound channel gives to the reports (tickets.security), never to general triage."""
    local, _, domain = address.strip().lower().rpartition("@")
    contact_local, contact_domain = _contact()
    return domain == contact_domain and (local == contact_local or local.startswith(contact_local + "+"))


def message_ids(value: str) -> list[str]:
    """The Message-IDs of an In-Reply-To or References header, as <...> tokens."""
    return re.findall(r"<[^<>\s]+>", value or "")


def thread_ids(report: SecurityReport) -> list[str]:
    return [m["id"] for m in report.thread if m.get("id")]


def to_reporter(report: SecurityReport, *, key: str, template: str, context: dict, now: datetime) -> Email:
    """An email to the reporter, threaded after the thread's latest message, with the report's reply
    address. Appends it to `report.thread`: the caller saves the report (under the ticket's lock)."""
    message_id = new_message_id()
    headers = {"Reply-To": reply_address(report.ticket_id)}
    earlier = thread_ids(report)
    if earlier:
        kept = earlier if len(earlier) <= REFERENCES_KEPT else [earlier[0], *earlier[-(REFERENCES_KEPT - 1) :]]
        headers.update({"In-Reply-To": earlier[-1], "References": " ".join(kept)})
    report.thread.append({"id": message_id, "at": now.isoformat()})
    return Email(
        key=f"security-report:{report.ticket_id}:reporter:{key}", to=report.reporter_email, template=template,
        context={**context, "number": f"#{report.ticket_id}"}, headers=headers, message_id=message_id,
    )  # fmt: skip


def reply_to_reporter(ticket, message, *, now: datetime) -> list[Email]:
    """A staff member's public reply on a report, emailed to its reporter (tickets.services.ticket_reply)."""
    report = SecurityReport.objects.filter(ticket_id=ticket.pk).first()
    if report is None:
        return []
    files = [{"name": a.original_name, "size": a.size, "url": file_link(a)} for a in message.attachments.all()]
    email = to_reporter(
        report, key=f"reply:{message.pk}", template="security_report_reply", now=now,
        context={"body": message.body, "author": message.author.get_short_name(), "files": files,
                 "link_days": FILE_LINK_DAYS},
    )  # fmt: skip
    report.save(update_fields=["thread"])
    return [email]


def file_link(attachment: Attachment) -> str:
    """A link to one file of a staff reply on a report, for its reporter (who has no login)."""
    token = signing.dumps([attachment.ticket_id, attachment.pk], salt=_FILE_SALT, compress=True)
    return settings.PORTAL_BASE_URL.rstrip("/") + reverse("security-report-file", args=[token])


class LinkExpired(Exception):
    pass


def linked_file(token: str) -> Attachment | None:
    """The file a reporter's link names: a file of a public message on that vulnerability report.
    None for a link that is no link of ours; LinkExpired past FILE_LINK_DAYS."""
    try:
        ticket_id, attachment_id = signing.loads(token, salt=_FILE_SALT, max_age=timedelta(days=FILE_LINK_DAYS))
    except signing.SignatureExpired:
        raise LinkExpired from None
    except (signing.BadSignature, TypeError, ValueError):
        return None
    if not (type(ticket_id) is int and type(attachment_id) is int):  # what file_link signs, nothing else
        return None
    return Attachment.objects.filter(
        pk=attachment_id, ticket_id=ticket_id, ticket__kind=Ticket.Kind.SECURITY, message__internal=False
    ).first()
