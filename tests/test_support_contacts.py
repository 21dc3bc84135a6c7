"""Designated support contacts: only they open tickets on a contract (the portal's form and the API,
through contracts.people.support); a customer who may not is told why and whom to ask; a filer who
loses the right keeps their tickets. Customer admins set who may open tickets and who is notified."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.apps import apps
from knox.models import AuthToken

from contracts.models import Contract
from contracts.people.invitations import invitation_accept, invitation_create
from contracts.people.support import NotASupportContact, support_contact_check
from portal.models import AuditEntry
from tickets.models import Ticket
from tickets.services import ticket_open

from .factories import ContractFactory, UserFactory

pytestmark = pytest.mark.django_db

NBO = ZoneInfo("Africa/Nairobi")
NOW = datetime(2026, 11, 3, 10, 0, tzinfo=NBO)
TICKET = {"priority": "P3", "subject": "Restore fails", "description": "Since last night."}


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def _contacts(client, contract, support, notified):
    return client.post(
        f"/contracts/{contract.pk}/contacts/",
        {"support": [u.pk for u in support], "notified": [u.pk for u in notified]},
    )


def test_alice_makes_bob_unable_to_open_tickets_and_he_is_told_why_and_whom_to_ask(client, acme_contract, alice, bob):
    service = acme_contract.services.get()
    earlier = ticket_open(user=bob, contract=acme_contract, service=service, **TICKET)
    client.force_login(alice)
    page = client.get(f"/contracts/{acme_contract.pk}/contacts/")
    assert page.status_code == 200 and b'name="support"' in page.content
    assert _contacts(client, acme_contract, [alice], [alice, bob]).status_code == 302
    assert list(acme_contract.support_contacts.all()) == [alice]
    entry = AuditEntry.objects.get(action="contract.contacts_changed")
    assert (entry.actor, entry.before, entry.after) == (
        alice, {"support_contacts": ["alice@acme.example", "bob@acme.example"]},
        {"support_contacts": ["alice@acme.example"]},
    )  # fmt: skip

    client.force_login(bob)
    for response in (client.get("/tickets/new/"), client.post("/tickets/new/", {"contract": acme_contract.pk})):
        assert response.status_code == 403
        body = response.content.decode()
        assert "You may not open tickets" in body and "designated support contacts" in body
        assert "Alice Achieng" in body and "mailto:alice@acme.example" in body
    assert Ticket.objects.count() == 1
    with pytest.raises(NotASupportContact, match=r"ask Alice Achieng \(alice@acme.example\)"):
        ticket_open(user=bob, contract=acme_contract, service=service, **TICKET)
    # The API: 403 with the same reason.
    _, token = AuthToken.objects.create(user=bob)
    api = type(client)(headers={"Authorization": f"Token {token}"})
    body = {"contract": acme_contract.pk, "service": service.pk, **TICKET}
    response = api.post("/api/v1/tickets/", body, content_type="application/json")
    assert response.status_code == 403
    assert "not a designated support contact of KAL-0001" in response.json()["detail"]
    assert "alice@acme.example" in response.json()["detail"]
    # He keeps his ticket: he answers it and closes it.
    assert client.post(f"/tickets/{earlier.pk}/reply/", {"body": "More logs attached."}).status_code == 302
    assert client.post(f"/tickets/{earlier.pk}/status/", {"status": "closed"}).status_code == 302
    assert Ticket.objects.get(pk=earlier.pk).status == "closed"
    # Designated again, he files.
    client.force_login(alice)
    _contacts(client, acme_contract, [alice, bob], [alice])
    assert api.post("/api/v1/tickets/", body, content_type="application/json").status_code == 201


def test_the_form_offers_only_the_contracts_one_may_open_tickets_on(client, acme_contract, alice, bob):
    other = ContractFactory(organisation=acme_contract.organisation, name="Second contract", support_contacts=[alice])
    client.force_login(bob)
    page = client.get("/tickets/new/")
    body = page.content.decode()
    assert page.status_code == 200
    offered = re.search(r'<select name="contract".*?</select>', body, re.S).group()  # not the services' ids
    assert f'value="{acme_contract.pk}"' in offered and f'value="{other.pk}"' not in offered
    assert "You are not a designated support contact of Second contract" in body
    form = {"contract": other.pk, "service": other.services.get().pk, **TICKET}
    response = client.post("/tickets/new/", form)
    assert response.status_code == 400 and not Ticket.objects.exists()


def test_a_deactivated_person_or_another_organisations_may_not_open_tickets(acme_contract, alice, bob, charlie):
    support_contact_check(user=bob, contract=acme_contract)
    bob.is_active = False
    with pytest.raises(NotASupportContact):
        support_contact_check(user=bob, contract=acme_contract)
    acme_contract.support_contacts.add(charlie)  # a wrong row cannot open another organisation's contract
    with pytest.raises(NotASupportContact):
        support_contact_check(user=charlie, contract=acme_contract)


def test_members_read_the_contacts_and_change_nothing_and_bad_input_is_400(client, acme_contract, alice, bob):
    client.force_login(bob)
    page = client.get(f"/contracts/{acme_contract.pk}/contacts/")
    assert page.status_code == 200 and b'name="support"' not in page.content and b"admins change these" in page.content
    # What a notification contact gets that others do not (portal.core.notify_rules), not a list
    # that everyone gets anyway (maintenance and incidents reach every member by default).
    assert b"breaches and escalations of any of its tickets, SLA changes and credits" in page.content
    assert _contacts(client, acme_contract, [bob], [bob]).status_code == 403
    client.force_login(alice)
    response = _contacts(client, acme_contract, [], [alice])
    assert response.status_code == 400 and b"Designate at least one support contact" in response.content
    for bad in (["x", "999999"], ["9" * 25]):  # 25 digits: no database integer (SQLite raised OverflowError)
        response = client.post(f"/contracts/{acme_contract.pk}/contacts/", {"support": bad, "notified": bad})
        assert response.status_code == 400 and b"Choose among your organisation" in response.content
    assert set(acme_contract.support_contacts.all()) == {alice, bob}


def test_another_organisations_contract_contacts_are_404(client, acme_contract, globex_contract, alice, charlie):
    client.force_login(alice)
    assert client.get(f"/contracts/{globex_contract.pk}/contacts/").status_code == 404
    assert _contacts(client, globex_contract, [alice], [alice]).status_code == 404
    assert list(globex_contract.support_contacts.all()) == [charlie]


def test_an_invitation_designates_the_new_person_on_the_chosen_contracts(acme_contract, alice):
    other = ContractFactory(organisation=acme_contract.organisation, support_contacts=[alice])
    _, token = invitation_create(
        organisation=alice.organisation, email="erin@acme.example", role="member", actor=alice,
        support_contracts=[other],
    )  # fmt: skip
    erin = invitation_accept(token=token, name="Erin", password="kingfisher-lantern-42")
    assert list(erin.support_contact_for.all()) == [other]


def test_the_migration_designates_every_person_of_each_organisation(acme, alice, bob):
    from importlib import import_module

    contract = ContractFactory(organisation=acme, support_contacts=[])
    UserFactory(email="zed@elsewhere.example")  # another organisation's
    import_module("contracts.migrations.0008_support_contacts").designate_every_member(apps, None)
    assert set(Contract.objects.get(pk=contract.pk).support_contacts.all()) == {alice, bob}
