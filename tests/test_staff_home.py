"""The staff site's home page: beside the lists, the reader's own work (the active tickets assigned
to them, the tickets they last wrote in) in place of Django's "Recent actions", which the ticket and
claim pages never write to."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.urls import reverse

from portal.core.roles import StaffRole
from portal.core.staff_access import staff_role_assign
from tickets.models import Ticket
from tickets.security import security_report_submit
from tickets.services import ticket_assign, ticket_open, ticket_reply, ticket_set_status

from .factories import StaffFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 3, 7, 0, tzinfo=UTC)
HOME = "admin:index"


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def file(contract, user, subject):
    return ticket_open(
        user=user, contract=contract, service=contract.services.get(), priority="P3", subject=subject,
        description="Nothing backs up.",
    )  # fmt: skip


def own_work(client, user) -> str:
    client.force_login(user)
    html = client.get(reverse(HOME)).content.decode()
    assert "Recent actions" not in html
    start = html.find('id="own-work"')
    return html[start : html.index("</div>", start)] if start >= 0 else ""


def test_an_agent_sees_their_active_tickets_and_where_they_last_wrote(client, acme_contract, bob, sam, lena):
    first, second, third = (file(acme_contract, bob, s) for s in ("Restore fails", "Agent offline", "Old job"))
    for ticket in (first, second, third):
        ticket_assign(ticket=ticket, actor=lena, assignee=sam)
    ticket_set_status(ticket=third, actor=sam, status=Ticket.Status.RESOLVED)  # not active any more
    ticket_assign(ticket=file(acme_contract, bob, "Lena's"), actor=lena, assignee=lena)
    with time_machine.travel(NOW.replace(hour=8), tick=False):
        ticket_reply(ticket=first, author=sam, body="Looking.")
    with time_machine.travel(NOW.replace(hour=9), tick=False):
        ticket_reply(ticket=second, author=sam, body="A note.", internal=True)
    with time_machine.travel(NOW.replace(hour=10), tick=False):
        ticket_reply(ticket=first, author=sam, body="Fixed?")

    work = own_work(client, sam)
    queue = reverse("admin:tickets_ticket_changelist")
    assert f'href="{queue}?assignee__id__exact={sam.pk}">2 active tickets assigned to you</a>' in work
    # Latest first, each ticket once; a note counts as writing in it.
    assert work.index(f"#{first.pk} Restore fails") < work.index(f"#{second.pk} Agent offline")
    assert work.count(f"#{first.pk} ") == 1 and "Old job" not in work and "Lena&#x27;s" not in work
    assert reverse("admin:tickets_ticket_change", args=[first.pk]) in work


def test_a_vulnerability_report_shows_only_to_security_staff(client, sol):
    report = security_report_submit(email="eve@research.example", name="Eve", summary="XSS", details="...")
    ticket_assign(ticket=report, actor=sol, assignee=sol)
    ticket_reply(ticket=report, author=sol, body="Thanks, confirmed.", internal=True)
    assert "1 active ticket assigned to you" in own_work(client, sol)
    assert "Vulnerability report" in own_work(client, sol)  # its subject line, never the reporter's words
    staff_role_assign(user=sol, role=StaffRole.SUPPORT_AGENT)  # no longer theirs to see
    work = own_work(client, sol)
    assert "0 active tickets assigned to you" in work and "Vulnerability report" not in work


def test_staff_who_may_not_see_tickets_get_no_such_box(client):
    assert own_work(client, StaffFactory(email="nobody@vendor.example", staff_role="")) == ""
