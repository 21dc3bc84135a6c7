"""Every page a fixed number of queries whatever the data's size (issue 9).

For each page of the product (customer pages, the staff admin, the API): build a small dataset,
count the queries of one GET, grow every kind of row the page shows several-fold (tickets with
their messages, attachments, pauses, events, crossings and escalation requests; organisations
with their own SLA copies; contracts; maintenance windows; outages with their updates and cause
changes; closed months; claims with their evidence, tickets and decisions; outbox rows; audit
entries), count again, and assert the same exact number both times. The number itself is
asserted too, so that a page that starts doing one more query shows here whatever the data.

The customer dashboard is not in the table: tests/test_dashboard.py asserts its own counts.
Time is frozen on Tuesday 3 November 2026, 10:00 in Nairobi: October has ended and is closed and
claimable, November is the month so far.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from knox.models import AuthToken

from contracts.maintenance.ical import organisation_ical_rotate
from contracts.maintenance.services import window_cancel, window_publish
from contracts.maintenance.sweep import maintenance_notices_send_due
from contracts.models import SLA, Outage, OutageUpdate
from contracts.outages.services import outage_set_cause
from contracts.services import sla_copy
from credits.closing import close_month
from credits.models import ClaimEvent, MonthReopening
from credits.services import claim_approve, claim_submit
from portal.core.audit import audit
from tickets.attachments import validate_upload
from tickets.channels import ticket_call_log
from tickets.models import SLACrossing, Ticket
from tickets.services import (
    escalation_acknowledge,
    ticket_assign,
    ticket_escalate_now,
    ticket_open,
    ticket_reply,
    ticket_request_escalation,
    ticket_set_status,
)
from tickets.sweeps import check_sla_deadlines, escalate_due_tickets

from .factories import ContractFactory, OrganisationFactory, ServiceFactory, StaffFactory, UserFactory

NBO = ZoneInfo("Africa/Nairobi")
OCT = date(2026, 10, 1)
NOW = datetime(2026, 11, 3, 10, 0, tzinfo=NBO)  # Tuesday: October is closed and claimable
BUILT = NOW - timedelta(hours=2)  # when the tickets and claims are made
H = timedelta(hours=1)
DAY = timedelta(days=1)
pytestmark = pytest.mark.django_db


def upload(name="log.txt", body=b"backup job 17 failed\n"):
    f = SimpleUploadedFile(name, body)
    f.checked_type = validate_upload(f)  # what the forms and the API do before the services
    return f


def kaluari() -> SLA:
    return SLA.objects.get(template_key="kaluari-cloud-backup")


# --- The data -----------------------------------------------------------------------------------
class World:
    """Acme (Alice, Bob) with contract KAL-0001, Globex (Charlie), Sam and other staff; one ticket,
    claim, outage, maintenance window and closed month whose own pages are counted, and `grow(n)`,
    which adds n of everything around them (and to them)."""

    def __init__(self):
        # The people and contracts of tests/conftest.py (acme, alice, bob, globex, charlie, sam,
        # acme_contract, globex_contract), made here because the data is built once per module.
        self.acme = acme = OrganisationFactory(name="Acme Savings", slug="acme")
        self.alice = alice = UserFactory(
            email="alice@acme.example", name="Alice Achieng", organisation=acme, customer_role="admin"
        )
        self.bob = bob = UserFactory(email="bob@acme.example", name="Bob Barasa", organisation=acme)
        globex = OrganisationFactory(name="Globex Retail", slug="globex")
        self.charlie = UserFactory(
            email="charlie@globex.example", name="Charlie Carlsson", organisation=globex, customer_role="admin"
        )
        self.sam = StaffFactory(email="sam@vendor.example", name="Sam Support", phone="+254 728 999 222")
        self.contract = acme_contract = ContractFactory(
            organisation=acme, reference="KAL-0001", name="Cloud Backup for Acme", contacts=[alice, bob]
        )
        self.globex_contract = ContractFactory(
            organisation=globex, reference="KLA-0001", name="AI Assistant for Globex", contacts=[self.charlie]
        )
        self.backup = acme_contract.services.get()
        self.lena = StaffFactory(email="lena@vendor.example", name="Lena Lead", staff_role="support_lead")
        self.ayo = StaffFactory(email="ayo@vendor.example", name="Ayo AM", staff_role="account_manager")
        self.sol = StaffFactory(email="sol@vendor.example", name="Sol Security", staff_role="security")
        self.units = 0
        # October: 500 minutes down on the 10th (the 10% tier), closed on 1 November.
        self.outage = self._outage("Storage down", datetime(2026, 10, 10, 2, 0, tzinfo=NBO), 500, [self.backup])
        self.window = self._window("Storage upgrade", datetime(2026, 11, 10, 23, 0, tzinfo=NBO), [self.backup])
        close_month(month=OCT, now=datetime(2026, 11, 1, 1, 0, tzinfo=NBO))
        with time_machine.travel(BUILT, tick=False):
            self.ticket = ticket_open(
                user=alice, contract=acme_contract, service=self.backup, priority="P3", subject="Restore is slow",
                description="A restore of 2 GB takes hours.", files=[upload()],
            )  # fmt: skip
            claim_submit(
                contract=acme_contract, month=OCT, user=alice, note="Backups failed.", tickets=[self.ticket],
                files=[upload()],
            )  # fmt: skip
            self._call(self.ticket, internal=False)
        self.acme_tickets = [self.ticket]
        organisation_ical_rotate(organisation=acme)
        self.ical_token = acme.ical_token
        _, self.api_token = AuthToken.objects.create(user=alice)

    def _call(self, ticket, internal: bool) -> None:
        ticket_call_log(
            ticket=ticket, actor=self.sam, direction="outbound", contact=self.alice, started_at=BUILT,
            duration=timedelta(minutes=4), notes="Called about the restore.", internal=internal,
        )  # fmt: skip

    @staticmethod
    def _outage(title, start, minutes, services, **fields):
        o = Outage.objects.create(title=title, starts_at=start, ends_at=start + timedelta(minutes=minutes), **fields)
        o.services.set(services)
        return o

    @staticmethod
    def _window(title, start, services, hours=2):
        with time_machine.travel(start - 10 * DAY, tick=False):
            return window_publish(
                title=title, description=f"{title}: details.", services=services, starts_at=start,
                ends_at=start + hours * H,
            )  # fmt: skip

    def grow(self, n: int) -> None:
        for _ in range(n):
            self.units += 1
            self._unit(self.units)

    def _unit(self, k: int) -> None:
        alice, bob, sam, lena = self.alice, self.bob, self.sam, self.lena
        # Another customer on its own copy of the Kaluari terms, and another contract of Acme's.
        org = OrganisationFactory(account_manager=self.ayo if k % 2 else None)
        user = UserFactory(organisation=org, customer_role="admin")
        own = sla_copy(
            source=kaluari(), name=f"Kaluari for {org.name}", effective_from=datetime(2026, 1, 1, tzinfo=NBO)
        )
        extra = ServiceFactory()
        acme_more = ContractFactory(organisation=self.acme, services=[self.backup, extra], contacts=[alice, bob])
        other = ContractFactory(organisation=org, sla=own, services=[self.backup], contacts=[user])

        # Outages: in October (with updates and an audited cause change) and this month; the
        # main outage gets more updates and cause changes.
        start = datetime(2026, 10, 11, 1, 0, tzinfo=NBO) + k * DAY
        o = self._outage(f"Outage {k}", start, 30, [self.backup, extra])
        OutageUpdate.objects.create(outage=o, at=start + 10 * timedelta(minutes=1), body="Investigating.")
        OutageUpdate.objects.create(outage=o, at=start + 30 * timedelta(minutes=1), body="Fixed.")
        outage_set_cause(outage=o, actor=sam, cause="ddos", now=BUILT)
        self._outage(f"Blip {k}", datetime(2026, 11, 1, 3, 0, tzinfo=NBO) + k * H, 10, [self.backup])
        OutageUpdate.objects.create(outage=self.outage, at=self.outage.starts_at + k * H, body=f"Update {k}.")
        cause = "unplanned" if self.outage.cause != "unplanned" else "third_party"
        outage_set_cause(outage=self.outage, actor=sam, cause=cause, now=BUILT)

        # Maintenance: one still to come, one past (announced in time), one cancelled.
        self._window(f"Upgrade {k}", datetime(2026, 11, 11, 23, 0, tzinfo=NBO) + k * DAY, [self.backup, extra])
        past = self._window(f"Patch {k}", datetime(2026, 10, 13, 23, 0, tzinfo=NBO) + k * DAY, [self.backup])
        maintenance_notices_send_due(now=past.starts_at - 48 * H)
        gone = self._window(f"Dropped {k}", datetime(2026, 11, 20, 23, 0, tzinfo=NBO) + k * DAY, [self.backup])
        maintenance_notices_send_due(now=BUILT)
        window_cancel(window=gone, now=BUILT)

        # Closed months: October for the new contracts (its breakdown names every October outage and
        # window so far), and one more month back, with an outage, for everyone.
        close_month(month=OCT, now=datetime(2026, 11, 1, 1, 0, tzinfo=NBO))
        self._outage(f"Old {k}", datetime(2026, 10 - k, 5, 1, 0, tzinfo=NBO), 45, [self.backup])
        close_month(month=date(2026, 10 - k, 1), now=datetime(2026, 11, 1, 1, 0, tzinfo=NBO))

        with time_machine.travel(BUILT, tick=False):
            # Tickets with a conversation, files, a pause, an escalation request, an assignee.
            tickets = [
                ticket_open(user=alice, contract=self.contract, service=self.backup, priority="P1", subject=f"P1 {k}",
                            description="Nothing backs up.", files=[upload()]),
                ticket_open(user=bob, contract=acme_more, service=extra, priority="P3", subject=f"P3 {k}",
                            description="Restores are slow."),
                ticket_open(user=user, contract=other, service=self.backup, priority="P2", subject=f"P2 {k}",
                            description="A job fails."),
            ]  # fmt: skip
            for t in tickets:
                ticket_reply(ticket=t, author=sam, body="Looking into it.")
                ticket_set_status(ticket=t, actor=sam, status=Ticket.Status.WAITING)
                ticket_reply(ticket=t, author=t.created_by, body="Here is the log.", files=[upload()])
                ticket_assign(ticket=t, actor=sam, assignee=lena if k % 2 else sam)
            request = ticket_request_escalation(ticket=tickets[0], user=alice, reason="It is urgent.")
            escalation_acknowledge(request=request, actor=sam)
            ticket_request_escalation(ticket=tickets[1], user=bob, reason="Please hurry.")  # pending
            for t in (tickets[0], tickets[0], tickets[2], tickets[2]):  # level 3: the account manager
                ticket_escalate_now(ticket=t, actor=sam)
            SLACrossing.objects.create(
                ticket=tickets[0], clock="first_response", kind="breach", at=BUILT, recorded_at=BUILT
            )

            # The main ticket: more of everything on its page.
            t = self.ticket
            ticket_reply(ticket=t, author=sam, body=f"Reply {k}.", files=[upload("trace.txt")])
            ticket_reply(ticket=t, author=lena, body=f"Note {k}.", internal=True, files=[upload("note.txt")])
            ticket_set_status(ticket=t, actor=sam, status=Ticket.Status.WAITING)
            ticket_reply(ticket=t, author=bob if k % 2 else alice, body=f"Answer {k}.", files=[upload("more.txt")])
            request = ticket_request_escalation(ticket=t, user=alice, reason=f"Still slow {k}.")
            escalation_acknowledge(request=request, actor=lena if k % 2 else sam)
            SLACrossing.objects.create(ticket=t, clock=f"ack:{request.pk}", kind="warning", at=BUILT, recorded_at=BUILT)
            ticket_assign(ticket=t, actor=sam, assignee=lena if k % 2 else sam)
            self._call(t, internal=False)
            self._call(t, internal=True)

            # Claims: on Acme's new contract (awaiting review) and the new customer's (approved).
            # The latest of Acme's is the one whose pages are counted: its month's breakdown names
            # every October outage and window so far, and it has k files, tickets, events, and
            # reopenings of its month (rows: through the service the month would stay reopened).
            self.acme_tickets += tickets[:2]
            self.claim = claim_submit(
                contract=acme_more, month=OCT, user=bob, note="Slow.", tickets=self.acme_tickets[-k:],
                files=[upload(f"evidence-{j}.txt") for j in range(k)],
            )  # fmt: skip
            self.month, self.claim_contract = self.claim.monthly_uptime, acme_more
            for j in range(k):
                actor = (alice, bob, sam, lena)[j % 4]
                ClaimEvent.objects.create(
                    claim=self.claim, kind=ClaimEvent.Kind.ADJUSTED, at=BUILT, actor=actor, data={"j": j}
                )
                MonthReopening.objects.create(
                    monthly_uptime=self.month, at=BUILT, actor=actor, reason=f"Fix {j}", previous={}
                )
            approved = claim_submit(contract=other, month=OCT, user=user, tickets=[tickets[2]])
            claim_approve(claim=approved, actor=lena, amount=Decimal("100"), reason="Goodwill.")
            audit(actor=lena, action="test.grown", target=tickets[0], after={"k": k})
        # The sweeps, as beat runs them: escalations, warnings, breaches (and their emails).
        escalate_due_tickets(now=NOW)
        check_sla_deadlines(now=NOW)


# --- The pages ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Page:
    who: str  # alice (customer admin), sam, ayo, sol (staff in the admin: agent, account manager, security),
    # anonymous, token (API, Alice's token)
    url: object  # World -> str
    queries: int | dict  # the same on every backend, or {connection.vendor: count}
    grows: bool = True  # the answer shows more of the data when it grows (a check of the data)
    marks: tuple = ()

    def expected(self, vendor: str) -> int:
        return self.queries if isinstance(self.queries, int) else self.queries[vendor]


def url(name: str, *objects: str, query: str = ""):
    """A page's URL, reversed with the primary keys of the World's `objects` ("ticket" -> w.ticket.pk)."""
    return lambda w: reverse(name, args=[getattr(w, o).pk for o in objects]) + query


QUEUE = "admin:tickets_ticket_changelist"
PAGES = {
    # Customer pages (Alice, a customer admin at Acme; the feed and the status page need no login).
    # The ticket pages read the clock columns stored on the tickets: their pauses are never read, and
    # "at risk" is a filter of the tickets' query (tickets.deadlines), not their clocks computed one by one.
    "ticket list": Page("alice", url("ticket-list"), 14),
    "ticket list, open": Page("alice", url("ticket-list", query="?status=open"), 14),
    "ticket list, P1": Page("alice", url("ticket-list", query="?priority=P1"), 14),
    # The filers the word names are one query (tickets.search); the open tickets found need one fewer
    # than the whole list.
    "ticket list, searched": Page("alice", url("ticket-list", query="?q=slow&status=open"), 14),
    "ticket list, at risk": Page("alice", url("ticket-list", query="?sla=at_risk"), 14),
    # +1: the calls shown to the customer (asked only of a ticket that has some).
    "ticket page": Page("alice", url("ticket-detail", "ticket"), 13),
    # +1: the organisation's contracts the user is not a support contact of (named, not offered).
    "ticket form": Page("alice", url("ticket-new"), 7),
    "ticket form, a contract": Page("alice", lambda w: reverse("ticket-new") + f"?contract={w.contract.pk}", 10),
    "maintenance list": Page("alice", url("maintenance-list"), 9),
    "maintenance iCal feed": Page("anonymous", lambda w: reverse("maintenance-ical", args=[w.ical_token]), 5),
    "contract list": Page("alice", url("contract-list"), 3),
    "contract page": Page("alice", url("contract-detail", "contract"), 14, grows=False),
    "uptime page": Page("alice", url("contract-uptime", "contract"), 12),
    "claim list": Page("alice", url("claim-list"), 8),
    "claim page": Page("alice", url("claim-detail", "claim"), 7),  # + the incidents of its month
    "claim form": Page("alice", url("claim-new"), 7),
    "claim form, a month": Page(
        "alice", lambda w: reverse("claim-new") + f"?contract={w.contract.pk}&month=2026-10", 7
    ),
    "account page": Page("alice", url("account"), 3, grows=False),
    # The public incidents (with their services and published updates), services, outages, windows.
    "status page": Page("anonymous", url("status"), 6),
    # The staff admin: Sam (a support agent), Ayo (an account manager: claims and months), Sol (security:
    # the audit log). Each counts their permissions (their own and their role's: 1 query,
    # portal.core.backends) and the one query of the second factor (portal.core.staff_otp: whether they have a device; in production,
    # django-otp loading the device that verified the session).
    # The queue shows each ticket's escalation level, not whom the customer calls at it: no level's
    # contact (the organisations' managers, the staff with the level's role) is looked up.
    "queue": Page("sam", url(QUEUE), 15),
    "queue, breached": Page("sam", url(QUEUE, query="?sla=breached"), 15),
    "queue, sorted by assignee": Page("sam", url(QUEUE, query="?o=9"), 15),
    # The organisations and filers the words name are one query (tickets.search; none for a number).
    "queue, searched": Page("sam", url(QUEUE, query="?q=backs"), 16),
    "queue, searched by number": Page("sam", lambda w: reverse(QUEUE) + f"?q=%23{w.ticket.pk}", 15, grows=False),
    # +2: the calls, and the organisation's people the call form offers; +1: the filer's rating; +1: the
    # canned replies Sam may insert.
    "ticket change page": Page(
        "sam", url("admin:tickets_ticket_change", "ticket"), 40
    ),  # + incident suggested, offered
    "escalation requests": Page("sam", url("admin:tickets_escalationrequest_changelist", query="?state=all"), 8),
    "SLA crossings": Page("sam", url("admin:tickets_slacrossing_changelist"), 10),
    "claim changelist": Page("ayo", url("admin:credits_claim_changelist"), 9),
    "claim changelist, all": Page("ayo", url("admin:credits_claim_changelist", query="?status=all"), 9),
    "claim change page": Page("ayo", url("admin:credits_claim_change", "claim"), 14),
    "monthly uptime changelist": Page("ayo", url("admin:credits_monthlyuptime_changelist"), 9),
    "monthly uptime change page": Page("ayo", url("admin:credits_monthlyuptime_change", "month"), 13),
    "maintenance changelist": Page("sam", url("admin:contracts_maintenancewindow_changelist"), 10),
    "maintenance change page": Page("sam", url("admin:contracts_maintenancewindow_change", "window"), 17),
    "outage changelist": Page("sam", url("admin:contracts_outage_changelist"), 11),
    "outage change page": Page("sam", url("admin:contracts_outage_change", "outage"), 10),  # + its scoped contracts
    # Sam does not see vulnerability reports' emails: which tickets are reports is one query more.
    "outbox changelist": Page("sam", url("admin:portal_outboxmessage_changelist"), 7),  # no years, no templates read
    "audit log": Page("sol", url("admin:portal_auditentry_changelist"), 11),
    # The API (Alice's token). There is no maintenance endpoint in portal/api_urls.py.
    "API tickets": Page("token", url("api-ticket-list"), 12),
    "API tickets, open": Page("token", url("api-ticket-list", query="?status=open"), 12),
    "API ticket": Page("token", url("api-ticket-detail", "ticket"), 10, grows=False),
    "API replies": Page("token", url("api-ticket-replies", "ticket"), 5),
    "API attachments": Page("token", url("api-ticket-attachments", "ticket"), 4),
    "API claims": Page("token", url("api-claim-list"), 5),
    "API claim": Page("token", url("api-claim-detail", "claim"), 4),
    "API uptime, closed month": Page("token", url("api-contract-uptime", "claim_contract", query="?month=2026-10"), 8),
    "API uptime, so far": Page("token", url("api-contract-uptime", "contract", query="?month=2026-11"), 7),
}


# --- Counting -----------------------------------------------------------------------------------
@dataclass
class Measured:
    queries: list[str] | None = None  # the SQL of the GET
    size: int = 0  # of the answer: it grows with the data
    error: str = ""


def measure(w: World) -> dict[str, Measured]:
    from tickets import terms_cache

    clients = {"anonymous": Client(), "token": Client(HTTP_AUTHORIZATION=f"Token {w.api_token}")}
    for who in ("alice", "sam", "ayo", "sol"):
        clients[who] = Client()
        clients[who].force_login(getattr(w, who))
    out = {}
    for name, page in PAGES.items():
        url = page.url(w)
        ContentType.objects.clear_cache()  # each page pays for the content types it needs
        terms_cache.forget()  # and for loading the SLA terms, as the first request of a process does
        with time_machine.travel(NOW, tick=False), CaptureQueriesContext(connection) as ctx:
            try:
                response = clients[page.who].get(url)
            except Exception as exc:  # noqa: BLE001 - reported by that page's test
                out[name] = Measured(error=f"GET {url} raised {exc!r}")
                continue
        if response.status_code != 200:
            out[name] = Measured(error=f"GET {url} answered {response.status_code}")
        else:
            out[name] = Measured([q["sql"] for q in ctx.captured_queries], len(response.content))
    return out


@pytest.fixture(scope="module")
def measured(django_db_setup, django_db_blocker, tmp_path_factory):
    """Every page counted on the small data, then on the data grown four-fold: built once for the
    module (building takes a while) inside a transaction that is rolled back."""
    from django.core.cache import cache
    from django.db import transaction
    from django.test import override_settings

    from portal.celery import app

    hasher = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    with (
        django_db_blocker.unblock(),
        override_settings(MEDIA_ROOT=tmp_path_factory.mktemp("media"), PASSWORD_HASHERS=hasher),
    ):
        app.conf.task_always_eager = app.conf.task_eager_propagates = True  # as tests/conftest.py does
        cache.clear()
        try:
            with transaction.atomic():
                world = World()
                world.grow(1)
                small = measure(world)
                world.grow(3)
                large = measure(world)
                transaction.set_rollback(True)
        finally:
            app.conf.task_always_eager = False
            cache.clear()
    return small, large


def shape(sql: str) -> str:
    sql = re.sub(r"\b\d+\b", "N", re.sub(r"'[^']*'", "'…'", sql))
    return re.sub(r"IN \((N|%s)(, (N|%s))*\)", "IN (…)", sql)


def growth(small: list[str], large: list[str]) -> str:
    """The queries whose number differs between the two sizes, as a readable diff."""
    a, b = Counter(map(shape, small)), Counter(map(shape, large))
    lines = [f"{b[q] - a[q]:+d} x {q[:300]}" for q in sorted(set(a) | set(b)) if a[q] != b[q]]
    return "\n".join(lines)


@pytest.mark.parametrize("name", [pytest.param(n, marks=p.marks) if p.marks else n for n, p in PAGES.items()])
def test_queries_do_not_grow_with_the_data(measured, name):
    small, large = (m[name] for m in measured)
    assert not small.error and not large.error, small.error or large.error
    expected = PAGES[name].expected(connection.vendor)
    counts = (len(small.queries), len(large.queries))
    assert counts[0] == counts[1], f"{name}: {counts[0]} -> {counts[1]} queries\n" + growth(
        small.queries, large.queries
    )
    assert counts == (expected, expected), f"{name}: {counts[0]} queries, expected {expected}"
    if PAGES[name].grows:
        assert large.size > small.size, f"{name}: the grown data does not reach the page"
