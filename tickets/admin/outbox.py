"""The outbox admin (portal.admin) hides from staff who do not see vulnerability reports the emails
about a report's ticket (keyed "ticket:<id>:..." by tickets.notify), beside the bug bounty's own."""

from __future__ import annotations

from django.db.models import Q

from portal.admin import SECURITY_EMAILS

from ..models import Ticket


def security_ticket_emails() -> Q:
    ids = list(Ticket.objects.filter(kind=Ticket.Kind.SECURITY).order_by().values_list("pk", flat=True))
    if not ids:
        return Q(pk__in=[])
    return Q(key__regex=rf"^ticket:({'|'.join(str(pk) for pk in ids)}):")


SECURITY_EMAILS.append(security_ticket_emails)
