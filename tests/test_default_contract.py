"""An organisation's default contract: where an email to a support address several of its contracts
share files a ticket (without one the message is held for staff), and the contract the portal's
ticket form proposes. Set by staff in the admin and by the customer's admins on a contract's
contacts page, audited. Acme has two Kaluari contracts, both answering at support@kaluari.com."""

from __future__ import annotations

import pytest
from django.urls import reverse

from contracts.models import Organisation
from contracts.people.support import default_contract_set
from portal.models import AuditEntry
from tickets.models import InboundMessage, Ticket

from .factories import ContractFactory
from .test_admin import form_data
from .test_inbound import frozen, mail, take  # noqa: F401 - frozen: the fixture, used by name

pytestmark = pytest.mark.django_db


@pytest.fixture
def second_contract(acme, alice, bob, acme_contract):
    return ContractFactory(organisation=acme, reference="KAL-0002", name="Archive for Acme", contacts=[alice])


def default_entries():
    return list(
        AuditEntry.objects.filter(action__in=["organisation.default_contract_changed", "organisation.changed"])
        .order_by("id")
        .values_list("action", "actor_email", "before", "after")
    )


# --- The email channel ---------------------------------------------------------------------------
@pytest.mark.usefixtures("frozen")
def test_several_matching_contracts_file_on_the_default_one_else_the_message_is_held(
    acme, alice, acme_contract, second_contract
):
    held = take(mail(message_id="<m1@acme.example>"))
    assert held.kind == "held" and not Ticket.objects.exists()
    assert "KAL-0001, KAL-0002" in held.reason and "default contract" in held.reason

    default_contract_set(organisation=acme, contract=second_contract, actor=alice)
    filed = take(mail(message_id="<m2@acme.example>"))

    assert filed.kind == "filed"
    assert Ticket.objects.get(pk=filed.ticket_id).contract == second_contract


@pytest.mark.usefixtures("frozen")
def test_a_default_the_sender_may_not_open_tickets_on_does_not_take_the_message(
    acme, alice, bob, acme_contract, second_contract
):
    third = ContractFactory(organisation=acme, reference="KAL-0003", support_contacts=[alice])
    default_contract_set(organisation=acme, contract=third, actor=alice)
    # Bob may open tickets on KAL-0001 and KAL-0002, not on the default: still nothing is clear.
    assert take(mail(sender="bob@acme.example")).kind == "held"
    # Alice may on all three: the default.
    filed = take(mail(message_id="<m2@acme.example>"))
    assert Ticket.objects.get(pk=filed.ticket_id).contract == third
    assert InboundMessage.objects.filter(outcome="held").count() == 1


# --- The customer admin ---------------------------------------------------------------------------
def test_a_customer_admin_makes_a_contract_the_default_audited(client, acme, alice, acme_contract, second_contract):
    client.force_login(alice)
    page = client.get(reverse("contract-contacts", args=[second_contract.pk])).content.decode()
    assert "Make KAL-0002 the default contract" in page

    response = client.post(reverse("contract-make-default", args=[second_contract.pk]))

    assert response.status_code == 302
    assert Organisation.objects.get(pk=acme.pk).default_contract == second_contract
    page = client.get(reverse("contract-contacts", args=[second_contract.pk])).content.decode()
    assert "This is your organisation's <strong>default contract</strong>" in page
    assert default_entries() == [
        ("organisation.default_contract_changed", alice.email, {"default_contract": None},
         {"default_contract": "KAL-0002"}),
    ]  # fmt: skip
    client.post(reverse("contract-make-default", args=[second_contract.pk]))  # again: no change, no entry
    assert len(default_entries()) == 1


def test_a_member_may_not_choose_the_default(client, acme, bob, acme_contract, second_contract):
    client.force_login(bob)
    assert "Make KAL-0002" not in client.get(reverse("contract-contacts", args=[second_contract.pk])).content.decode()
    assert client.post(reverse("contract-make-default", args=[second_contract.pk])).status_code == 403
    assert Organisation.objects.get(pk=acme.pk).default_contract is None and not default_entries()


def test_the_ticket_form_proposes_the_default_contract(client, acme, alice, acme_contract, second_contract):
    client.force_login(alice)
    assert client.get(reverse("ticket-new")).context["form"].chosen_contract is None
    default_contract_set(organisation=acme, contract=second_contract, actor=alice)
    form = client.get(reverse("ticket-new")).context["form"]
    assert form.chosen_contract == second_contract
    assert client.get(reverse("ticket-new") + f"?contract={acme_contract.pk}").context["form"].chosen_contract == (
        acme_contract
    )


# --- Staff in the admin ---------------------------------------------------------------------------
def test_staff_choose_the_default_among_the_organisations_contracts_audited(
    client, ayo, acme, globex, acme_contract, second_contract, globex_contract
):
    client.force_login(ayo)
    url = reverse("admin:contracts_organisation_change", args=[acme.pk])
    page = client.get(url)
    offered = {c.reference for c in page.context["adminform"].form.fields["default_contract"].queryset}
    assert offered == {"KAL-0001", "KAL-0002"}
    data = form_data(page.content.decode(), "organisation_form")

    refused = client.post(url, {**data, "default_contract": [str(globex_contract.pk)]})
    assert refused.status_code == 200 and "default_contract" in refused.context["adminform"].form.errors

    assert client.post(url, {**data, "default_contract": [str(acme_contract.pk)]}).status_code == 302
    assert Organisation.objects.get(pk=acme.pk).default_contract == acme_contract
    ((action, actor, before, after),) = default_entries()
    assert (action, actor, before, after) == (
        "organisation.changed",
        ayo.email,
        {"default_contract": None},
        {"default_contract": str(acme_contract)},
    )
