"""Email choices by API (/api/v1/notification-preferences/): the same choices, defaults and "always
comes" sentences as the Account page's, each person's own only; a change is recorded as made by
API and the one rule (portal.core.notify_rules) follows it; bad input is a 400 with its message,
staff a 403."""

import pytest
from rest_framework.test import APIClient

from contracts.models import Contract
from portal.core.notify_rules import Kind, may_email
from portal.models import NotificationPreference

pytestmark = pytest.mark.django_db
URL = "/api/v1/notification-preferences/"


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def by_choice(response) -> dict:
    assert response.status_code == 200, response.content
    return {row["choice"]: row for row in response.json()["choices"]}


def test_each_person_reads_their_own_choices_with_defaults_and_what_always_comes(acme_contract, alice, bob):
    acme_contract.contacts.set([alice])  # Alice is the designated contact, Bob is not
    mine = by_choice(api(alice).get(URL))
    assert list(mine) == [
        "ticket_mine", "ticket_org", "breach", "maintenance", "incident", "sla_change", "credit", "contact_review",
    ]  # fmt: skip
    assert (mine["maintenance"]["enabled"], mine["maintenance"]["chosen"]) == (True, False)
    assert mine["maintenance"]["always"].startswith(f"You are a designated contact of {acme_contract.reference}")
    assert mine["ticket_mine"]["always"] == "The receipt of a ticket you file yourself always comes."
    bobs = by_choice(api(bob).get(URL))
    assert "contact_review" not in bobs  # customer admins only
    # Maintenance reaches every member by default; SLA changes only the designated contacts.
    assert (bobs["maintenance"]["enabled"], bobs["sla_change"]["enabled"], bobs["ticket_org"]["enabled"]) == (
        True, False, False,
    )  # fmt: skip


def test_a_change_by_api_is_recorded_as_such_and_the_rule_follows_it(acme_contract, alice, bob):
    acme_contract.contacts.set([alice])
    assert not may_email(bob, Kind.SLA_CHANGE, acme_contract)
    rows = by_choice(api(bob).post(URL, {"choice": "sla_change", "enabled": True}, format="json"))
    assert (rows["sla_change"]["enabled"], rows["sla_change"]["chosen"]) == (True, True)
    assert may_email(bob, Kind.SLA_CHANGE, Contract.objects.get(pk=acme_contract.pk))
    assert list(NotificationPreference.objects.values_list("user", "kind", "enabled", "via")) == [
        (bob.pk, "sla_change", True, "api")
    ]
    # A designated contact turning maintenance off is recorded, and still gets its notices.
    by_choice(api(alice).post(URL, {"choice": "maintenance", "enabled": False}, format="json"))
    assert may_email(alice, Kind.MAINTENANCE, acme_contract)


def test_bad_input_is_a_400_with_its_message_and_staff_a_403(acme_contract, alice, bob, sam):
    client = api(bob)
    assert client.post(URL, {"choice": "contact_review", "enabled": False}, format="json").json() == {
        "choice": ["Contact reviews go to customer admins only."]
    }
    assert client.post(URL, {"choice": "everything", "enabled": False}, format="json").json() == {
        "choice": ['"everything" is not a valid choice.']
    }
    unknown = client.post(URL, {"choice": "credit", "enabled": False, "user": alice.pk}, format="json")
    assert unknown.status_code == 400 and list(unknown.json()) == ["user"]
    assert client.post(URL, {"choice": "credit"}, format="json").json() == {"enabled": ["This field is required."]}
    assert not NotificationPreference.objects.exists()
    staff = api(sam).get(URL)
    assert staff.status_code == 403 and "Staff choose no emails here" in staff.json()["detail"]
