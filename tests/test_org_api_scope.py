"""Whom an outage affects, as the API names it and filters by it (contracts.outage_reach): Acme has
KAL-0001 and KAL-0002 on the same service; an outage staff scoped to KAL-0001 (customer-scoped, or a
partial impact) names KAL-0001 only and is not among KAL-0002's, as KAL-0002's uptime does not count
it. And another organisation's service in a filter finds what an id never used finds: nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from rest_framework.test import APIClient

from contracts.maintenance.services import window_publish
from contracts.models import Outage

from .factories import ContractFactory, ServiceFactory

pytestmark = pytest.mark.django_db
NBO = ZoneInfo("Africa/Nairobi")
NOW = datetime(2026, 11, 3, 10, 0, tzinfo=NBO)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def outage(services, title="Storage down", scoped_to=(), **fields) -> Outage:
    row = Outage.objects.create(
        title=title, starts_at=NOW - timedelta(days=3), ends_at=NOW - timedelta(days=3, hours=-1), **fields
    )
    row.services.set(services)
    row.contracts.set(scoped_to)
    return row


def ids(client, query: str = "") -> list[int]:
    return [o["id"] for o in client.get(f"/api/v1/outages/{query}").json()["results"]]


@pytest.mark.parametrize("scope", ["customer_scoped", "partial"])
def test_an_outage_scoped_to_one_contract_names_and_filters_to_that_contract_only(alice, acme, acme_contract, scope):
    backup = acme_contract.services.get()
    second = ContractFactory(organisation=acme, reference="KAL-0002", services=[backup], contacts=[alice])
    fields = {"customer_scoped": True} if scope == "customer_scoped" else {"impacts": {str(backup.pk): "partial"}}
    scoped = outage([backup], "Scoped", scoped_to=[acme_contract], **fields)
    everyone = outage([backup], "Everyone's")
    client = api(alice)
    rows = {o["title"]: (o["contracts"], o["services"]) for o in client.get("/api/v1/outages/").json()["results"]}
    assert rows == {
        "Scoped": ([acme_contract.pk], [backup.pk]),
        "Everyone's": (sorted([acme_contract.pk, second.pk]), [backup.pk]),
    }
    detail = client.get(f"/api/v1/outages/{scoped.pk}/").json()
    assert (detail["contracts"], detail["services"]) == ([acme_contract.pk], [backup.pk])
    assert ids(client, f"?contract={second.pk}") == [everyone.pk]
    assert sorted(ids(client, f"?contract={acme_contract.pk}")) == sorted([scoped.pk, everyone.pk])
    assert sorted(ids(client, f"?service={backup.pk}")) == sorted([scoped.pk, everyone.pk])
    assert ids(client, f"?contract={second.pk}&service={backup.pk}") == [everyone.pk]


def test_a_partial_outage_affects_every_contract_on_its_major_services(alice, acme, acme_contract):
    backup = acme_contract.services.get()
    archive = ServiceFactory(name="Archive")
    second = ContractFactory(organisation=acme, reference="KAL-0002", services=[backup, archive], contacts=[alice])
    mixed = outage([backup, archive], impacts={str(backup.pk): "partial"}, scoped_to=[acme_contract])
    row = api(alice).get(f"/api/v1/outages/{mixed.pk}/").json()
    # KAL-0001 on backup (scoped); KAL-0002 on archive only (major there, partial on backup).
    assert (row["contracts"], row["services"]) == (
        sorted([acme_contract.pk, second.pk]),
        sorted([backup.pk, archive.pk]),
    )
    assert ids(api(alice), f"?contract={second.pk}&service={backup.pk}") == []
    assert ids(api(alice), f"?contract={second.pk}&service={archive.pk}") == [mixed.pk]


def test_another_organisations_service_filters_like_an_id_never_used(alice, acme_contract, globex_contract):
    backup = acme_contract.services.get()
    theirs = ServiceFactory(name="AI Assistant", slug="ai-assistant")
    globex_contract.services.set([theirs])
    outage([backup, theirs], "Both")
    start = NOW + timedelta(days=2)
    window_publish(
        title="Both", description="New disks.", services=[backup, theirs], starts_at=start,
        ends_at=start + timedelta(hours=2),
    )  # fmt: skip
    client = api(alice)
    for path in ("/api/v1/outages/", "/api/v1/maintenance-windows/"):
        assert client.get(f"{path}?service={backup.pk}").json()["count"] == 1
        theirs_answer = client.get(f"{path}?service={theirs.pk}")
        never = client.get(f"{path}?service=987654321")
        assert theirs_answer.status_code == never.status_code == 200
        assert theirs_answer.json() == never.json()
        assert never.json()["count"] == 0
