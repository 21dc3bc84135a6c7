"""A contract's closed months keep the terms and the dates they were judged by: once a month is
closed, the contract's SLA stays (a change of terms is a new version of that SLA, published with
notice), and its dates cannot leave a closed month outside it. Before, staff could point KAL-0001
at the Klart SLA in the admin: November, closed under Kaluari v1 at a 10% credit, was judged again
by Klart's terms at the next correction (its credit gone, "credit now none" emailed), its statement
named Klart above Kaluari's figures, and a month reopened after a move to an SLA with no version
yet in force stayed reopened for ever, its claim never decidable. Moving the start past November
made its statement a 404 while the uptime page and the API still showed it with its claim."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from contracts.models import SLA, Contract
from credits.closing import close_month

from .test_audit_completeness import change_form

pytestmark = pytest.mark.django_db
NBO = ZoneInfo("Africa/Nairobi")
NOW = datetime(2026, 12, 3, 10, 0, tzinfo=NBO)


@pytest.fixture
def ayo_client(client, ayo):
    client.force_login(ayo)
    return client


@pytest.fixture
def url(acme_contract):
    return reverse("admin:contracts_contract_change", args=[acme_contract.pk])


def close_november(contract):
    at = datetime(2026, 12, 1, 1, 0, tzinfo=NBO)
    with time_machine.travel(at, tick=False):
        assert close_month(month=date(2026, 11, 1), now=at, contract_ids=[contract.pk]) == 1


def refused(response) -> str:
    assert response.status_code == 200, "saved"
    return " ".join(response.context["adminform"].form.non_field_errors())


def test_the_sla_of_a_contract_with_a_closed_month_stays(ayo_client, url, acme_contract):
    close_november(acme_contract)
    kaluari = acme_contract.sla
    with time_machine.travel(NOW, tick=False):
        data = change_form(ayo_client, url, "contract_form")
        data["sla"] = [str(SLA.objects.get(template_key="klart-ai").pk)]
        message = refused(ayo_client.post(url, data))
    assert message == (
        "The contract's months up to November 2026 were judged by the terms of Kaluari Cloud Backup SLA: it keeps "
        "that SLA (a change of terms is a new version of it, published with notice to the contacts)."
    )
    assert Contract.objects.get(pk=acme_contract.pk).sla == kaluari


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("starts_on", "2026-12-01", "November 2026 is a closed month of this contract: it cannot start after it."),
        ("ends_on", "2026-10-31", "November 2026 is a closed month of this contract: it cannot end before it."),
    ],
)
def test_a_contracts_dates_keep_its_closed_months_inside_it(ayo_client, url, acme_contract, field, value, message):
    close_november(acme_contract)
    with time_machine.travel(NOW, tick=False):
        data = change_form(ayo_client, url, "contract_form")
        data[field] = [value]
        assert refused(ayo_client.post(url, data)) == message
    stored = Contract.objects.get(pk=acme_contract.pk)
    assert (stored.starts_on, stored.ends_on) == (date(2026, 1, 1), None)


def test_what_keeps_the_closed_months_inside_and_their_sla_is_saved(ayo_client, url, acme_contract):
    close_november(acme_contract)
    with time_machine.travel(NOW, tick=False):
        data = change_form(ayo_client, url, "contract_form")
        data.update(starts_on=["2026-11-30"], ends_on=["2026-11-30"], monthly_invoice_amount=["90000"])
        assert ayo_client.post(url, data).status_code == 302
    stored = Contract.objects.get(pk=acme_contract.pk)
    assert (stored.starts_on, stored.ends_on, stored.monthly_invoice_amount) == (
        date(2026, 11, 30),
        date(2026, 11, 30),
        90000,
    )


def test_a_contract_without_a_closed_month_may_move_to_another_sla(ayo_client, url, acme_contract):
    klart = SLA.objects.get(template_key="klart-ai")
    with time_machine.travel(NOW, tick=False):
        data = change_form(ayo_client, url, "contract_form")
        data["sla"] = [str(klart.pk)]
        assert ayo_client.post(url, data).status_code == 302
    assert Contract.objects.get(pk=acme_contract.pk).sla == klart
