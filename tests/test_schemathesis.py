"""The API against its own OpenAPI schema (/api/schema/), in-process through the WSGI application,
with schemathesis: every operation, with generated valid and invalid input, as Alice (a customer
of Acme, authenticated by her DRF token) on a seeded database. No answer is a 5xx, and every
answer conforms to the schema: a documented status, content type, headers and body.

The path ids are mostly Alice's own objects (so that the operations do their work, not only their
404), sometimes anything (another organisation's or none: the documented 404). The Alertmanager
webhook is called with its service's bearer token instead of Alice's. Time is frozen at
2026-11-03 10:00 in Nairobi (ticking): October's claims are open.

The database is seeded per operation inside pytest-django's rolled-back transaction: the requests
run in this thread, on the test's own connection, so no transaction=True (and no flush of the SLA
templates the migrations install) is needed."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import schemathesis
import time_machine
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from knox.models import AuthToken

from contracts.incidents.services import incident_open
from contracts.maintenance.services import window_publish
from contracts.models import Outage
from contracts.outages.alerts import service_rotate_webhook_token
from credits.services import claim_submit
from portal.wsgi import application
from tickets.services import ticket_open, ticket_reply

from .factories import ContractFactory, OrganisationFactory, ServiceFactory, StaffFactory, UserFactory

NBO = ZoneInfo("Africa/Nairobi")
NOW = datetime(2026, 11, 3, 10, 0, tzinfo=NBO)

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)

# Every other built-in check runs: no 5xx, a documented status and content type, conforming
# headers and bodies, 401 without credentials, 405 for an undocumented method, ... These two judge
# whether input is accepted, not the answers:
# - positive_data_acceptance: schema-valid input is refused by the rules, with a 400 and a message
#   (a month that has not ended, a contract of another organisation, a reply on a closed ticket);
# - negative_data_rejection: DRF is lenient where it is harmless: a number for a string is taken as
#   its text, a blank query value (`?status=`) means no filter, a malformed `offset` means 0.
LENIENT = [schemathesis.checks.positive_data_acceptance, schemathesis.checks.negative_data_rejection]


@pytest.fixture
def seeded(db, settings, tmp_path):
    """Acme (Alice, her token, a contract, a ticket with a reply and a file, a claim for October)
    and Globex (its own contract and ticket: the ids Alice must never reach)."""
    settings.MEDIA_ROOT = tmp_path
    with time_machine.travel(NOW, tick=False):
        sam = StaffFactory(email="sam@vendor.example", name="Sam Support")
        acme = OrganisationFactory(name="Acme Savings", slug="acme")
        alice = UserFactory(email="alice@acme.example", name="Alice Achieng", organisation=acme, customer_role="admin")
        backup = ServiceFactory(name="Cloud Backup", slug="cloud-backup")
        contract = ContractFactory(organisation=acme, reference="KAL-0001", services=[backup], contacts=[alice])
        start = datetime(2026, 10, 10, 2, 0, tzinfo=NBO)
        Outage.objects.create(title="Storage down", starts_at=start, ends_at=start + timedelta(hours=9)).services.set(
            [backup]
        )
        log = SimpleUploadedFile("agent.log", b"backup failed\n", content_type="text/plain")
        ticket = ticket_open(
            user=alice, contract=contract, service=backup, priority="P2", subject="Backups fail",
            description="Nothing backs up.", files=[log],
        )  # fmt: skip
        ticket_reply(ticket=ticket, author=sam, body="Looking into it.")
        claim = claim_submit(contract=contract, month=date(2026, 10, 1), user=alice, note="The 10th", tickets=[ticket])

        globex = OrganisationFactory(name="Globex Retail", slug="globex")
        charlie = UserFactory(email="charlie@globex.example", organisation=globex, customer_role="admin")
        assistant = ServiceFactory(name="AI Assistant", slug="ai-assistant")
        # A second contract of Alice's with October still to claim: one claim can be filed.
        claimable = ContractFactory(organisation=acme, reference="KAL-0002", services=[backup], contacts=[alice])
        theirs = ContractFactory(organisation=globex, reference="KLA-0001", services=[assistant], contacts=[charlie])
        ticket_open(
            user=charlie, contract=theirs, service=assistant, priority="P1", subject="Globex only",
            description="Not Alice's business.",
        )  # fmt: skip
        webhook_token = service_rotate_webhook_token(service=backup)
        window = window_publish(
            title="Storage upgrade", description="New disks.", services=[backup],
            starts_at=NOW + timedelta(days=5), ends_at=NOW + timedelta(days=5, hours=2),
        )  # fmt: skip
        outage = Outage.objects.filter(services=backup).get()
        incident = incident_open(
            outage=outage, title="Storage down", status="resolved", body="Restored at 11:00.", actor=sam
        )
    return {
        "token": AuthToken.objects.create(user=alice)[1],
        "webhook_token": webhook_token,
        "service": backup.pk,
        "claimable_contract": claimable.pk,
        "ids": {
            "/api/v1/tickets/": ticket.pk,
            "/api/v1/claims/": claim.pk,
            "/api/v1/contracts/": contract.pk,
            "/api/v1/services/": backup.pk,
            "/api/v1/maintenance-windows/": window.pk,
            "/api/v1/outages/": outage.pk,
            "/api/v1/incidents/": incident.pk,
        },
    }


@pytest.fixture
def in_process(seeded):
    """Requests go through the WSGI handler, which closes "old" database connections when a request
    starts and ends: inside the test's transaction that would close the test's own connection
    (PostgreSQL). Django's test client disconnects them the same way."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        with time_machine.travel(NOW, tick=True):
            yield seeded
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _mostly(value) -> bool:
    """Two thirds of the generated non-negative integers (the rest stay as generated: anyone's or none)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0 and value % 3 != 2


def _aim_at_alices_objects(case, world: dict) -> None:
    """Make most well-typed ids name Alice's objects, so that the operations do their work (201s,
    200s, their rules' 400s) and not only their 404; input of the wrong type is left as generated."""
    path = case.path_parameters or {}
    if _mostly(path.get("id")):
        path["id"] = next(pk for prefix, pk in world["ids"].items() if case.path.startswith(prefix))
    body = case.body if isinstance(case.body, dict) else {}
    if _mostly(body.get("contract")):
        body["contract"] = world["claimable_contract"] if "claims" in case.path else world["ids"]["/api/v1/contracts/"]
        if "month" in body:
            body["month"] = "2026-10"  # ended, claims open until 1 December
    if _mostly(body.get("service")):
        body["service"] = world["service"]
    if isinstance(body.get("tickets"), list) and all(_mostly(t) for t in body["tickets"]):
        body["tickets"] = [world["ids"]["/api/v1/tickets/"]] * bool(body["tickets"])
    query = case.query or {}
    if isinstance(query.get("month"), str) and query["month"][-1:].isdigit() and int(query["month"][-1]) % 3:
        query["month"] = "2026-10" if int(query["month"][-1]) % 2 else "2026-11"


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_the_api_conforms_to_its_schema_and_never_fails(case, in_process):
    _aim_at_alices_objects(case, in_process)
    if case.path == "/api/v1/hooks/alertmanager/":
        headers = {"Authorization": f"Bearer {in_process['webhook_token']}"}
    else:
        headers = {"Authorization": f"Token {in_process['token']}"}
    # Alice's writes are throttled (120 a minute, tests/test_accounts.py; the schema documents the 429)
    # and a test of one operation sends about a hundred: each request starts with fresh counters, so
    # that the operations do their work.
    cache.clear()
    case.call_and_validate(headers=headers, excluded_checks=LENIENT)
