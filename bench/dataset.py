"""The large dataset of the benchmarks, built once in a scratch PostgreSQL database.

    .venv/bin/python bench/dataset.py            # builds it unless the marker says it is there
    .venv/bin/python bench/dataset.py --rebuild  # drops the database and builds it again

BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/sla_bench_large) names the database:
it is dropped and created again whenever its marker is missing or was written for other sizes.

1,000 organisations (3 customer users each) and one staff member, 1,000 services, 10,000
contracts on the shipped Kaluari (70%) and Klart (30%) templates, 1,000,000 tickets over two years
of which 100,000 are open (one organisation, the "big" one, files 5% of them), with their pauses,
messages, filing events and recorded SLA crossings; 300,000 outages and 10,000 maintenance windows
(9,800 past, with their notices, 200 upcoming) on random services.

Every ticket's clock columns are derived as the product derives them (tickets.services.
ticket_recompute, tickets.deadlines.ticket_deadlines) at the dataset's present, bench/common.NOW, as if every sweep had
run then: the escalation level a ticket has reached, its top alert, its crossings recorded, its
next escalation and SLA check due after NOW (or none). Nothing is due at NOW: the sweeps' "due"
scenarios make tickets due themselves and put them back.

Tickets and their history are computed in Python and written with COPY; everything else is a
server-side INSERT ... SELECT over generate_series, or one multi-row insert for the small tables.
"""

from __future__ import annotations

import heapq
import itertools
import json
import os
import random
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import NOW, create_database, db_url, setup  # noqa: E402

SIZES = {
    "organisations": int(os.environ.get("BENCH_ORGS", 1000)),
    "users_per_org": 3,
    "services": 1000,
    "contracts_per_org": 10,
    "tickets": int(os.environ.get("BENCH_TICKETS", 1_000_000)),
    "open": int(os.environ.get("BENCH_OPEN", 100_000)),
    "outages": int(os.environ.get("BENCH_OUTAGES", 300_000)),
    "windows": 10_000,
    "upcoming_windows": 200,
    "version": 3,  # bump when the shape of the data changes: the marker then asks for a rebuild
}
BIG_SHARE = 0.05  # of all tickets (and of the open ones) belong to organisation 0
PASSWORD = "sla-demo-2026"
STAFF_EMAIL = "staff@bench.example"
HISTORY_START = NOW - timedelta(days=730)
KALUARI_FROM = datetime(2024, 12, 31, 21, 0, tzinfo=UTC)  # its template's version is effective then
CHUNK = 50_000
MARKER = "bench_dataset"


def customer_email(org: int, n: int = 0) -> str:
    return f"{'admin' if n == 0 else f'member{n}'}@org{org:04d}.bench.example"


# --- The marker -----------------------------------------------------------------------------------
def marker() -> dict | None:
    """What the database holds (read without Django), or None."""
    import psycopg

    try:
        with psycopg.connect(db_url()) as conn:
            row = conn.execute(f"SELECT params, built_seconds FROM {MARKER} WHERE key = 'large'").fetchone()
    except (psycopg.errors.UndefinedTable, psycopg.OperationalError):
        return None  # no marker, or no database
    return {"params": row[0], "built_seconds": row[1]} if row else None


def ensure(*, rebuild: bool = False) -> dict:
    """Build the dataset unless it is there; returns the marker. Call before common.setup()'s
    Django connection is used (a rebuild drops the database)."""
    found = None if rebuild else marker()
    if found and found["params"] == SIZES:
        print(f"dataset: present (built in {found['built_seconds']:.0f} s), reused")
        setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)  # a reused dataset gets the indexes added since it was built
        return found
    create_database(drop=True)
    setup()
    t = time.perf_counter()
    build()
    seconds = time.perf_counter() - t
    from django.db import connection

    with connection.cursor() as c:
        c.execute(
            f"CREATE TABLE {MARKER} (key text PRIMARY KEY, params jsonb, built_seconds float, built_at timestamptz)"
        )
        c.execute(
            f"INSERT INTO {MARKER} VALUES ('large', %s, %s, now())",  # noqa: S608 - a constant
            [json.dumps(SIZES), seconds],
        )
    print(f"dataset: built in {seconds:.0f} s")
    return {"params": SIZES, "built_seconds": seconds}


