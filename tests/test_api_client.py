"""A client generated from the live OpenAPI schema by openapi-python-client (pinned in
requirements.txt) works against the running portal with no hand edits: generated into a tmp dir
without a warning, imported, and used by Alice (Acme, a customer admin) with a real knox token
against pytest-django's live server: every list operation the client has (found by name, so a
list added later is called too), a ticket filed and worked (reply, file, escalate, close), a claim
filed with its evidence, a month read, an email choice set, and another organisation's contract a
404.

Time is frozen (ticking) at 2026-11-03 10:00 in Nairobi for the test and the server's thread:
October has ended and its claims are open."""

from __future__ import annotations

import importlib
import io
import pkgutil
import subprocess
import sys
import urllib.request
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from knox.models import AuthToken

from contracts.maintenance.services import window_publish
from contracts.models import Outage
from credits.models import Claim
from tickets.models import Ticket

from .factories import ContractFactory, OrganisationFactory, ServiceFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

NBO = ZoneInfo("Africa/Nairobi")
NOW = datetime(2026, 11, 3, 10, 0, tzinfo=NBO)
GENERATOR = f"{sys.prefix}/bin/openapi-python-client"
CONFIG = "post_hooks: []\n"  # no formatter run on the output: the client as generated


@pytest.fixture
def world(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    with time_machine.travel(NOW, tick=False):
        acme = OrganisationFactory(name="Acme Savings", slug="acme")
        alice = UserFactory(email="alice@acme.example", name="Alice Achieng", organisation=acme, customer_role="admin")
        backup = ServiceFactory(name="Cloud Backup", slug="cloud-backup")
        contract = ContractFactory(
            organisation=acme, reference="KAL-0001", services=[backup], contacts=[alice], starts_on=date(2026, 1, 1)
        )
        start = datetime(2026, 10, 10, 2, 0, tzinfo=NBO)
        outage = Outage.objects.create(title="Storage down", starts_at=start, ends_at=start + timedelta(hours=9))
        outage.services.set([backup])
        window_publish(
            title="Storage upgrade", description="New disks.", services=[backup],
            starts_at=NOW + timedelta(days=5), ends_at=NOW + timedelta(days=5, hours=2),
        )  # fmt: skip
        globex = OrganisationFactory(name="Globex Retail", slug="globex")
        theirs = ContractFactory(organisation=globex, reference="KLA-0001", services=[ServiceFactory(slug="ai")])
        _, token = AuthToken.objects.create(user=alice)
    return {"contract": contract, "service": backup, "outage": outage, "theirs": theirs, "token": token}


def generate(schema_url: str, where) -> str:
    """The client package generated from the live schema; returns its package name."""
    with urllib.request.urlopen(schema_url) as response:  # noqa: S310 (the live server's own URL)
        (where / "schema.json").write_bytes(response.read())
    (where / "config.yml").write_text(CONFIG)
    done = subprocess.run(
        [GENERATOR, "generate", "--path", str(where / "schema.json"), "--config", str(where / "config.yml"),
         "--meta", "none", "--output-path", str(where / "sla_client")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Warning" not in output and "Unable" not in output, output
    return "sla_client"


@pytest.fixture
def generated(live_server, world, tmp_path):
    with time_machine.travel(NOW, tick=True):
        name = generate(f"{live_server.url}/api/schema/?format=json", tmp_path)
        sys.path.insert(0, str(tmp_path))
        try:
            package = importlib.import_module(name)
            client = package.AuthenticatedClient(base_url=live_server.url, token=world["token"], prefix="Token")
            with client:  # closes its keep-alive connection before the live server stops
                yield package, client
        finally:
            sys.path.remove(str(tmp_path))
            for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
                del sys.modules[module]


def operation(package, name: str):
    """The generated module of an operation, whichever tag it is under."""
    api = importlib.import_module(f"{package.__name__}.api")
    for group in pkgutil.iter_modules(api.__path__):
        try:
            return importlib.import_module(f"{package.__name__}.api.{group.name}.{name}")
        except ModuleNotFoundError:
            continue
    raise LookupError(name)


def models(package):
    return importlib.import_module(f"{package.__name__}.models")


def test_the_generated_client_lists_every_collection_files_a_ticket_and_a_claim_and_reads_a_month(generated, world):
    package, client = generated
    m = models(package)
    contract, service = world["contract"], world["service"]

    # File a ticket, then work it: reply, a file, escalate.
    filed = operation(package, "tickets_create").sync_detailed(
        client=client,
        body=m.TicketCreateRequest(
            contract=contract.pk, service=service.pk, priority=m.Priority.P2, subject="Backups fail",
            description="Nothing backs up since last night.",
        ),
    )  # fmt: skip
    assert filed.status_code == 201, filed.content
    ticket = filed.parsed
    assert ticket.priority == m.Priority.P2 and ticket.status == m.TicketStatus.NEW
    assert ticket.sla_state == m.SlaState.ON_TRACK and ticket.first_response_due is not None
    reply = operation(package, "ticket_replies_create").sync_detailed(
        ticket.id, client=client, body=m.ReplyCreateRequest(body="Since 02:00.")
    )
    assert reply.status_code == 201 and reply.parsed.body == "Since 02:00."
    log = package.types.File(payload=io.BytesIO(b"backup failed\n"), file_name="agent.log", mime_type="text/plain")
    upload = operation(package, "ticket_attachments_create").sync_detailed(
        ticket.id, client=client, body=m.AttachmentUploadRequest(file=log)
    )
    assert upload.status_code == 201 and upload.parsed.name == "agent.log", upload.content
    escalated = operation(package, "tickets_escalate").sync_detailed(
        ticket.id, client=client, body=m.EscalationRequestCreateRequest(reason="Month-end close tonight.")
    )
    assert escalated.status_code == 201 and escalated.parsed.ticket == ticket.id

    # File a claim for October, with a file of evidence.
    claimed = operation(package, "claims_create").sync_detailed(
        client=client,
        body=m.ClaimCreateRequest(contract=contract.pk, month="2026-10", note="The 10th", tickets=[ticket.id]),
    )
    assert claimed.status_code == 201, claimed.content
    claim = claimed.parsed
    assert claim.status == m.ClaimStatus.SUBMITTED and claim.tickets == [ticket.id]
    assert claim.credit_kind in list(m.CreditKind)
    evidence = package.types.File(payload=io.BytesIO(b"graphs\n"), file_name="graphs.txt", mime_type="text/plain")
    added = operation(package, "claim_attachments_create").sync_detailed(
        claim.id, client=client, body=m.ClaimAttachmentUploadRequest(file=evidence)
    )
    assert added.status_code == 201 and added.parsed.name == "graphs.txt", added.content

    # Read a month: October, closed when the claim was filed, with the outage in its breakdown.
    month = operation(package, "contracts_uptime_retrieve").sync_detailed(contract.pk, client=client, month="2026-10")
    assert month.status_code == 200, month.content
    assert month.parsed.state == m.MonthState.CLOSED and month.parsed.down_minutes == 540
    assert [(line.kind, line.title) for line in month.parsed.breakdown] == [(m.BreakdownKind.OUTAGE, "Storage down")]
    so_far = operation(package, "contracts_uptime_retrieve").sync_detailed(contract.pk, client=client, month="2026-11")
    assert so_far.parsed.state == m.MonthState.SO_FAR

    # Email choices: read, and one turned off (a designated contact's maintenance notices still come).
    choices = operation(package, "notification_preferences_set").sync_detailed(
        client=client, body=m.EmailChoiceUpdateRequest(choice=m.EmailChoiceKind.MAINTENANCE, enabled=False)
    )
    assert choices.status_code == 200, choices.content
    rows = {row.choice: row for row in choices.parsed.choices}
    assert (rows[m.EmailChoiceKind.MAINTENANCE].enabled, rows[m.EmailChoiceKind.MAINTENANCE].chosen) == (False, True)
    assert "always" in rows[m.EmailChoiceKind.MAINTENANCE].always
    read = operation(package, "notification_preferences_retrieve").sync_detailed(client=client)
    assert [row.choice for row in read.parsed.choices] == list(rows)

    # Every list the client has answers with a page of typed rows (the nested ones on the ticket).
    api = importlib.import_module(f"{package.__name__}.api").__path__[0]
    lists = sorted(
        mod.name
        for group in pkgutil.iter_modules([api])
        for mod in pkgutil.iter_modules([f"{api}/{group.name}"])
        if mod.name.endswith("_list")
    )
    assert lists == [
        "claims_list", "contracts_list", "incidents_list", "maintenance_windows_list", "months_list", "outages_list",
        "services_list", "ticket_attachments_list", "ticket_replies_list", "tickets_list",
    ]  # fmt: skip
    pages = {}
    for name in lists:
        call = operation(package, name).sync_detailed
        page = call(ticket.id, client=client) if name.startswith("ticket_") else call(client=client)
        assert page.status_code == 200, (name, page.content)
        assert type(page.parsed).__name__.startswith("Paginated"), (name, page.parsed)
        pages[name] = page.parsed
    assert [t.id for t in pages["tickets_list"].results] == [ticket.id]
    assert [c.id for c in pages["claims_list"].results] == [claim.id]
    assert [(r.contract, r.month, r.claim) for r in pages["months_list"].results] == [
        (contract.pk, "2026-10", claim.id)
    ]
    assert [s.name for s in pages["services_list"].results] == ["Cloud Backup"]
    assert [o.title for o in pages["outages_list"].results] == ["Storage down"]
    assert [w.title for w in pages["maintenance_windows_list"].results] == ["Storage upgrade"]
    assert [w.impact for w in pages["maintenance_windows_list"].results] == [m.MaintenanceImpact.DOWNTIME]
    [row] = pages["contracts_list"].results
    terms = row.terms
    assert (row.reference, terms.uptime_guarantee, terms.timezone) == ("KAL-0001", "99.800", "Africa/Nairobi")
    assert [p.priority for p in terms.priorities] == [m.Priority.P1, m.Priority.P2, m.Priority.P3, m.Priority.P4]
    assert terms.priorities[0].first_response_seconds == 15 * 60
    assert [level.level for level in terms.escalation_ladder] == [1, 2, 3, 4]
    assert terms.escalation_ladder[0].channel == m.EscalationChannel.EMAIL
    assert len(terms.credit_tiers) == 3
    assert len(pages["ticket_replies_list"].results) == 1 and len(pages["ticket_attachments_list"].results) == 1

    # Filters and ordering are typed too; another organisation's contract is a 404.
    closed = operation(package, "tickets_list").sync_detailed(client=client, status=m.TicketStatus.CLOSED)
    assert closed.parsed.count == 0
    oldest = operation(package, "months_list").sync_detailed(client=client, ordering=m.MonthOrdering.MONTH)
    assert oldest.parsed.count == 1
    theirs = operation(package, "contracts_retrieve").sync_detailed(world["theirs"].pk, client=client)
    assert theirs.status_code == 404 and isinstance(theirs.parsed, m.Error)

    # And the portal holds what the client did.
    stored = Ticket.objects.get(pk=ticket.id)
    assert stored.attachments.count() == 1 and stored.escalation_requests.count() == 1
    assert Claim.objects.get(pk=claim.id).attachments.get().original_name == "graphs.txt"
