"""Staff lists whose query count grew with their rows: each test counts one GET of the changelist with
2 rows, adds 18 more, counts again and asserts the same number. The users (their organisation), the
organisations (their two managers) and the SLA versions (their SLA, each row's name) read one
relation per row: 9 -> 27, 10 -> 46, 12 -> 30 queries."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from contracts.models import SLA
from contracts.services import sla_copy

from .factories import OrganisationFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db
NBO = ZoneInfo("Africa/Nairobi")


@pytest.fixture
def ada_client(client, db):
    client.force_login(StaffFactory(email="admin@vendor.example", name="Ada", staff_role="", is_superuser=True))
    return client


def count(client, url: str, expect: str) -> int:
    ContentType.objects.clear_cache()
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    assert expect in response.content.decode()  # the last row made is on the page
    return len(ctx.captured_queries)


def test_user_changelist_reads_each_users_organisation_apart(ada_client):
    url = reverse("admin:portal_user_changelist")

    def grow(start, n):
        for i in range(start, start + n):
            UserFactory(
                email=f"u{i}@org{i}.example", organisation=OrganisationFactory(name=f"Org {i}", slug=f"org-{i}")
            )
        return f"Org {start + n - 1}"

    small = count(ada_client, url, grow(0, 2))
    large = count(ada_client, url, grow(2, 18))
    assert large == small, f"users changelist: {small} queries with 2 customer users, {large} with 20"


def test_organisation_changelist_reads_each_managers_user_apart(ada_client):
    url = reverse("admin:contracts_organisation_changelist")

    def grow(start, n):
        for i in range(start, start + n):
            am = StaffFactory(email=f"am{i}@vendor.example", name=f"AM {i}", staff_role="account_manager")
            csm = StaffFactory(email=f"csm{i}@vendor.example", name=f"CSM {i}", staff_role="account_manager")
            OrganisationFactory(name=f"Org {i}", slug=f"org-{i}", account_manager=am, solutions_manager=csm)
        return f"Org {start + n - 1}"

    small = count(ada_client, url, grow(0, 2))
    large = count(ada_client, url, grow(2, 18))
    assert large == small, f"organisations changelist: {small} queries with 2 organisations, {large} with 20"


def test_sla_version_changelist_reads_each_versions_sla_apart(ada_client):
    url = reverse("admin:contracts_slaversion_changelist")
    kaluari = SLA.objects.get(template_key="kaluari-cloud-backup")

    def grow(start, n):
        for i in range(start, start + n):
            sla_copy(source=kaluari, name=f"Kaluari for customer {i}", effective_from=datetime(2026, 1, 1, tzinfo=NBO))
        return f"Kaluari for customer {start + n - 1}"

    small = count(ada_client, url, grow(0, 2))
    large = count(ada_client, url, grow(2, 18))
    assert large == small, f"SLA versions changelist: {small} queries with 2 copies, {large} with 20"
