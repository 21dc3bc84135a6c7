"""Load django-helpdesk's tables with N tickets in bulk (run by the peer venv's python).

    python load.py --tickets 100000 --open 10000     # from bench/helpdesk/run.py
    python load.py --reset                           # undo what escalate_tickets changed

Scratch database only: HELPDESK_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/
sla_helpdesk_peer) is created if missing. When its marker (table bench_peer_marker) says it
already holds this many tickets, it is reused; otherwise its public schema is dropped, migrated
afresh and loaded with INSERT ... SELECT generate_series (no ORM save per ticket).

The dataset: 3 queues (escalate_days 2, 3 and 4: the default "escalate after a few days"), 20
agents and one staff user for the list, 5,000 customers' e-mail addresses. Tickets arrive at an
even rate over two years; the newest OPEN of them are still open (status Open, 5% Reopened), the
rest closed (5% Resolved). Priorities 1-5, spread evenly, a pure function of the id so that a
reset can restore them. Every ticket has its "Ticket Opened" follow-up and an agent's public
reply; closed tickets also a "Closed" follow-up with its status TicketChange, as the peer itself
records them. 80% of the open tickets and every closed one are assigned.
"""

import argparse
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "project"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peer.settings")

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/sla_helpdesk_peer"
DATASET_VERSION = 1  # bump when the dataset's shape changes: a stale marker forces a reload
PRIORITY_SQL = "1 + mod(abs(hashtext(({id})::text)), 5)"  # the seed priority of ticket {id}
QUEUES = [("support", "Support", 2), ("billing", "Billing", 3), ("network", "Network", 4)]
AGENTS = 20
CUSTOMERS = 5000


def db_url():
    return os.environ.get("HELPDESK_DATABASE_URL", DEFAULT_URL)


def admin_connect():
    import psycopg

    parts = urlsplit(db_url())
    return psycopg.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password,
        dbname="postgres",
        autocommit=True,
    )


def ensure_database():
    from psycopg import sql

    name = urlsplit(db_url()).path.lstrip("/")
    if name in ("postgres", "sla_portal") or name.startswith("sla_bench"):
        sys.exit(f"Refusing to load the peer into {name!r}: use a scratch database.")
    with admin_connect() as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}", flush=True)


def read_marker(cursor):
    cursor.execute("SELECT to_regclass('public.bench_peer_marker') IS NOT NULL")
    if not cursor.fetchone()[0]:
        return None
    cursor.execute("SELECT tickets, open, version, max_followup_id FROM bench_peer_marker LIMIT 1")
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip(("tickets", "open", "version", "max_followup_id"), row, strict=True))


def wipe(cursor, name):
    cursor.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
    tables = cursor.fetchone()[0]
    cursor.execute("SELECT to_regclass('public.bench_peer_marker') IS NOT NULL")
    ours = cursor.fetchone()[0]
    if tables and not ours and "helpdesk_peer" not in name:
        sys.exit(
            f"{name} holds tables but no bench_peer_marker: not emptying a database that this script did not load."
        )
    cursor.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")