# --- Building -------------------------------------------------------------------------------------
def build() -> None:
    from django.core.management import call_command

    step = Steps()
    call_command("migrate", verbosity=0)
    step("migrate")
    people = directory()
    step("organisations, users, services, contracts")
    tickets(people)
    step("tickets (computed, COPY)")
    ticket_history_rows(people)
    step("filing events and messages")
    from tickets.search import documents_fill

    documents_fill()  # as the services write them with each filing and reply (the COPY above bypasses them)
    step("search documents")
    outages()
    step("outages")
    maintenance(people)
    step("maintenance windows and notices")
    from django.db import connection

    with connection.cursor() as c:
        c.execute("VACUUM ANALYZE")
    step("vacuum analyze")


class Steps:
    def __init__(self):
        self.t = time.perf_counter()

    def __call__(self, what: str) -> None:
        now = time.perf_counter()
        print(f"  {what}: {now - self.t:.1f} s", flush=True)
        self.t = now


class People:
    """Ids the ticket generator draws from."""

    def __init__(self):
        self.staff_id = 0
        self.users: dict[int, list[int]] = {}  # organisation id -> user ids
        self.orgs: list[int] = []
        # organisation id -> [(contract id, is_kaluari, service ids)]
        self.contracts: dict[int, list[tuple[int, bool, list[int]]]] = {}
        self.versions: dict[bool, int] = {}  # is_kaluari -> version id


