"""The customer uptime and claim API: a month's figures (closed, or the current month so far),
scoping (another organisation's contract or claim is a 404, never a 403), and claims filed with the
same checks and messages as the portal's form: 201 on success, 400 with field messages and
nothing stored otherwise. Alice and Bob at Acme, Charlie at Globex; clocks frozen."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse
from rest_framework.test import APIClient

from contracts.models import Outage
from credits.closing import close_month
from credits.models import Claim, ClaimEvent, MonthlyUptime
from credits.services import claim_submit
from portal.models import OutboxMessage
from tickets.services import ticket_open

NBO = ZoneInfo("Africa/Nairobi")
OCT = date(2026, 10, 1)
NOV_3 = datetime(2026, 11, 3, 10, 0, tzinfo=NBO)
CLAIMS = "/api/v1/claims/"
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOV_3, tick=False) as traveller:
        yield traveller


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def outage(contract, start, minutes, title="Storage down"):
    o = Outage.objects.create(
        title=title, starts_at=start, ends_at=start + timedelta(minutes=minutes) if minutes else None
    )
    o.services.set(contract.services.all())
    return o


@pytest.fixture
def bad_october(acme_contract):
    """500 minutes down on the 10th: 98.880% of October, the 10% tier, KES 15,000.00."""
    outage(acme_contract, datetime(2026, 10, 10, 2, 0, tzinfo=NBO), 500)
    return acme_contract


def uptime_url(contract):
    return f"/api/v1/contracts/{contract.pk}/uptime/"


def stored() -> dict:
    return {m.__name__: m.objects.count() for m in (Claim, ClaimEvent, OutboxMessage, MonthlyUptime)}


def ticket(contract, user, subject="Backups fail"):
    return ticket_open(
        user=user,
        contract=contract,
        service=contract.services.get(),
        priority="P1",
        subject=subject,
        description="Nothing backs up.",
    )


# --- /contracts/{id}/uptime/ --------------------------------------------------------------------
def test_a_closed_month_gives_its_figures_and_breakdown(alice, bad_october):
    close_month(month=OCT, now=datetime(2026, 11, 1, 1, 0, tzinfo=NBO))
    response = client_for(alice).get(uptime_url(bad_october), {"month": "2026-10"})
    assert response.status_code == 200
    data = response.json()
    assert {k: data[k] for k in ("contract", "month", "state", "timezone", "total_minutes", "down_minutes")} == {
        "contract": bad_october.pk, "month": "2026-10", "state": "closed", "timezone": "Africa/Nairobi",
        "total_minutes": 44640, "down_minutes": 500,
    }  # fmt: skip
    assert (data["uptime_percent"], data["guarantee"], data["below_guarantee"]) == ("98.87992832", "99.800", True)
    assert (data["tier_percent"], data["credit_amount"], data["currency"], data["credit_kind"]) == (
        "10.000",
        "15000.00",
        "KES",
        "refund",
    )
    # Moments in UTC, as everywhere in the API; `timezone` says where the month runs.
    assert data["closed_at"] == "2026-10-31T22:00:00Z" and data["as_of"] is None and not data["flagged"]
    assert data["period_start"] == "2026-09-30T21:00:00Z" and data["period_end"] == "2026-10-31T21:00:00Z"
    assert data["breakdown"] == [
        {
            "kind": "outage", "title": "Storage down", "cause": "unplanned", "cause_label": "Unplanned outage",
            "start": "2026-10-09T23:00:00Z", "end": "2026-10-10T07:20:00Z", "ongoing": False,
            "down_minutes": 500, "excluded_minutes": 0, "reason": "Counted as downtime",
        }
    ]  # fmt: skip


def test_a_closed_months_lines_read_the_outages_as_they_stand_in_a_fixed_number_of_queries(
    alice, acme_contract, django_assert_num_queries
):
    # Still going on when October closed, and since: the line says so, with no end.
    outage(acme_contract, datetime(2026, 10, 31, 20, 0, tzinfo=NBO), None, title="Agent cannot reach storage")
    close_month(month=OCT, now=datetime(2026, 11, 1, 1, 0, tzinfo=NBO))
    client = client_for(alice)

    def lines():
        client.get(uptime_url(acme_contract), {"month": "2026-10"})  # the first request warms what every one needs
        with django_assert_num_queries(QUERIES_CLOSED_MONTH):
            return client.get(uptime_url(acme_contract), {"month": "2026-10"}).json()["breakdown"]

    (line,) = lines()
    assert (line["title"], line["start"], line["end"], line["ongoing"]) == (
        "Agent cannot reach storage", "2026-10-31T17:00:00Z", None, True,
    )  # fmt: skip
    assert (line["down_minutes"], line["reason"]) == (240, "Counted as downtime")  # October's last 4 hours
    Outage.objects.update(title="Storage agent unreachable", ends_at=datetime(2026, 11, 1, 2, 0, tzinfo=NBO))
    (line,) = lines()
    assert (line["title"], line["end"], line["ongoing"], line["down_minutes"]) == (
        "Storage agent unreachable", "2026-10-31T23:00:00Z", False, 240,
    )  # fmt: skip

    MonthlyUptime.objects.all().delete()
    for day in range(1, 21):
        outage(acme_contract, datetime(2026, 10, day, 2, 0, tzinfo=NBO), 5, title=f"Blip {day}")
    close_month(month=OCT, now=datetime(2026, 11, 1, 1, 0, tzinfo=NBO))
    assert len(lines()) == 21


QUERIES_CLOSED_MONTH = 6  # the contract, its services, SLA versions, credit tiers, the month, its outages by id


def test_the_current_month_gives_its_figures_so_far(alice, acme_contract):
    outage(acme_contract, datetime(2026, 11, 2, 0, 0, tzinfo=NBO), None, title="Agent cannot reach storage")
    data = client_for(alice).get(uptime_url(acme_contract), {"month": "2026-11"}).json()
    assert (data["state"], data["as_of"], data["closed_at"]) == ("so_far", "2026-11-03T07:00:00Z", None)
    assert (data["total_minutes"], data["elapsed_minutes"], data["down_minutes"]) == (43200, 3480, 2040)
    assert (data["uptime_percent"], data["tier_percent"], data["credit_amount"]) == (
        "95.27777778",
        "25.000",
        "37500.00",
    )
    assert data["breakdown"][0]["ongoing"] is True
    assert not MonthlyUptime.objects.exists()  # a read: nothing is closed


def test_an_ended_month_not_closed_yet_is_computed_as_it_will_close(alice, bad_october):
    data = client_for(alice).get(uptime_url(bad_october), {"month": "2026-10"}).json()
    assert (data["state"], data["uptime_percent"], data["credit_amount"]) == ("not_closed", "98.87992832", "15000.00")
    assert not MonthlyUptime.objects.exists()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({}, "Give the month as ?month=YYYY-MM, e.g. 2026-10."),
        ({"month": "2026-13"}, "Enter the month as YYYY-MM, e.g. 2026-10."),
        ({"month": "October"}, "Enter the month as YYYY-MM, e.g. 2026-10."),
        ({"month": "0000-01"}, "Enter the month as YYYY-MM, e.g. 2026-10."),
        (
            {"month": "2026-12"},
            "December 2026 has not started yet: ask for the current month (2026-11) to see its figures so far.",
        ),
        ({"month": "2025-12"}, "The contract had not started in December 2025."),
    ],
)
def test_a_bad_month_is_a_400_with_a_message(alice, acme_contract, query, message):
    response = client_for(alice).get(uptime_url(acme_contract), query)
    assert response.status_code == 400
    assert response.json() == {"month": [message]}


def test_another_organisations_contract_is_a_404_whatever_the_month(charlie, acme_contract, globex_contract):
    for query in ({"month": "2026-10"}, {"month": "nonsense"}, {}):
        response = client_for(charlie).get(uptime_url(acme_contract), query)
        assert response.status_code == 404 and response.json() == {"detail": "Not found."}
    assert client_for(charlie).get(uptime_url(globex_contract), {"month": "2026-10"}).status_code == 200


def test_anonymous_gets_401(acme_contract):
    assert client_for().get(uptime_url(acme_contract), {"month": "2026-10"}).status_code == 401
    assert client_for().get(CLAIMS).status_code == 401


# --- /claims/ -----------------------------------------------------------------------------------
def test_filing_a_claim_gives_201_and_emails_the_contacts(
    alice, bob, bad_october, mailoutbox, django_capture_on_commit_callbacks
):
    theirs = ticket(bad_october, bob)
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(alice).post(
            CLAIMS,
            {"contract": bad_october.pk, "month": "2026-10", "note": "Backups failed.", "tickets": [theirs.pk]},
            format="json",
        )
    assert response.status_code == 201
    data = response.json()
    claim = Claim.objects.get()
    assert data["id"] == claim.pk and data["month"] == "2026-10" and data["status"] == "submitted"
    assert (data["uptime_percent"], data["tier_percent"], data["eligible_amount"], data["amount"]) == (
        "98.87992832",
        "10.000",
        "15000.00",
        None,
    )
    assert data["tickets"] == [theirs.pk] and data["attachments"] == [] and data["submitted_by"] == "Alice Achieng"
    assert {m.to[0] for m in mailoutbox if "claim" in m.subject} == {alice.email, bob.email}


def test_the_list_and_one_claim_are_the_organisations_only(alice, bob, charlie, bad_october, globex_contract):
    claim = claim_submit(contract=bad_october, month=OCT, user=alice)
    listed = client_for(bob).get(CLAIMS).json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == claim.pk
    assert client_for(bob).get(f"{CLAIMS}{claim.pk}/").json()["contract_reference"] == "KAL-0001"
    assert client_for(charlie).get(CLAIMS).json()["count"] == 0
    assert client_for(charlie).get(f"{CLAIMS}{claim.pk}/").status_code == 404
    assert client_for(charlie).get(f"{CLAIMS}{claim.pk + 100}/").status_code == 404


@pytest.mark.parametrize(
    ("when", "month", "field", "message"),
    [
        (NOV_3, "2026-11", "month", "November 2026 has not ended yet: claims open at 2026-12-01 00:00 (UTC+03:00)."),
        (
            datetime(2026, 12, 1, 0, 0, tzinfo=NBO),
            "2026-10",
            "month",
            "Claims for October 2026 closed at 2026-12-01 00:00 (UTC+03:00) (30 days after the month's end).",
        ),
        (NOV_3, "2026-1", "month", "Enter the month as YYYY-MM, e.g. 2026-10."),
        (NOV_3, "", "month", "Enter the month as YYYY-MM, e.g. 2026-10."),
        (NOV_3, 202610, "month", "Enter the month as YYYY-MM, e.g. 2026-10."),
    ],
)
def test_a_refused_claim_is_a_400_with_the_services_message_and_nothing_stored(
    alice, bad_october, frozen, when, month, field, message
):
    frozen.move_to(when)
    before = stored()
    response = client_for(alice).post(CLAIMS, {"contract": bad_october.pk, "month": month}, format="json")
    assert response.status_code == 400
    assert response.json() == {field: [message]}
    assert stored() == before


def test_a_second_claim_for_the_month_is_refused(alice, bob, bad_october):
    claim_submit(contract=bad_october, month=OCT, user=alice)
    before = stored()
    response = client_for(bob).post(CLAIMS, {"contract": bad_october.pk, "month": "2026-10"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"month": ["A claim for October 2026 was already filed for this contract."]}
    assert stored() == before


def test_another_organisations_contract_or_ticket_is_refused(alice, charlie, bad_october, globex_contract):
    theirs = ticket(globex_contract, charlie)
    before = stored()
    response = client_for(charlie).post(CLAIMS, {"contract": bad_october.pk, "month": "2026-10"}, format="json")
    assert response.json() == {"contract": ["Choose one of your organisation's contracts."]}
    response = client_for(alice).post(
        CLAIMS, {"contract": bad_october.pk, "month": "2026-10", "tickets": [theirs.pk]}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"tickets": ["Link only your organisation's tickets."]}
    # An id that was never used answers the same: the answer confirms nothing.
    response = client_for(alice).post(
        CLAIMS, {"contract": bad_october.pk, "month": "2026-10", "tickets": [theirs.pk + 100]}, format="json"
    )
    assert response.json() == {"tickets": ["Link only your organisation's tickets."]}
    assert stored() == before


def test_unknown_fields_are_refused(alice, bad_october):
    response = client_for(alice).post(
        CLAIMS, {"contract": bad_october.pk, "month": "2026-10", "amount": "99999"}, format="json"
    )
    assert response.status_code == 400 and list(response.json()) == ["amount"]
    assert not Claim.objects.exists()


# --- The schema ---------------------------------------------------------------------------------
def test_the_schema_documents_the_credits_paths_and_their_errors(client):
    paths = client.get(reverse("api-schema"), {"format": "json"}).json()["paths"]
    uptime = paths["/api/v1/contracts/{id}/uptime/"]["get"]
    assert set(uptime["responses"]) == {"200", "400", "401", "403", "404"}
    assert [p["name"] for p in uptime["parameters"]] == ["id", "month"]
    assert set(paths["/api/v1/claims/"]["post"]["responses"]) == {"201", "400", "401", "403", "413", "415", "429"}
    assert set(paths["/api/v1/claims/{id}/"]["get"]["responses"]) == {"200", "401", "403", "404"}
