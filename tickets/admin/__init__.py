"""The staff side of tickets, in the Django admin, by responsibility:

- ticket.TicketAdmin: the staff queue (its changelist: queue, its filters: filters) and the
  read-only ticket page;
- operations: the ticket page's staff operations, each a POST form calling one service;
- forms, display: the operations' forms; the SLA badge, countdown and audit-trail wording;
- readonly: escalation requests and SLA crossings, read-only lists;
- inbound: the triage list of email in (held messages: attach, file, discard);
- canned: canned replies (personal and the teams'), inserted in the ticket page's reply form;
- outbox: the emails of vulnerability reports' tickets, hidden in the outbox admin as the reports are.

Each admin registers itself where it is defined; importing this package registers them all.
"""

from . import canned, inbound, incidents, outbox  # noqa: F401 - register canned replies, triage, incidents (with their tickets), reports' outbox rows
from .queue import TicketChangeList
from .readonly import EscalationRequestAdmin, SLACrossingAdmin
from .ticket import TicketAdmin

__all__ = ["EscalationRequestAdmin", "SLACrossingAdmin", "TicketAdmin", "TicketChangeList"]
