"""`python manage.py ingest_email < message.eml`: one RFC 5322 message on standard input, as an
MTA's pipe delivers it (README, "Email in"). Exit 0 when the message is taken (filed, a reply,
held for staff, a duplicate, automatic, or refused and the sender told); 75 (EX_TEMPFAIL) when it
could not be stored, so the MTA keeps it and tries again: it never exits 0 having lost a message."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand
from django.utils import timezone

from tickets.inbound import parse
from tickets.inbound.service import ingest

EX_TEMPFAIL = 75


class Command(BaseCommand):
    help = "Take one email from standard input (an MTA's pipe): file it, add it to its ticket, or hold it for staff."

    def add_arguments(self, parser):
        parser.add_argument("--source-ref", default="", help="The MTA's queue id, for the log (Postfix: ${queue_id}).")

    def handle(self, *args, **options):
        try:
            raw = sys.stdin.buffer.read()
            # Our MTA's own Received header: a retry after exit 75 carries the same one, so the
            # ticket's clock does not move with retries.
            now = timezone.now()
            received_at = _stamped(raw, now)
            outcome = ingest(raw, received_at=received_at, source="pipe", source_ref=options["source_ref"])
        except Exception as exc:  # noqa: BLE001 - anything that kept it from being stored: try again later
            self.stderr.write(f"ingest_email: not stored, try again later: {type(exc).__name__}: {exc}")
            sys.exit(EX_TEMPFAIL)
        self.stdout.write(f"{outcome.kind} {outcome.inbound_id or ''} {outcome.reason}".rstrip())


def _stamped(raw: bytes, now):
    """Our MTA's moment, never later than now; now when the message cannot tell (one nested a
    thousand deep does not even parse here: ingest keeps it for staff)."""
    try:
        stamped = parse.received_at(parse.parse(raw))
    except Exception:  # noqa: BLE001 - unreadable here is not a reason to refuse it
        return now
    return stamped if stamped is not None and stamped <= now else now
