"""Canned replies (issue 21, item 3): named replies with placeholders, personal or a team's (a team is
a staff role), filled on the server for one ticket and inserted in the ticket page's reply form.

Alice (Acme, Kaluari terms, Africa/Nairobi) files a P3 on Friday 11 December 2026 at 16:00 Nairobi
time: its first response is due Monday 14 December 11:00 (4 business hours). Sam is a support
agent, Lena a support lead (she keeps the teams' replies), Sol security, Ada the superuser."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core import mail
from django.urls import reverse

from portal.domain.formats import in_tz
from portal.domain.placeholders import fill, problems
from portal.models import AuditEntry, OutboxMessage
from tickets.canned import PLACEHOLDERS
from tickets.models import CannedReply, Ticket
from tickets.services import ticket_open

pytestmark = pytest.mark.django_db

NBO = ZoneInfo("Africa/Nairobi")
FILED = datetime(2026, 12, 11, 16, 0, tzinfo=NBO)
LATER = datetime(2026, 12, 11, 16, 30, tzinfo=NBO)
ADD = reverse("admin:tickets_cannedreply_add")
LIST = reverse("admin:tickets_cannedreply_changelist")


@pytest.fixture(autouse=True)
def _half_an_hour_later():
    """Each test runs half an hour after the filing (staff sign in then: a staff session is short)."""
    with time_machine.travel(LATER, tick=False):
        yield


@pytest.fixture
def ticket(acme_contract, alice):
    with time_machine.travel(FILED, tick=False):
        t = ticket_open(user=alice, contract=acme_contract, service=acme_contract.services.get(), priority="P3",
                        subject="Restore fails", description="Since last night.")  # fmt: skip
    OutboxMessage.objects.update(status="sent")  # the filing's emails: sent before
    mail.outbox.clear()
    return t


def team(name: str) -> Group:
    return Group.objects.get(name=name)


def reply(name, body, *, owner=None, team_name=None) -> CannedReply:
    return CannedReply.objects.create(
        name=name, body=body, owner=owner, team=team(team_name) if team_name else None, created_at=FILED,
        updated_at=FILED,
    )  # fmt: skip


def filled(client, ticket, canned):
    return client.get(reverse("admin:tickets_ticket_canned", args=[ticket.pk]), {"reply": canned.pk})


# --- The placeholders' syntax (pure) -----------------------------------------------------------------------
def test_a_placeholder_is_a_known_name_in_double_braces_and_nothing_else_is_syntax():
    known = {"ticket_number", "customer_name"}
    assert problems("Dear {{customer_name}}, about {{ ticket_number }}.", known) == []
    assert problems("Hi {{ customer }} and {{ agent }} and {{ customer }}", known) == [
        "Unknown placeholders: {{ customer }}, {{ agent }}."
    ]
    for stray in ("{{ customer_name.password }}", "{% load x %}", "a }} b", "{{ ticket_number|upper }}", "{{ }}"):
        assert problems(stray, known), stray
    # A value is put in as it is: braces in a customer's name are not read as a placeholder again.
    assert fill("Dear {{ customer_name }}", {"customer_name": "{{ ticket_number }}"}) == "Dear {{ ticket_number }}"


# --- Filling a reply for a ticket -------------------------------------------------------------------------
def test_each_placeholder_is_filled_for_the_ticket_in_the_contracts_time(client, ticket, sam):
    body = "\n".join(f"{name}={{{{ {name} }}}}" for name in PLACEHOLDERS)
    canned = reply("Everything", body, owner=sam)
    client.force_login(sam)
    response = filled(client, ticket, canned)
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    lines = dict(line.split("=", 1) for line in response.json()["body"].splitlines())
    t = Ticket.objects.get(pk=ticket.pk)
    assert lines == {
        "customer_name": "Alice Achieng",
        "organisation": "Acme Savings",
        "ticket_number": f"#{t.pk}",
        "subject": "Restore fails",
        "first_response_due": "2026-12-14 11:00 (UTC+03:00)",  # Monday, 4 business hours on
        "resolution_target": in_tz(t.resolution_target_at, "Africa/Nairobi"),
        "resolution_due": in_tz(t.resolution_due, "Africa/Nairobi"),
        "next_deadline": "2026-12-14 11:00 (UTC+03:00)",
        "timezone": "Africa/Nairobi",
        "escalation_level": "1",
        "escalation_contact": lines["escalation_contact"],
        "agent_name": "Sam Support",
    }
    assert t.resolution_target_at > t.first_response_due and "UTC+03:00" in lines["resolution_due"]
    assert lines["escalation_contact"] not in ("", "—")
    assert response.json()["name"] == "Everything"


def test_without_script_the_insert_button_reloads_the_page_with_the_reply_filled_in(client, ticket, sam):
    canned = reply("Ack", "Dear {{ customer_name }}, we are on {{ ticket_number }}.", owner=sam)
    client.force_login(sam)
    page = reverse("admin:tickets_ticket_change", args=[ticket.pk])
    html = client.get(page).content.decode()
    assert 'id="id_canned"' in html and f'<option value="{canned.pk}">Ack</option>' in html
    html = client.get(page, {"canned": canned.pk}).content.decode()
    assert f"Dear Alice Achieng, we are on #{ticket.pk}.</textarea>" in html


def test_a_reply_with_a_placeholder_left_unfilled_is_not_sent(client, ticket, sam):
    client.force_login(sam)
    url = reverse("admin:tickets_ticket_reply", args=[ticket.pk])
    response = client.post(url, {"body": "Hello {{ customer_name }}, looking into it."})
    assert "Replace {{ customer_name }} with the text it stands for" in response.content.decode()
    assert not ticket.messages.exists() and not OutboxMessage.objects.exclude(status="sent").exists()
    # Other braces are the agent's own text (a customer's template, a JSON snippet): sent as written.
    assert client.post(url, {"body": 'Try {"a": {{ 1 }}}: {{ item.name }}.'}).status_code == 302
    assert ticket.messages.get().body == 'Try {"a": {{ 1 }}}: {{ item.name }}.'


def test_a_filled_reply_is_sent_when_the_customers_own_words_spell_a_placeholder(client, acme_contract, alice, sam):
    """Alice's subject quotes her own product's template, "{{ customer_name }}": Insert fills the reply
    with it as she wrote it, and Send sends it (her words are no placeholder left). A placeholder of
    the reply's own, left unfilled beside them, is still refused."""
    with time_machine.travel(FILED, tick=False):
        t = ticket_open(user=alice, contract=acme_contract, service=acme_contract.services.get(), priority="P3",
                        subject="Our invoice email prints {{ customer_name }} literally",
                        description="Since last night.")  # fmt: skip
    OutboxMessage.objects.update(status="sent")
    mail.outbox.clear()
    canned = reply("Acknowledge", "Dear {{ customer_name }}, we are looking at “{{ subject }}” ({{ ticket_number }}).",
                   owner=sam)  # fmt: skip
    client.force_login(sam)
    body = filled(client, t, canned).json()["body"]
    assert body == (
        f"Dear Alice Achieng, we are looking at “Our invoice email prints {{{{ customer_name }}}} literally” ({t.number})."
    )
    url = reverse("admin:tickets_ticket_reply", args=[t.pk])
    response = client.post(url, {"body": body + " Regards, {{ agent_name }}"})
    assert "Replace {{ agent_name }} with the text it stands for" in response.content.decode()
    assert not t.messages.exists()
    response = client.post(url, {"body": body})
    assert response.status_code == 302 and t.messages.get().body == body
    assert OutboxMessage.objects.filter(template="ticket_reply", to=alice.email).exclude(status="sent").count() == 1


