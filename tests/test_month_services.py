"""A closed month keeps the services it was judged on (issue "Trust": closed months never change
behind a customer's back). Acme's KAL-0001 ran Cloud Backup through November, which closed with
480 minutes down on it (98.889%: 10%, KES 15,000). On 2 December staff move the contract to
Object Storage. November is still a month of Cloud Backup: late evidence about Cloud Backup
reopens and re-judges it, evidence about Object Storage does not, and closing it again counts
Cloud Backup's outages, not Object Storage's. Clocks are frozen."""

import importlib
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.apps import apps

from contracts.outages.services import outage_record, outage_update
from credits.closing import close_due
from credits.figures import contract_month_figures
from credits.models import MonthlyUptime

from .factories import ServiceFactory

pytestmark = pytest.mark.django_db

NBO = ZoneInfo("Africa/Nairobi")
NOV = date(2026, 11, 1)
CLOSED_AT = datetime(2026, 12, 1, 1, 0, tzinfo=NBO)
MOVED = datetime(2026, 12, 2, 9, 0, tzinfo=NBO)  # the contract moves to Object Storage
LATER = datetime(2026, 12, 3, 10, 0, tzinfo=NBO)  # late evidence
SWEEP = LATER + timedelta(hours=1)


def sweep(at, capture):
    with time_machine.travel(at, tick=False), capture(execute=True):
        return close_due(now=at)


def november(contract) -> MonthlyUptime:
    return MonthlyUptime.objects.get(contract=contract, month=NOV)


def record(services, start, minutes, at):
    return outage_record(
        title="Down", services=services, starts_at=start, ends_at=start + timedelta(minutes=minutes),
        actor=None, now=at,
    )  # fmt: skip


@pytest.fixture
def storage(db):
    return ServiceFactory(name="Object Storage", slug="object-storage")


@pytest.fixture
def moved(acme_contract, storage, django_capture_on_commit_callbacks):
    """November closed on Cloud Backup at 10%; then the contract runs Object Storage alone."""
    backup = acme_contract.services.get()
    outage = record([backup], datetime(2026, 11, 10, 8, 0, tzinfo=NBO), 480, datetime(2026, 11, 10, 17, 0, tzinfo=NBO))
    sweep(CLOSED_AT, django_capture_on_commit_callbacks)
    month = november(acme_contract)
    assert (month.tier_percent, month.credit_amount) == (Decimal("10"), Decimal("15000"))
    assert month.service_ids == f",{backup.pk},"
    with time_machine.travel(MOVED, tick=False):
        acme_contract.services.set([storage])
    return acme_contract, backup, outage


def test_late_evidence_of_the_months_own_service_rejudges_it_on_that_service(moved, django_capture_on_commit_callbacks):
    contract, backup, outage = moved
    # The Cloud Backup outage lasted 1,440 minutes, not 480: November's 25% tier.
    outage_update(
        outage=outage, title=outage.title, services=[backup], starts_at=outage.starts_at,
        ends_at=outage.starts_at + timedelta(minutes=1440), description="", actor=None, now=LATER,
    )  # fmt: skip
    assert november(contract).status == "reopened"
    # Before it is closed again, the month's figures (a claim's preview) count Cloud Backup's outage.
    preview = contract_month_figures(contract=contract, month=NOV, now=LATER)
    assert (preview.down_minutes, preview.tier_percent) == (1440, Decimal("25"))
    sweep(SWEEP, django_capture_on_commit_callbacks)
    month = november(contract)
    assert (month.status, month.down_minutes, month.tier_percent, month.credit_amount) == (
        "closed",
        1440,
        Decimal("25"),
        Decimal("37500"),
    )
    assert month.service_ids == f",{backup.pk},"


def test_evidence_of_a_service_the_month_did_not_run_leaves_it_closed(moved, storage):
    contract, _, _ = moved
    record([storage], datetime(2026, 11, 20, 8, 0, tzinfo=NBO), 960, LATER)
    assert november(contract).status == "closed"
    assert november(contract).down_minutes == 480


def test_a_month_reopened_for_its_own_service_does_not_count_the_new_one(
    moved, storage, django_capture_on_commit_callbacks
):
    contract, backup, _ = moved
    record([storage], datetime(2026, 11, 20, 8, 0, tzinfo=NBO), 960, LATER)  # Object Storage: not November's
    record([backup], datetime(2026, 11, 25, 8, 0, tzinfo=NBO), 60, LATER)  # reopens November
    sweep(SWEEP, django_capture_on_commit_callbacks)
    assert (november(contract).status, november(contract).down_minutes) == ("closed", 540)


def test_months_closed_before_keep_the_contracts_services_of_the_upgrade(acme_contract, storage):
    """The migration's backfill: rows without services take the contract's, the best there is."""
    backup = acme_contract.services.get()
    MonthlyUptime.objects.create(
        contract=acme_contract, month=NOV, sla_version=acme_contract.sla.versions.first(),
        period_start=CLOSED_AT - timedelta(days=30), period_end=CLOSED_AT, total_minutes=43200, down_minutes=0,
        excluded_minutes=0, uptime_percent=100, guarantee=Decimal("99.5"), invoice_amount=1, currency="KES",
        credit_kind="percent", closed_at=CLOSED_AT,
    )  # fmt: skip
    assert november(acme_contract).service_ids == ""
    migration = importlib.import_module("credits.migrations.0007_month_services")
    migration.kept_from_now_on(apps, None)
    assert november(acme_contract).service_ids == f",{backup.pk},"


def test_a_claims_evidence_lists_the_incidents_of_the_months_own_services(moved, storage, alice):
    from contracts.incidents.services import incident_open
    from credits.selectors import claim_incidents
    from credits.services import claim_submit

    contract, _, outage = moved
    other = record([storage], datetime(2026, 11, 20, 8, 0, tzinfo=NBO), 60, LATER)
    for o in (outage, other):
        incident_open(outage=o, title=f"Incident {o.pk}", status="resolved", body="Over.", actor=None, now=LATER)
    with time_machine.travel(LATER, tick=False):
        claim = claim_submit(contract=contract, month=NOV, user=alice, now=LATER)
    assert [i.outage_id for i, _, _ in claim_incidents(claim=claim)] == [outage.pk]


def test_a_claims_evidence_leaves_out_a_partial_outage_scoped_to_another_contract(acme_contract, acme):
    from contracts.choices import Impact
    from contracts.incidents.selectors import incidents_of_month
    from contracts.incidents.services import incident_open, outage_set_impact

    from .factories import ContractFactory

    backup = acme_contract.services.get()
    other = ContractFactory(organisation=acme, reference="KAL-0002", services=[backup])
    outage = record([backup], datetime(2026, 11, 10, 8, 0, tzinfo=NBO), 60, LATER)
    outage_set_impact(outage=outage, impacts={backup.pk: Impact.PARTIAL}, contracts=[other], customer_scoped=False,
                      actor=None, now=LATER)  # fmt: skip
    incident_open(outage=outage, title="Slow restores", status="resolved", body="Over.", actor=None, now=LATER)
    start, end = datetime(2026, 11, 1, tzinfo=NBO), datetime(2026, 12, 1, tzinfo=NBO)
    assert incidents_of_month(contract=acme_contract, start=start, end=end) == []
    assert [i.outage_id for i in incidents_of_month(contract=other, start=start, end=end)] == [outage.pk]