def directory() -> People:
    """Organisations, users, services and contracts: small tables, one multi-row insert each."""
    from django.contrib.auth.hashers import make_password

    from contracts.models import SLA, Contract, Organisation, Service, SLAVersion
    from portal.core.roles import CustomerRole, StaffRole
    from portal.models import User

    rng = random.Random(1)
    hashed = make_password(PASSWORD)  # hashed once: 3,000 hashes would take minutes
    people = People()
    people.staff_id = User.objects.create(
        email=STAFF_EMAIL, password=hashed, name="Bench Staff", is_staff=True, is_superuser=True,
        staff_role=StaffRole.SUPPORT_LEAD, phone="+254 700 000 000",
    ).pk  # fmt: skip
    n_orgs, per_org = SIZES["organisations"], SIZES["contracts_per_org"]
    orgs = Organisation.objects.bulk_create(
        Organisation(name=f"Bench organisation {i:04d}", slug=f"bench-org-{i:04d}") for i in range(n_orgs)
    )
    services = Service.objects.bulk_create(
        Service(name=f"Bench service {i:04d}", slug=f"bench-svc-{i:04d}") for i in range(SIZES["services"])
    )
    users = User.objects.bulk_create(
        User(
            email=customer_email(i, n), password=hashed, name=f"Customer {n} of {i}", organisation=org,
            customer_role=CustomerRole.ADMIN if n == 0 else CustomerRole.MEMBER,
        )
        for i, org in enumerate(orgs)
        for n in range(SIZES["users_per_org"])
    )  # fmt: skip
    for u in users:
        people.users.setdefault(u.organisation_id, []).append(u.pk)
    people.orgs = [o.pk for o in orgs]
    slas = {True: SLA.objects.get(template_key="kaluari-cloud-backup"), False: SLA.objects.get(template_key="klart-ai")}
    people.versions = {k: SLAVersion.objects.get(sla=sla, number=1).pk for k, sla in slas.items()}
    kinds = [(i % per_org) < per_org * 7 // 10 for i in range(n_orgs * per_org)]
    contracts = Contract.objects.bulk_create(
        Contract(
            organisation=orgs[i // per_org], reference=f"BL-{i:05d}", name=f"Bench contract {i}", sla=slas[kaluari],
            starts_on=date(2024, 11, 1), monthly_invoice_amount=150000 if kaluari else 25000,
            currency="KES" if kaluari else "SEK",
        )
        for i, kaluari in enumerate(kinds)
    )  # fmt: skip
    Through, Contacts = Contract.services.through, Contract.contacts.through
    links = []
    for i, c in enumerate(contracts):
        sids = [services[(i * 7919) % len(services)].pk]
        if rng.random() < 0.3:
            sids.append(services[(i * 7919 + 1) % len(services)].pk)
        links += [Through(contract_id=c.pk, service_id=s) for s in sids]
        people.contracts.setdefault(c.organisation_id, []).append((c.pk, kinds[i], sids))
    Through.objects.bulk_create(links, batch_size=5000)
    Contacts.objects.bulk_create(
        (Contacts(contract_id=c.pk, user_id=u) for c in contracts for u in people.users[c.organisation_id]),
        batch_size=5000,
    )
    return people


# Kaluari's priorities and how often each is filed; how long tickets take (wall time, at random
# up to): first response, resolution after it; how far back an open ticket was filed.
PRIORITIES = [("P1", 0.05), ("P2", 0.15), ("P3", 0.4), ("P4", 0.4)]
FIRST_REPLY = {"P1": 20, "P2": 80, "P3": 360, "P4": 720, "STD": 360}  # minutes
RESOLVE = {"P1": 60, "P2": 240, "P3": 1200, "P4": 2400, "STD": 1200}  # minutes
OPEN_SPAN = {"P1": 6, "P2": 8, "P3": 72, "P4": 200, "STD": 72}  # hours before NOW

TICKET_COLUMNS = [
    "id", "organisation_id", "contract_id", "service_id", "sla_version_id", "kind", "priority", "subject",
    "description", "steps_to_reproduce", "status", "created_by_id", "assignee_id", "filed_at",
    "first_response_at", "resolved_at", "closed_at", "excluded_cause", "excluded_reason", "updated_at",
    "first_response_due", "resolution_target_at", "resolution_due", "paused", "escalation_level",
    "top_alert_sent", "next_escalation_due", "next_sla_check_at", "breached", "warned", "next_deadline",
    "at_risk_at", "escalation_dues", "first_response_warn_at", "resolution_warn_at", "channel", "email_origin",
]  # fmt: skip
SUBJECTS = [
    "Backup job fails with a timeout", "Restore is slow", "Agent cannot reach the vault",
    "Assistant answers in the wrong language", "Login to the console fails", "Quota warning is wrong",
]  # fmt: skip


# The words of the descriptions beyond their first sentence: 5,000 made-up words drawn as words are
# in prose (Zipf: the n-th most frequent n times rarer than the first), 8 per ticket. The search
# benchmark (bench/search.py) picks a rare and a common one by rank.
_STEMS = [a + b + c for a in ("ka", "lu", "ri", "mo", "ten", "sa", "vo", "del", "pi", "rus")
          for b in ("ba", "ko", "mi", "ne", "tor", "ga", "le", "fu", "zi", "wen") for c in ("rum", "lan", "dex", "ost", "ika")]  # fmt: skip
VOCABULARY = [stem + end for end in ("", "an", "ix", "or", "el", "ut", "om", "ar", "is", "ek") for stem in _STEMS]
ZIPF = list(itertools.accumulate(1 / rank for rank in range(1, len(VOCABULARY) + 1)))  # cumulative weights


def description(rng: random.Random) -> str:
    words = rng.choices(VOCABULARY, cum_weights=ZIPF, k=8)
    return f"What happened, when, and what we tried first: {' '.join(words)}."


def _filed_times(rng: random.Random, n: int, start: datetime, end: datetime) -> list[float]:
    """n moments in [start, end), in order (as timestamps)."""
    lo, hi = start.timestamp(), end.timestamp()
    return sorted(rng.uniform(lo, hi) for _ in range(n))


def tickets(people: People) -> None:
    from django.db import connection

    from tickets.sweeps import CROSSING_ROWS
    from tickets.terms_cache import TermsCache

    rng = random.Random(2026)
    n, n_open = SIZES["tickets"], SIZES["open"]
    terms = TermsCache()
    terms.load(people.versions.values())
    targets = {}
    big, others = people.orgs[0], people.orgs[1:]
    closed_end = NOW - timedelta(days=7)
    closed = _filed_times(rng, n - n_open, HISTORY_START, closed_end)
    recent = _filed_times(rng, n_open, NOW - timedelta(hours=1), NOW)  # order only: the span comes below
    stream = heapq.merge(((t, False) for t in closed), ((t, True) for t in recent))
    copy_tickets = f"COPY tickets_ticket ({', '.join(TICKET_COLUMNS)}) FROM STDIN"
    rows, pauses, crossings, messages = [], [], [], []

    def flush():
        raw = connection.connection
        with raw.cursor() as cur:
            for sql, data in (
                (copy_tickets, rows),
                ("COPY tickets_ticketpause (ticket_id, reason, started_at, ended_at) FROM STDIN", pauses),
                ("COPY tickets_slacrossing (ticket_id, clock, kind, at, recorded_at) FROM STDIN", crossings),
                ("COPY tickets_ticketmessage (ticket_id, author_id, body, internal, created_at) FROM STDIN", messages),
            ):
                with cur.copy(sql) as copy:
                    for row in data:
                        copy.write_row(row)
        raw.commit()
        for data in (rows, pauses, crossings, messages):
            data.clear()

    connection.ensure_connection()
    for pk, (stamp, is_open) in enumerate(stream, start=1):
        org = big if rng.random() < BIG_SHARE else rng.choice(others)
        filed = datetime.fromtimestamp(stamp, UTC)
        contracts = people.contracts[org]
        kaluari_ok = is_open or filed >= KALUARI_FROM  # its version is in force only from then
        contract_id, kaluari, sids = rng.choice([c for c in contracts if kaluari_ok or not c[1]])
        priority = rng.choices([p for p, _ in PRIORITIES], [w for _, w in PRIORITIES])[0] if kaluari else "STD"
        version = people.versions[kaluari]
        if is_open:
            filed = NOW - timedelta(seconds=rng.uniform(60, OPEN_SPAN[priority] * 3600))
        creator = rng.choice(people.users[org])
        key = (version, priority)
        if key not in targets:
            targets[key] = terms.targets(version, priority)
        msgs: list[tuple] = []
        if is_open:
            c, ps, crossed = _open(rng, pk, filed, version, priority, people.staff_id, msgs, targets[key], terms)
        else:
            c, ps, crossed = _closed(rng, pk, filed, priority, creator, people.staff_id, msgs, targets[key])
        crossings += [(pk, *CROSSING_ROWS[x], at, at + timedelta(minutes=1)) for x, at in crossed.items()]
        kinds = {CROSSING_ROWS[x][1] for x in crossed}
        rows.append((
            pk, org, contract_id, rng.choice(sids), version, "support", priority,
            f"{rng.choice(SUBJECTS)} (#{pk})", description(rng), "",
            c["status"], creator, people.staff_id if rng.random() < 0.7 else None, filed,
            c["first_response_at"], c["resolved_at"], c["closed_at"], c["excluded_cause"], c["excluded_reason"],
            c["closed_at"] or c["resolved_at"] or NOW,
            c["first_response_due"], c["resolution_target_at"], c["resolution_due"], c["paused"],
            c["escalation_level"], c["top_alert_sent"], c["next_escalation_due"], c["next_sla_check_at"],
            "breach" in kinds, "warning" in kinds, c["next_deadline"], c["at_risk_at"], json.dumps(c["escalation_dues"]),
            c.get("first_response_warn_at"), c.get("resolution_warn_at"), "portal", "",
        ))  # fmt: skip
        pauses += [(pk, *p) for p in ps]
        messages += msgs
        if len(rows) >= CHUNK:
            flush()
            print(f"    {pk:,} tickets", flush=True)
    flush()
    with connection.cursor() as c:
        for table in ("tickets_ticket",):
            c.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")


def _open(rng, pk, filed, version, priority, staff_id, msgs, targets, terms):
    """An open ticket: new, answered, or waiting on the customer; its columns from the product's
    own ticket_recompute, at the level the escalation sweep would have moved it to by NOW."""
    from tickets import deadlines
    from tickets.history import ticket_history
    from tickets.models import Ticket, TicketPause
    from tickets.recompute import ticket_recompute

    t = Ticket(sla_version_id=version, priority=priority, filed_at=filed, status=Ticket.Status.NEW)
    ps = []  # no pk above: ticket_recompute would look the ticket's crossings up, a query per ticket
    roll = rng.random()
    if roll >= 0.4:
        t.status = Ticket.Status.OPEN
        t.first_response_at = filed + (NOW - filed) * rng.uniform(0.05, 0.9)
        msgs.append((pk, staff_id, "We are looking into it.", False, t.first_response_at))
        if roll >= 0.85:
            t.status = Ticket.Status.WAITING
            start = t.first_response_at + (NOW - t.first_response_at) / 2
            ps.append(TicketPause(reason=TicketPause.Reason.WAITING, started_at=start))
    d = deadlines.deadlines(targets, ticket_history(t, ps))
    step = deadlines.escalation_at(d.escalation_dues, current=1, alerted=False, now=NOW)
    t.escalation_level, t.top_alert_sent = step.level, step.top_alert_due
    ticket_recompute(t, now=NOW, terms=terms, pauses=ps)
    # As check_sla_deadlines leaves it: every crossing up to NOW recorded, the next check after NOW.
    crossed = deadlines.crossings_due(t, now=NOW)
    t.next_sla_check_at = deadlines.next_check(t, now=NOW)
    columns = {f: getattr(t, f) for f in OPEN_FIELDS}
    return columns, [(p.reason, p.started_at, p.ended_at) for p in ps], crossed


OPEN_FIELDS = [
    "status", "first_response_at", "resolved_at", "closed_at", "excluded_cause", "excluded_reason",
    "first_response_due", "resolution_target_at", "resolution_due", "paused", "escalation_level", "top_alert_sent",
    "next_escalation_due", "next_sla_check_at", "next_deadline", "at_risk_at", "escalation_dues",
    "first_response_warn_at", "resolution_warn_at",
]  # fmt: skip


def _closed(rng, pk, filed, priority, creator, staff_id, msgs, targets):
    """A resolved or closed ticket. 900,000 of them: the clocks module directly, without model
    instances (ticket_recompute for an inactive ticket: the deadlines, paused, no timers left)."""
    from tickets import deadlines

    fr = filed + timedelta(minutes=rng.uniform(2, FIRST_REPLY[priority]))
    msgs.append((pk, staff_id, "We are looking into it.", False, fr))
    after, waiting = fr, ()
    if rng.random() < 0.2:
        start = after + timedelta(minutes=rng.uniform(10, 240))
        after = start + timedelta(minutes=rng.uniform(30, 2880))
        waiting = ((start, after),)
        msgs.append((pk, creator, "Here are the details you asked for.", False, after))
    resolved = after + timedelta(minutes=rng.uniform(10, RESOLVE[priority]))
    status, closed = "resolved", None
    if rng.random() < 0.9 and resolved + timedelta(days=3) < NOW:
        status, closed = "closed", resolved + timedelta(days=3)
    excluded = rng.random() < 0.003
    history = deadlines.History(filed_at=filed, waiting=waiting, resolved=((resolved, None),), first_response_at=fr)
    d = deadlines.deadlines(targets, history)
    step = deadlines.escalation_at(d.escalation_dues, current=1, alerted=False, now=resolved)
    moments = deadlines.Moments(d.first_response_due, fr, d.resolution_target_at, d.resolution_due, resolved)
    crossed = {} if excluded else deadlines.crossings_due(moments, now=NOW)
    columns = {
        "status": status, "first_response_at": fr, "resolved_at": resolved, "closed_at": closed,
        "excluded_cause": "force_majeure" if excluded else "",
        "excluded_reason": "Regional power failure (bench)." if excluded else "",
        "first_response_due": d.first_response_due, "resolution_target_at": d.resolution_target_at,
        "resolution_due": d.resolution_due, "paused": history.paused_at(NOW),
        "escalation_level": step.level, "top_alert_sent": step.top_alert_due, "next_escalation_due": None,
        "next_sla_check_at": None if excluded else deadlines.next_check(moments, now=NOW),
        "next_deadline": None, "at_risk_at": None, "escalation_dues": deadlines.dues_to_json(d.escalation_dues),
    }  # fmt: skip
    pauses = [("waiting", a, b) for a, b in waiting] + [("resolved", resolved, None)]
    return columns, pauses, crossed


def ticket_history_rows(people: People) -> None:
    """Every ticket's filing event, server-side."""
    from django.db import connection

    with connection.cursor() as c:
        c.execute(
            "INSERT INTO tickets_ticketevent (ticket_id, kind, at, actor_id, data) "
            "SELECT id, 'filed', filed_at, created_by_id, jsonb_build_object('priority', priority) FROM tickets_ticket"
        )


def outages() -> None:
    """300,000 outages over the two years, each on one service (10% on two), server-side."""
    from django.db import connection

    with connection.cursor() as c:
        c.execute("SELECT setseed(0.3)")
        c.execute(
            """
            INSERT INTO contracts_outage (title, starts_at, ends_at, cause, description, source, fingerprint, created_at,
                                          impacts, customer_scoped)
            SELECT 'Outage ' || n, s, s + make_interval(mins => 1 + floor(random() * 240)::int),
                   (ARRAY['unplanned', 'unplanned', 'unplanned', 'unplanned', 'ddos', 'third_party'])[1 + floor(random() * 6)::int],
                   '', 'staff', '', s, '{}', false
            FROM (SELECT n, %s::timestamptz + random() * (%s::timestamptz - %s::timestamptz) AS s
                  FROM generate_series(1, %s) AS n) AS x
            """,
            [HISTORY_START, NOW, HISTORY_START, SIZES["outages"]],
        )
        c.execute("SELECT min(id), count(*) FROM contracts_service")
        first, count = c.fetchone()
        c.execute(
            "INSERT INTO contracts_outage_services (outage_id, service_id) "
            "SELECT id, %s + floor(random() * %s)::int FROM contracts_outage",
            [first, count],
        )
        c.execute(
            "INSERT INTO contracts_outage_services (outage_id, service_id) "
            "SELECT outage_id, %s + (service_id - %s + 1) %% %s FROM contracts_outage_services WHERE random() < 0.1",
            [first, first, count],
        )


def maintenance(people: People) -> None:
    """9,800 past windows (announced 72 h ahead: their notices are on record) and 200 upcoming ones
    whose notices fall due at their 48-hour horizon, as the product schedules them."""
    from django.db import connection

    upcoming = SIZES["upcoming_windows"]
    past = SIZES["windows"] - upcoming
    with connection.cursor() as c:
        c.execute("SELECT setseed(0.5)")
        c.execute(
            """
            INSERT INTO contracts_maintenancewindow (title, description, starts_at, ends_at, impact, status, revision,
                published_at, cancelled_at, notice_due_at, reminder_due_at, created_by_id, sequence)
            SELECT 'Maintenance ' || n, 'Storage back end upgrade: backups pause for its length.', s,
                   s + make_interval(mins => 30 + floor(random() * 210)::int),
                   CASE WHEN random() < 0.85 THEN 'downtime' ELSE 'degraded' END, 'scheduled', 1,
                   s - interval '7 days', NULL, NULL, NULL, %s, 1
            FROM (SELECT n, %s::timestamptz + random() * (%s::timestamptz - %s::timestamptz) AS s
                  FROM generate_series(1, %s) AS n) AS x
            """,
            [people.staff_id, HISTORY_START, NOW, HISTORY_START, past],
        )
        c.execute(
            """
            INSERT INTO contracts_maintenancewindow (title, description, starts_at, ends_at, impact, status, revision,
                published_at, cancelled_at, notice_due_at, reminder_due_at, created_by_id, sequence)
            SELECT 'Upcoming maintenance ' || n, 'Storage back end upgrade: backups pause for its length.', s,
                   s + interval '2 hours', 'downtime', 'scheduled', 1, %s::timestamptz - interval '1 day', NULL,
                   s - interval '48 hours 5 minutes', s - interval '1 hour', %s, 1
            FROM (SELECT n, %s::timestamptz + interval '3 days' + random() * interval '27 days' AS s
                  FROM generate_series(1, %s) AS n) AS x
            """,
            [NOW, people.staff_id, NOW, upcoming],
        )
        c.execute("SELECT min(id), count(*) FROM contracts_service")
        first, count = c.fetchone()
        c.execute(
            "INSERT INTO contracts_maintenancewindow_services (maintenancewindow_id, service_id) "
            "SELECT id, %s + floor(random() * %s)::int FROM contracts_maintenancewindow",
            [first, count],
        )
        c.execute(
            "INSERT INTO contracts_maintenancewindow_services (maintenancewindow_id, service_id) "
            "SELECT maintenancewindow_id, %s + (service_id - %s + 1) %% %s FROM contracts_maintenancewindow_services "
            "WHERE random() < 0.2",
            [first, first, count],
        )
        c.execute(
            """
            INSERT INTO contracts_maintenancenotice (window_id, contract_id, revision, kind, sent_at, short_notice)
            SELECT DISTINCT w.id, cs.contract_id, 1, 'announce', w.starts_at - interval '72 hours', false
            FROM contracts_maintenancewindow w
            JOIN contracts_maintenancewindow_services ws ON ws.maintenancewindow_id = w.id
            JOIN contracts_contract_services cs ON cs.service_id = ws.service_id
            WHERE w.notice_due_at IS NULL
            """
        )


def counts() -> dict:
    from django.db import connection

    out = {}
    with connection.cursor() as c:
        for label, sql in [
            ("organisations", "SELECT count(*) FROM contracts_organisation"),
            ("users", "SELECT count(*) FROM portal_user"),
            ("contracts", "SELECT count(*) FROM contracts_contract"),
            ("tickets", "SELECT count(*) FROM tickets_ticket"),
            ("open tickets", "SELECT count(*) FROM tickets_ticket WHERE status IN ('new', 'open', 'waiting')"),
            (
                "  with an escalation pending",
                "SELECT count(*) FROM tickets_ticket WHERE next_escalation_due IS NOT NULL",
            ),
            ("  with an SLA check pending", "SELECT count(*) FROM tickets_ticket WHERE next_sla_check_at IS NOT NULL"),
            ("pauses", "SELECT count(*) FROM tickets_ticketpause"),
            ("messages", "SELECT count(*) FROM tickets_ticketmessage"),
            ("SLA crossings", "SELECT count(*) FROM tickets_slacrossing"),
            ("outages", "SELECT count(*) FROM contracts_outage"),
            ("maintenance windows", "SELECT count(*) FROM contracts_maintenancewindow"),
            ("maintenance notices", "SELECT count(*) FROM contracts_maintenancenotice"),
        ]:
            c.execute(sql)
            out[label] = c.fetchone()[0]
        c.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        out["database size"] = c.fetchone()[0]
    return out


def main():
    ensure(rebuild="--rebuild" in sys.argv)
    setup()
    for label, value in counts().items():
        print(f"  {label:<32} {value:>12,}" if isinstance(value, int) else f"  {label:<32} {value:>12}")


if __name__ == "__main__":
    main()
