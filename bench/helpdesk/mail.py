"""django-helpdesk's `get_email` on an IMAP mailbox, in the peer's own process (bench/mail_ingest.py
runs it with the peer venv's python and HELPDESK_DATABASE_URL set to its scratch database).

    python mail.py setup HOST PORT USER PASSWORD   # an empty database, migrated; one IMAP queue
    python mail.py poll                            # get_email once, timed; prints one JSON line

setup drops and re-creates the database (it must be named sla_helpdesk_mail*), migrates it and
creates one queue, "support", that reads the IMAP folder INBOX (email_box_interval 0, so every run
reads it; the queue's other settings at the package's defaults).
poll runs `get_email` (helpdesk.email.process_email: it reads every message of the folder, files
or threads it, sends its emails, and deletes what it filed) under CaptureQueriesContext and prints,
on its last line: seconds, queries, the tickets and follow-ups in the database, the emails it
sent in this run (to, subject, Message-ID: the receipts a customer's client would answer).
"""

import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "project"))
sys.path.insert(0, str(HERE))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peer.settings")


def recreate_database():
    from load import admin_connect, db_url
    from psycopg import sql

    name = urlsplit(db_url()).path.lstrip("/")
    if not name.startswith("sla_helpdesk_mail"):
        sys.exit(f"Refusing to drop {name!r}: the mail benchmark's database is named sla_helpdesk_mail*.")
    with admin_connect() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def setup(host, port, user, password):
    recreate_database()
    import django

    django.setup()
    from django.core.management import call_command
    from helpdesk.models import Queue

    call_command("migrate", verbosity=0, interactive=False)
    Queue.objects.create(
        title="Support", slug="support", email_address="support@kaluari.com", allow_email_submission=True,
        email_box_type="imap", email_box_host=host, email_box_port=int(port), email_box_ssl=False,
        email_box_user=user, email_box_pass=password, email_box_imap_folder="INBOX", email_box_interval=0,
    )  # fmt: skip


def poll():
    import django

    django.setup()
    from django.core import mail
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from helpdesk.models import FollowUp, Ticket
    from measure import uncapped_query_log

    mail.outbox = []
    uncapped_query_log()
    with CaptureQueriesContext(connection) as ctx:
        started, cpu = time.perf_counter(), time.process_time()
        call_command("get_email", quiet=True)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    queries = len(ctx.captured_queries)
    sent = [{"to": m.to, "subject": m.subject, "message_id": m.extra_headers.get("Message-ID") or m.message()["Message-ID"]}
            for m in mail.outbox]  # fmt: skip
    followups = {}
    for ticket_id, submitter in Ticket.objects.values_list("id", "submitter_email"):
        followups[ticket_id] = {"submitter": submitter, "followups": 0}
    for ticket_id in FollowUp.objects.values_list("ticket_id", flat=True):
        followups[ticket_id]["followups"] += 1
    result = {"seconds": seconds, "cpu_seconds": cpu, "queries": queries, "tickets": followups, "sent": sent}
    print(json.dumps(result))


if __name__ == "__main__":
    if sys.argv[1] == "setup":
        setup(*sys.argv[2:6])
    elif sys.argv[1] == "poll":
        poll()
    else:
        sys.exit(__doc__)
