"""The integrators' read API of what an organisation has (/api/v1/contracts/, services/,
maintenance-windows/, outages/, months/) and what the lists share: the terms in force as the
contract page shows them, scoping (another organisation's object is a 404 like an id never used),
filters and `ordering` (a bad one is a 400 with a message), and a number of queries per list that
does not grow with its rows (no N+1). Claim evidence added by API. Time frozen at 2026-11-03 10:00
in Nairobi."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from contracts.maintenance.services import window_cancel, window_publish
from contracts.models import Outage, OutageUpdate
from credits.closing import close_month
from credits.models import ClaimAttachment
from credits.services import claim_approve, claim_submit
from tickets.services import ticket_attach, ticket_open, ticket_reply

from .factories import ContractFactory, ServiceFactory

pytestmark = pytest.mark.django_db
NBO = ZoneInfo("Africa/Nairobi")
NOW = datetime(2026, 11, 3, 10, 0, tzinfo=NBO)
OCT = date(2026, 10, 1)


@pytest.fixture(autouse=True)
def frozen(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def outage(services, start: datetime, hours: float | None, title="Storage down", **fields) -> Outage:
    row = Outage.objects.create(
        title=title, starts_at=start, ends_at=start + timedelta(hours=hours) if hours else None, **fields
    )
    row.services.set(services)
    return row


def window(services, days: int, title="Storage upgrade"):
    start = NOW + timedelta(days=days)
    return window_publish(
        title=title, description="New disks.", services=services, starts_at=start, ends_at=start + timedelta(hours=2)
    )


# --- Contracts and their terms ----------------------------------------------------------------------
def test_a_contract_comes_with_the_terms_of_its_sla_version_in_force(alice, acme, acme_contract, ayo):
    acme.account_manager = ayo
    acme.save()
    data = api(alice).get(f"/api/v1/contracts/{acme_contract.pk}/").json()
    assert (data["reference"], data["currency"], data["services"]) == (
        "KAL-0001", acme_contract.currency, [s.pk for s in acme_contract.services.all()],
    )  # fmt: skip
    terms = data["terms"]
    assert (terms["uptime_guarantee"], terms["timezone"], terms["credit_kind"], terms["claim_window_days"]) == (
        "99.800", "Africa/Nairobi", "refund", 30,
    )  # fmt: skip
    assert (terms["offpeak_start"], terms["offpeak_end"], terms["maintenance_notice_seconds"]) == (
        "22:00",
        "06:00",
        172800,
    )
    p1, p2, p3, p4 = terms["priorities"]
    assert p1["meaning"].startswith("Production incident") and p1["clock_always_open"] is True
    assert (p1["first_response_seconds"], p1["resolution_limit_seconds"]) == (15 * 60, 3600)
    assert (p3["clock_always_open"], p3["resolution_target_seconds"], p3["resolution_limit_seconds"]) == (
        False, 12 * 3600, 24 * 3600,
    )  # fmt: skip
    ladder = terms["escalation_ladder"]
    assert [(lv["level"], lv["channel"]) for lv in ladder] == [(1, "email"), (2, "phone"), (3, "phone"), (4, "phone")]
    assert ladder[0]["contact"] == "support@kaluari.com"
    assert ladder[2]["contact"] == "Ayo AM, ayo@vendor.example"  # Acme's own account manager
    assert ladder[3]["dwells"] == [
        {"priority": p, "dwell_seconds": h * 3600} for p, h in (("P1", 4), ("P2", 4), ("P3", 12), ("P4", 36))
    ]
    assert terms["credit_tiers"] == [
        {"lower": "98.000", "lower_inclusive": True, "upper": "99.000", "upper_inclusive": True, "percent": "10.000"},
        {"lower": "95.000", "lower_inclusive": True, "upper": "98.000", "upper_inclusive": True, "percent": "25.000"},
        {"lower": None, "lower_inclusive": True, "upper": "90.000", "upper_inclusive": False, "percent": "50.000"},
    ]
    assert "force_majeure" in terms["exclusion_causes"]
    # The list shows the same rows.
    assert api(alice).get("/api/v1/contracts/").json()["results"] == [data]


def test_another_organisations_objects_are_404_like_ids_never_used(alice, acme_contract, globex_contract):
    theirs_service = ServiceFactory(name="AI Assistant", slug="ai-assistant")
    globex_contract.services.set([theirs_service])
    theirs_outage = outage([theirs_service], datetime(2026, 10, 5, tzinfo=NBO), 1)
    theirs_window = window([theirs_service], 3)
    client = api(alice)
    for path in (
        f"/api/v1/contracts/{globex_contract.pk}/", f"/api/v1/services/{theirs_service.pk}/",
        f"/api/v1/outages/{theirs_outage.pk}/", f"/api/v1/maintenance-windows/{theirs_window.pk}/",
    ):  # fmt: skip
        mine, never = client.get(path), client.get(path.rsplit("/", 2)[0] + "/987654321/")
        assert (mine.status_code, mine.json()) == (never.status_code, never.json()) == (404, {"detail": "Not found."})


# --- Filters and ordering, the same on every list ------------------------------------------------------
def test_lists_filter_and_order_and_refuse_a_bad_ordering_with_a_message(alice, acme, acme_contract):
    backup = acme_contract.services.get()
    second = ContractFactory(organisation=acme, reference="KAL-0000", services=[ServiceFactory(name="Archive")])
    client = api(alice)
    refs = [c["reference"] for c in client.get("/api/v1/contracts/").json()["results"]]
    assert refs == ["KAL-0000", "KAL-0001"]
    assert [c["reference"] for c in client.get("/api/v1/contracts/?ordering=-reference").json()["results"]] == [
        "KAL-0001", "KAL-0000",
    ]  # fmt: skip
    assert client.get(f"/api/v1/services/?contract={second.pk}").json()["results"][0]["name"] == "Archive"
    assert [s["name"] for s in client.get("/api/v1/services/?ordering=-name").json()["results"]] == [
        "Cloud Backup", "Archive",
    ]  # fmt: skip

    old = outage([backup], datetime(2026, 10, 5, tzinfo=NBO), 2, title="Old", cause="force_majeure")
    OutageUpdate.objects.create(outage=old, at=old.ends_at, body="Resolved.")
    ongoing = outage([backup], NOW - timedelta(hours=1), None, title="Ongoing")
    rows = client.get("/api/v1/outages/").json()["results"]
    assert [(o["title"], o["ongoing"], o["contracts"]) for o in rows] == [
        ("Ongoing", True, [acme_contract.pk]), ("Old", False, [acme_contract.pk]),
    ]  # fmt: skip
    assert rows[1]["updates"] == [{"at": "2026-10-04T23:00:00Z", "body": "Resolved."}]
    assert [o["id"] for o in client.get("/api/v1/outages/?ongoing=true").json()["results"]] == [ongoing.pk]
    assert [o["id"] for o in client.get("/api/v1/outages/?cause=force_majeure").json()["results"]] == [old.pk]
    assert client.get(f"/api/v1/outages/?contract={second.pk}").json()["count"] == 0

    soon, later = window([backup], 2, title="Soon"), window([backup], 9, title="Later")
    window_cancel(window=later)
    assert [w["title"] for w in client.get("/api/v1/maintenance-windows/?ordering=starts_at").json()["results"]] == [
        "Soon", "Later",
    ]  # fmt: skip
    assert [w["id"] for w in client.get("/api/v1/maintenance-windows/?status=scheduled").json()["results"]] == [soon.pk]

    ticket = ticket_open(
        user=alice, contract=acme_contract, service=backup, priority="P4", subject="Slow", description="d"
    )
    urgent = ticket_open(
        user=alice, contract=acme_contract, service=backup, priority="P1", subject="Down", description="d"
    )
    assert [t["id"] for t in client.get("/api/v1/tickets/").json()["results"]] == [urgent.pk, ticket.pk]
    assert [t["id"] for t in client.get("/api/v1/tickets/?ordering=-priority").json()["results"]] == [
        ticket.pk,
        urgent.pk,
    ]
    assert client.get(f"/api/v1/tickets/?contract={second.pk}").json()["count"] == 0
    assert client.get(f"/api/v1/tickets/?service={backup.pk}&status=").json()["count"] == 2  # blank: no filter

    bad = client.get("/api/v1/tickets/?ordering=subject&limit=2")
    assert bad.status_code == 400
    assert bad.json() == {"ordering": ['"subject" is not a valid choice.']}
    assert client.get("/api/v1/outages/?service=99999999999999999999999").status_code == 400  # never a 500
    assert client.get("/api/v1/months/?since=2026-13").json() == {
        "since": ["Enter the month as YYYY-MM, e.g. 2026-10."]
    }


def test_the_months_list_has_each_closed_month_with_its_credit_and_claim(alice, acme, acme_contract):
    backup = acme_contract.services.get()
    outage([backup], datetime(2026, 10, 10, 2, 0, tzinfo=NBO), 9)  # 540 minutes: the 10% tier
    close_month(month=date(2026, 9, 1), now=NOW)
    claim = claim_submit(contract=acme_contract, month=OCT, user=alice)  # closes October on demand
    client = api(alice)
    rows = client.get("/api/v1/months/").json()["results"]
    assert [(r["month"], r["status"], r["below_guarantee"], r["tier_percent"], r["claim"]) for r in rows] == [
        ("2026-10", "closed", True, "10.000", claim.pk), ("2026-09", "closed", False, None, None),
    ]  # fmt: skip
    assert rows[0]["down_minutes"] == 540 and rows[0]["credit_amount"] is not None
    assert [r["month"] for r in client.get("/api/v1/months/?ordering=month").json()["results"]] == [
        "2026-09",
        "2026-10",
    ]
    assert [r["month"] for r in client.get("/api/v1/months/?below_guarantee=true").json()["results"]] == ["2026-10"]
    assert [r["month"] for r in client.get("/api/v1/months/?below_guarantee=false").json()["results"]] == ["2026-09"]
    assert [r["month"] for r in client.get("/api/v1/months/?since=2026-10&until=2026-10").json()["results"]] == [
        "2026-10"
    ]


# --- Claim evidence by API ----------------------------------------------------------------------------
def test_evidence_is_added_to_a_claim_awaiting_review_and_refused_once_it_is_decided(alice, ayo, acme_contract):
    outage([acme_contract.services.get()], datetime(2026, 10, 10, 2, 0, tzinfo=NBO), 9)
    claim = claim_submit(contract=acme_contract, month=OCT, user=alice)
    client = api(alice)
    url = f"/api/v1/claims/{claim.pk}/attachments/"
    added = client.post(url, {"file": SimpleUploadedFile("graphs.txt", b"graphs\n")}, format="multipart")
    assert added.status_code == 201 and added.json()["name"] == "graphs.txt"
    exe = SimpleUploadedFile("tool.exe", b"MZ\x90\x00" + b"\x00" * 200)
    refused = client.post(url, {"file": exe}, format="multipart")
    assert refused.status_code == 400 and "file" in refused.json()
    assert client.post(url, {"file": "x"}, format="json").status_code == 415
    claim_approve(claim=claim, actor=ayo)
    late = client.post(url, {"file": SimpleUploadedFile("more.txt", b"more\n")}, format="multipart")
    assert late.status_code == 400
    assert late.json() == {"file": ["This claim is approved: evidence can be added only while it awaits review."]}
    assert list(ClaimAttachment.objects.values_list("original_name", flat=True)) == ["graphs.txt"]
    assert client.get(f"/api/v1/claims/{claim.pk}/").json()["attachments"][0]["name"] == "graphs.txt"


# --- No N+1: a list's queries do not grow with its rows ------------------------------------------------
def _grow(acme, alice, sam, first, n: int) -> None:
    """`n` more of everything each list shows, for Acme; `n` more replies and files on `first`."""
    for i in range(n):
        service = ServiceFactory()
        contract = ContractFactory(organisation=acme, services=[service], contacts=[alice])
        down = outage([service], datetime(2026, 10, 1 + i, tzinfo=NBO), 1, title=f"Outage {i}")
        OutageUpdate.objects.create(outage=down, at=NOW, body="Resolved.")
        window([service], 2 + i, title=f"Window {i}")
        ticket = ticket_open(
            user=alice, contract=contract, service=service, priority="P3", subject=f"Ticket {i}", description="d"
        )
        ticket_reply(ticket=first, author=sam, body=f"On it ({i}).")
        ticket_attach(ticket=first, user=alice, files=[_text(f"log{i}.txt")])
        claim_submit(contract=contract, month=OCT, user=alice, tickets=[ticket], files=[_text(f"ev{i}.txt")])


def _text(name):
    upload = SimpleUploadedFile(name, b"lines\n", content_type="text/plain")
    upload.checked_type = "text/plain"
    return upload


LISTS = [
    "/api/v1/contracts/", "/api/v1/services/", "/api/v1/maintenance-windows/", "/api/v1/outages/", "/api/v1/months/",
    "/api/v1/tickets/", "/api/v1/claims/", "/api/v1/tickets/{ticket}/replies/", "/api/v1/tickets/{ticket}/attachments/",
]  # fmt: skip
# The queries of each list, whatever its rows (a token request adds 1: the token with its user).
QUERIES = {
    "/api/v1/contracts/": 10,  # count, page, services, versions and their 6 matrices, 1 staff role (level 4)
    "/api/v1/services/": 3,  # count, page, which contract covers which service
    "/api/v1/maintenance-windows/": 4,  # count, page, their services, the contracts' services
    "/api/v1/outages/": 5,  # count, page, services, updates, the contracts' services
    "/api/v1/months/": 2,  # count, page (the claim filed for each is a column of the page's query)
    "/api/v1/tickets/": 4,  # count, page, and the clocks of the page (tickets.selectors.ticket_clock_views)
    "/api/v1/claims/": 4,  # count, page with contract, month and filer, linked tickets, files
    "/api/v1/tickets/{ticket}/replies/": 4,  # the ticket, count, page with authors, files
    "/api/v1/tickets/{ticket}/attachments/": 3,  # the ticket, count, page
}


def _counts(client, ticket: int) -> dict[str, int]:
    counts = {}
    for path in LISTS:
        url = path.format(ticket=ticket)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200, (url, response.content)
        counts[path] = len(queries)
    return counts


def test_every_list_is_a_fixed_number_of_queries_whatever_its_rows(alice, acme, acme_contract, sam):
    client = api(alice)
    first = ticket_open(
        user=alice, contract=acme_contract, service=acme_contract.services.get(), priority="P2", subject="First",
        description="d",
    )  # fmt: skip
    _grow(acme, alice, sam, first, 1)
    one = _counts(client, first.pk)
    _grow(acme, alice, sam, first, 3)  # four more of each row than before
    assert api(alice).get("/api/v1/contracts/").json()["count"] == 5
    assert _counts(client, first.pk) == one
    assert one == QUERIES