# --- Who sees which reply ---------------------------------------------------------------------------------
def test_personal_replies_are_their_owners_and_team_replies_their_teams(client, ticket, sam, lena, sol, ada):
    mine = reply("Sam's own", "Hi.", owner=sam)
    agents = reply("Agents' greeting", "Hello.", team_name="Support agent")
    security = reply("Report received", "Thanks.", team_name="Security")
    lenas = reply("Lena's own", "Hey.", owner=lena)

    def usable(user):
        client.force_login(user)
        return {c.name for c in (mine, agents, security, lenas) if filled(client, ticket, c).status_code == 200}

    def listed(user):
        client.force_login(user)
        return {str(c) for c in client.get(LIST).context["cl"].result_list}

    assert usable(sam) == {"Sam's own", "Agents' greeting"}
    assert usable(lena) == {"Lena's own"}  # her team (support lead) has none; the agents' are theirs to use
    assert usable(ada) == set()  # superuser status shows nobody's personal replies
    assert filled(client, ticket, lenas).status_code == 404 and "error" in filled(client, ticket, lenas).json()

    assert listed(sam) == {"Sam's own", "Agents' greeting"}
    assert listed(lena) == {"Lena's own", "Agents' greeting", "Report received"}  # she keeps every team's
    assert listed(sol) == {"Report received"}
    assert listed(ada) == {"Agents' greeting", "Report received"}
    client.force_login(lena)  # another's personal reply is not found, not shown
    response = client.get(reverse("admin:tickets_cannedreply_change", args=[mine.pk]))
    assert response.status_code == 302 and "Sam's own" not in response.content.decode()

    # The ticket page's picker offers the replies Sam may use, his own first.
    client.force_login(sam)
    html = client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk])).content.decode()
    assert html.index("Sam&#x27;s own") < html.index('optgroup label="Team: Support agent"')
    assert "Report received" not in html and "Lena" not in html.split('id="id_canned"')[1].split("</select>")[0]


