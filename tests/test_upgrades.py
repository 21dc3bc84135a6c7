"""Upgrades of older databases: migrations read only their historical models (live code changes with
later migrations), and what an older database lacks is put right by the code of the day. Clocks are
frozen (Nairobi time)."""

import importlib
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.apps import apps

from tickets.models import DeadlineRecompute, Ticket
from tickets.services import ticket_open
from tickets.sweeps import check_sla_deadlines

NBO = ZoneInfo("Africa/Nairobi")
MON_1400 = datetime(2026, 12, 7, 14, 0, tzinfo=NBO)
MIN = timedelta(minutes=1)
CLOCK_COLUMNS = ["at_risk_at", "first_response_warn_at", "resolution_warn_at", "escalation_dues", "next_deadline"]
pytestmark = pytest.mark.django_db


def file(contract, user, priority="P3"):
    with time_machine.travel(MON_1400, tick=False):
        return ticket_open(
            user=user, contract=contract, service=contract.services.get(), priority=priority,
            subject="Restores are slow", description="A restore of 2 GB takes hours.",
        )  # fmt: skip


def request_recompute():
    migration = importlib.import_module("tickets.migrations.0021_recompute_missing_deadlines")
    with time_machine.travel(MON_1400 + MIN, tick=False):
        migration.request_recompute(apps, None)


def test_open_tickets_without_stored_deadlines_get_them_from_the_sla_sweep(acme_contract, alice):
    """A database from before tickets/0004 has open tickets without the at-risk moment, the warnings
    and the escalation dues: the migration asks for their recompute, due at once, and the minute's
    sweep does it (before, 0004 called the live recompute and the upgrade stopped there)."""
    lacking = file(acme_contract, alice)
    file(acme_contract, alice, "P2")  # with its deadlines
    expected = Ticket.objects.filter(pk=lacking.pk).values(*CLOCK_COLUMNS).get()
    assert expected["at_risk_at"] and expected["escalation_dues"]
    Ticket.objects.filter(pk=lacking.pk).update(
        at_risk_at=None, first_response_warn_at=None, resolution_warn_at=None, escalation_dues=[]
    )
    request_recompute()
    (request,) = DeadlineRecompute.objects.all()
    assert (request.version_ids, request.calendar_ids, request.due_at) == ([lacking.sla_version_id], [], MON_1400 + MIN)
    with time_machine.travel(MON_1400 + 2 * MIN, tick=False):
        check_sla_deadlines()
    assert Ticket.objects.filter(pk=lacking.pk).values(*CLOCK_COLUMNS).get() == expected
    assert not DeadlineRecompute.objects.exists()


def test_no_request_when_every_open_ticket_has_its_deadlines(acme_contract, alice):
    file(acme_contract, alice)
    closed = file(acme_contract, alice)
    Ticket.objects.filter(pk=closed.pk).update(status="closed", at_risk_at=None, next_deadline=None)
    request_recompute()
    assert not DeadlineRecompute.objects.exists()