def load(tickets, open_):
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    name = connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        marker = read_marker(cursor)
    want = {"tickets": tickets, "open": open_, "version": DATASET_VERSION}
    if marker and all(marker[k] == v for k, v in want.items()):
        print(f"reusing {name}: {tickets:,} tickets, {open_:,} open already loaded", flush=True)
        reset()
        return
    started = time.perf_counter()
    with connection.cursor() as cursor:
        wipe(cursor, name)
    call_command("migrate", verbosity=0, interactive=False)

    User = get_user_model()
    staff = User.objects.create_user("bench-staff", "staff@example.com", is_staff=True)
    staff.set_unusable_password()
    staff.save()
    agents = [
        User.objects.create_user(
            f"agent{n:02d}",
            f"agent{n:02d}@example.com",
            first_name="Agent",
            last_name=f"{n:02d}",
            is_staff=True,
        )
        for n in range(1, AGENTS + 1)
    ]
    from helpdesk.models import Queue

    queue_ids = [
        Queue.objects.create(
            slug=slug,
            title=title,
            email_address=f"{slug}@example.com",
            escalate_days=days,
            allow_public_submission=True,
        ).pk
        for slug, title, days in QUEUES
    ]
    agent_ids = [a.pk for a in agents]
    closed = tickets - open_
    params = {
        "n": tickets,
        "closed": closed,
        "open": open_,
        "agents": agent_ids,
        "queues": queue_ids,
        "customers": CUSTOMERS,
    }
    # Two years of arrivals at an even rate; the newest OPEN are the open ones.
    span_days = 730.0
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        cursor.execute(
            f"""
            INSERT INTO helpdesk_ticket (
                id, title, created, modified, submitter_email, status, on_hold, description,
                resolution, priority, due_date, last_escalation, assigned_to_id, queue_id,
                secret_key, kbitem_id, merged_to_id)
            SELECT i,
                   'Ticket ' || i || ': ' || (ARRAY['Link down at branch office',
                       'Invoice does not match the contract', 'Slow response from the portal',
                       'Cannot log in to the VPN', 'Packet loss on the uplink',
                       'Request for a new user account'])[1 + i %% 6],
                   c.created,
                   CASE WHEN i <= %(closed)s THEN c.created + interval '1 day' ELSE c.created END,
                   'customer' || (i %% %(customers)s) || '@org' || (i %% 1000) || '.example.com',
                   CASE WHEN i <= %(closed)s THEN (CASE WHEN i %% 20 = 0 THEN 3 ELSE 4 END)
                        ELSE (CASE WHEN i %% 20 = 0 THEN 2 ELSE 1 END) END,
                   false,
                   'Since this morning our users at the site report that the service is not '
                   || 'working as it should. We have restarted the equipment on our side. '
                   || 'Please investigate and let us know when it is fixed. Reference ' || i,
                   CASE WHEN i <= %(closed)s THEN 'Fixed on our side; confirmed with the customer.'
                        END,
                   {PRIORITY_SQL.format(id="i")},
                   NULL, NULL,
                   CASE WHEN i > %(closed)s AND i %% 5 = 0 THEN NULL
                        ELSE (%(agents)s::int[])[1 + i %% cardinality(%(agents)s::int[])] END,
                   (%(queues)s::int[])[1 + i %% cardinality(%(queues)s::int[])],
                   gen_random_uuid()::text, NULL, NULL
              FROM generate_series(1, %(n)s) AS i,
                   LATERAL (SELECT now() - make_interval(secs => {span_days} * 86400
                                   * (%(n)s - i + 1)::float8 / %(n)s) AS created) AS c
            """,
            params,
        )
        # Each ticket's "Ticket Opened" follow-up and an agent's public reply two hours later.
        cursor.execute(
            """
            INSERT INTO helpdesk_followup (date, title, comment, public, new_status, ticket_id,
                                           user_id, message_id, time_spent, email_recipients)
            SELECT t.created, 'Ticket Opened', t.description, true, NULL, t.id, NULL, NULL, NULL,
                   NULL
              FROM helpdesk_ticket t ORDER BY t.id
            """
        )
        cursor.execute(
            """
            INSERT INTO helpdesk_followup (date, title, comment, public, new_status, ticket_id,
                                           user_id, message_id, time_spent, email_recipients)
            SELECT least(t.created + interval '2 hours', now()), 'Comment',
                   'Thank you, we are looking into it and will update you shortly.', true, NULL,
                   t.id, coalesce(t.assigned_to_id, %(agent)s), NULL, NULL,
                   jsonb_build_array(t.submitter_email)
              FROM helpdesk_ticket t ORDER BY t.id
            """,
            {"agent": agent_ids[0]},
        )
        cursor.execute(
            """
            WITH f AS (
                INSERT INTO helpdesk_followup (date, title, comment, public, new_status,
                                               ticket_id, user_id, message_id, time_spent,
                                               email_recipients)
                SELECT t.modified, 'Closed', t.resolution, true, t.status, t.id,
                       t.assigned_to_id, NULL, NULL, jsonb_build_array(t.submitter_email)
                  FROM helpdesk_ticket t WHERE t.status IN (3, 4) ORDER BY t.id
                RETURNING id, new_status)
            INSERT INTO helpdesk_ticketchange (field, old_value, new_value, followup_id)
            SELECT 'Status', 'Open', CASE f.new_status WHEN 3 THEN 'Resolved' ELSE 'Closed' END,
                   f.id
              FROM f
            """
        )
        for table in ("helpdesk_ticket", "helpdesk_followup", "helpdesk_ticketchange"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT coalesce(max(id), 1) FROM {table}))"
            )
        cursor.execute("SELECT max(id) FROM helpdesk_followup")
        max_followup = cursor.fetchone()[0]
        cursor.execute(
            "CREATE TABLE bench_peer_marker (tickets int, open int, version int, "
            "max_followup_id int, loaded_at timestamptz DEFAULT now())"
        )
        cursor.execute(
            "INSERT INTO bench_peer_marker (tickets, open, version, max_followup_id) VALUES (%s, %s, %s, %s)",
            [tickets, open_, DATASET_VERSION, max_followup],
        )
    connection.close()
    vacuum()
    print(
        f"loaded {name}: {tickets:,} tickets ({open_:,} open), {max_followup:,} follow-ups "
        f"in {time.perf_counter() - started:.0f} s",
        flush=True,
    )


def vacuum():
    from django.db import connection

    connection.ensure_connection()
    connection.connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    connection.close()


def reset():
    """Undo escalate_tickets: seed priorities back, no last_escalation, its follow-ups gone."""
    import django

    django.setup()
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        marker = read_marker(cursor)
        if marker is None:
            sys.exit("No bench_peer_marker: load the dataset first.")
        cursor.execute(
            f"""
            UPDATE helpdesk_ticket SET priority = {PRIORITY_SQL.format(id="id")},
                   last_escalation = NULL, modified = created
             WHERE last_escalation IS NOT NULL
            """
        )
        changed = cursor.rowcount
        cursor.execute(
            "DELETE FROM helpdesk_ticketchange WHERE followup_id > %s",
            [marker["max_followup_id"]],
        )
        cursor.execute("DELETE FROM helpdesk_followup WHERE id > %s", [marker["max_followup_id"]])
        removed = cursor.rowcount
    if changed or removed:
        connection.close()
        vacuum()
    print(f"reset: {changed:,} tickets restored, {removed:,} follow-ups removed", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--open", type=int, default=10_000)
    parser.add_argument("--reset", action="store_true", help="only undo escalations")
    args = parser.parse_args()
    if not 0 < args.open <= args.tickets:
        sys.exit("--open must be between 1 and --tickets")
    ensure_database()
    if args.reset:
        reset()
    else:
        load(args.tickets, args.open)


if __name__ == "__main__":
    main()