def test_the_fill_is_only_for_those_who_work_the_ticket(client, ticket, sam, alice):
    canned = reply("Ack", "On it.", owner=sam)
    client.force_login(alice)
    assert filled(client, ticket, canned).status_code == 302  # a customer: the admin's login
    client.force_login(sam)
    url = reverse("admin:tickets_ticket_canned", args=[ticket.pk])
    assert client.post(url, {"reply": canned.pk}).status_code == 405
    assert client.get(url, {"reply": "x"}).status_code == 404


# --- Keeping them: who may, the checks, the audit -----------------------------------------------------------
def test_an_agent_keeps_personal_replies_and_only_a_lead_keeps_the_teams(client, sam, lena):
    agents = team("Support agent")
    client.force_login(sam)
    assert (
        client.post(ADD, {"name": "Ack", "body": "On it, {{ customer_name }}.", "team": agents.pk}).status_code == 302
    )
    ack = CannedReply.objects.get()
    assert ack.owner == sam and ack.team is None  # no team field for him: a personal reply
    team_reply = reply("Agents' greeting", "Hello.", team_name="Support agent")
    change = reverse("admin:tickets_cannedreply_change", args=[team_reply.pk])
    page = client.get(change).content.decode()
    assert 'name="_save"' not in page and "Support agent" in page  # he reads it and its team, he does not edit it
    assert client.post(change, {"name": "Mine now", "body": "x"}).status_code == 403
    delete = reverse("admin:tickets_cannedreply_delete", args=[team_reply.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert CannedReply.objects.get(pk=team_reply.pk).name == "Agents' greeting"

    client.force_login(lena)
    response = client.post(ADD, {"name": "Outage notice", "body": "We know, {{ customer_name }}.", "team": agents.pk})
    assert response.status_code == 302
    assert CannedReply.objects.get(name="Outage notice").team == agents
    assert client.post(change, {"name": "Agents' hello", "body": "Hello.", "team": agents.pk}).status_code == 302
    assert CannedReply.objects.get(pk=team_reply.pk).name == "Agents' hello"


def test_an_unknown_placeholder_or_a_name_taken_is_the_forms_error_and_nothing_is_saved(client, sam):
    client.force_login(sam)
    response = client.post(ADD, {"name": "Ack", "body": "Dear {{ customer }}, {% now 'Y' %}"})
    assert response.status_code == 400
    errors = response.context["adminform"].form.errors["body"]
    assert errors == [
        "Unknown placeholder: {{ customer }}.",
        "Braces that are not a placeholder: write a placeholder as {{ name }}, from the list.",
    ]
    assert not CannedReply.objects.exists()
    reply("Ack", "Hi.", owner=sam)
    response = client.post(ADD, {"name": "Ack", "body": "Hello."})
    assert response.status_code == 400 and response.context["adminform"].form.errors["name"] == [
        "There is already a reply of this name of yours."
    ]
    assert CannedReply.objects.count() == 1


def test_creating_editing_and_deleting_a_reply_are_audited(client, sam):
    client.force_login(sam)
    client.post(ADD, {"name": "Ack", "body": "On it."})
    ack = CannedReply.objects.get()
    change = reverse("admin:tickets_cannedreply_change", args=[ack.pk])
    client.post(change, {"name": "Ack", "body": "On it, {{ customer_name }}."})
    client.post(change, {"name": "Ack", "body": "On it, {{ customer_name }}."})  # unchanged: no entry
    client.post(reverse("admin:tickets_cannedreply_delete", args=[ack.pk]), {"post": "yes"})
    entries = list(AuditEntry.objects.filter(target_type="tickets.cannedreply").order_by("pk"))
    assert [e.action for e in entries] == ["canned_reply.created", "canned_reply.changed", "canned_reply.deleted"]
    assert all(e.actor == sam and e.target_id == str(ack.pk) for e in entries)
    assert entries[1].before == {"body": "On it."} and entries[1].after["body"] == "On it, {{ customer_name }}."
    assert entries[2].before["name"] == "Ack" and not CannedReply.objects.exists()


def test_the_demos_canned_replies_hold_only_known_placeholders():
    from portal.site.demo import CANNED
    from tickets.canned import placeholder_problems

    assert [placeholder_problems(body) for _, _, body in CANNED] == [[], [], []]


def test_a_vulnerability_report_is_filled_with_its_reporter_for_security_staff_only(client, sol, sam):
    from tickets.security import security_report_submit

    report = security_report_submit(email="finder@example.org", name="Fay Finder", summary="XSS", details="In search.")
    canned = reply(
        "Received", "Dear {{ customer_name }}, about {{ subject }} {{ ticket_number }}.", team_name="Security"
    )
    client.force_login(sol)
    assert filled(client, report, canned).json()["body"] == f"Dear Fay Finder, about Vulnerability report #{report.pk}."
    client.force_login(sam)  # not his team's reply, nor a ticket he sees
    assert filled(client, report, canned).status_code == 404
