"""Seeding for the crash drills: `python -m tests.drills.scenario <name> '<json params>'`, run by
the harness with DATABASE_URL / REDIS_URL / EMAIL_URL pointing at the drill's own PostgreSQL, Redis
and SMTP sink. It writes through the product's services (window_publish, ticket_open, the outbox)
with real timestamps; "two hours ago" is passed as their `now`, never faked with a clock. Prints
one JSON line: what the drill should expect.
"""

from __future__ import annotations

import json
import sys
import uuid
from datetime import date, timedelta
from decimal import Decimal


def _setup():
    import django

    django.setup()


def customers(*, contracts: int, contacts: int, service: str = "drill-backup") -> dict:
    """`contracts` organisations with one Kaluari contract each on `service`, each with `contacts`
    customer contacts (bulk inserts: a thousand users in a second)."""
    from contracts.models import SLA, Contract, Organisation, Service
    from portal.models import User

    tag = uuid.uuid4().hex[:6]
    svc, _ = Service.objects.get_or_create(slug=service, defaults={"name": f"Drill {service}"})
    sla = SLA.objects.get(template_key="kaluari-cloud-backup")
    orgs = Organisation.objects.bulk_create(
        [Organisation(name=f"Drill {tag} {n}", slug=f"drill-{tag}-{n}") for n in range(contracts)]
    )
    users = User.objects.bulk_create(
        [
            User(
                email=f"c{n}-{i}-{tag}@drill.example",
                name=f"Contact {n}-{i}",
                organisation=o,
                customer_role="admin" if i == 0 else "member",
                password="!",
            )
            for n, o in enumerate(orgs)
            for i in range(contacts)
        ]  # fmt: skip
    )
    cons = Contract.objects.bulk_create(
        [
            Contract(
                organisation=o,
                reference=f"DR-{tag}-{n}",
                name=f"Drill contract {n}",
                sla=sla,
                starts_on=date(2026, 1, 1),
                monthly_invoice_amount=Decimal("1000"),
                currency="KES",
            )
            for n, o in enumerate(orgs)
        ]  # fmt: skip
    )
    Contract.services.through.objects.bulk_create([Contract.services.through(contract=c, service=svc) for c in cons])
    by_org = {}
    for u in users:
        by_org.setdefault(u.organisation_id, []).append(u)
    for designation in (Contract.contacts, Contract.support_contacts):  # notified, and may open tickets
        designation.through.objects.bulk_create(
            [designation.through(contract=c, user=u) for c in cons for u in by_org[c.organisation_id]]
        )
    return {"service": svc.pk, "contracts": [c.pk for c in cons], "recipients": sorted(u.email for u in users)}


def _service(slug: str) -> int:
    from contracts.models import Service

    return Service.objects.get(slug=slug).pk


def window(*, service: str = "drill-backup", ahead_minutes: float = 48 * 60 + 1, count: int = 1) -> dict:
    """`count` downtime windows on `service` starting `ahead_minutes` from now: with the default,
    just past the 48-hour horizon (and its 5-minute lead), so each notice is due at once."""
    from django.utils import timezone

    from contracts.maintenance.services import window_publish

    now = timezone.now()
    start = now + timedelta(minutes=ahead_minutes)
    ids = [
        window_publish(title=f"Drill window {n}", description="Disks swapped.", services=[_service(service)],
                       starts_at=start + timedelta(seconds=n), ends_at=start + timedelta(hours=2, seconds=n)).pk
        for n in range(count)
    ]  # fmt: skip
    return {"windows": ids}


def overdue_window(*, service: str = "drill-backup", due_minutes_ago: float) -> dict:
    """A window published `due_minutes_ago` ago whose notice fell due then (its start was then just
    inside the horizon): its notice has been overdue that long."""
    from django.utils import timezone

    from contracts.maintenance.services import window_publish

    published = timezone.now() - timedelta(minutes=due_minutes_ago)
    start = published + timedelta(hours=47)
    w = window_publish(title="Overdue drill window", description="Disks swapped.", services=[_service(service)],
                       starts_at=start, ends_at=start + timedelta(hours=2), now=published)  # fmt: skip
    return {"windows": [w.pk], "notice_due_at": w.notice_due_at.isoformat()}


def tickets(*, count: int, filed_minutes_ago: float, spread_seconds: float = 0, service: str = "drill-backup") -> dict:
    """`count` P1 tickets on one customer's contract, filed `filed_minutes_ago` ago (minus up to
    `spread_seconds`, spread evenly, so that their next escalations fall due one after another)."""
    from django.utils import timezone

    from contracts.models import Contract
    from tickets.services import ticket_open

    made = customers(contracts=1, contacts=2, service=service)
    contract = Contract.objects.get(pk=made["contracts"][0])
    filer = contract.contacts.order_by("pk").first()
    svc = contract.services.get()
    base = timezone.now() - timedelta(minutes=filed_minutes_ago)
    ids = []
    for n in range(count):
        at = base + timedelta(seconds=spread_seconds * n / max(1, count - 1)) if spread_seconds else base
        t = ticket_open(user=filer, contract=contract, service=svc, priority="P1", subject=f"Drill ticket {n}",
                        description="Backups fail.", now=at)  # fmt: skip
        ids.append(t.pk)
    return {"tickets": ids, "contract": contract.pk}


def outbox(*, count: int, dispatch: bool = True) -> dict:
    """`count` pending outbox rows, written the product's way; with dispatch=False nobody is told
    (the rows wait for a sweep, as when the broker was down at commit)."""
    from portal.core import outbox as box

    if not dispatch:
        box._dispatch = lambda keys: None
    tag = uuid.uuid4().hex[:6]
    emails = [
        box.Email(key=f"drill:{tag}:{n}", to=f"r{n}-{tag}@drill.example", template="password_reset",
                  context={"user": None, "reset_url": f"https://drill.example/r/{n}"})
        for n in range(count)
    ]  # fmt: skip
    box.outbox_enqueue_many(emails=emails)
    return {"keys": [e.key for e in emails]}


SCENARIOS = {f.__name__: f for f in (customers, window, overdue_window, tickets, outbox)}

if __name__ == "__main__":
    # Steps in one process (Django starts once): [[name, params], ...] -> [result, ...].
    _setup()
    print(json.dumps([SCENARIOS[name](**params) for name, params in json.loads(sys.argv[1])]))
