"""Who is emailed what (portal.core.notify_rules), sender by sender: a person who turned a kind off
gets none of it, what cannot be turned off still goes (without an unsubscribe header), and an
optional email carries List-Unsubscribe and List-Unsubscribe-Post (RFC 8058). Frozen clocks;
emails asserted as outbox rows."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

from contracts.maintenance.services import window_cancel, window_publish
from contracts.maintenance.sweep import maintenance_notices_send_due
from contracts.models import Outage
from contracts.outages.services import outage_record
from contracts.people.invitations import invitation_create
from contracts.people.review import contacts_review_request_due
from contracts.services import sla_version_draft, sla_version_publish
from credits.closing import close_due
from credits.services import claim_approve, claim_reject, claim_submit
from portal.core.notify_rules import About, Choice, Kind, may_email, recipients
from portal.core.unsubscribe import email_to_address, preference_set, token_read
from portal.models import NotificationPreference, OutboxMessage
from tickets.services import (
    escalation_acknowledge,
    ticket_escalate_now,
    ticket_open,
    ticket_reply,
    ticket_request_escalation,
    ticket_set_status,
)
from tickets.sweeps import check_sla_deadlines, escalate_due_tickets

from .factories import ContractFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db
NBO = ZoneInfo("Africa/Nairobi")
FRI_1600 = datetime(2026, 12, 11, 16, 0, tzinfo=NBO)
BASE = "https://portal.example"


@pytest.fixture(autouse=True)
def _https_base(settings):
    settings.PORTAL_BASE_URL = BASE


@pytest.fixture
def only_alice(acme, alice, bob):
    """Acme's contract with Alice its one designated contact; Bob is a plain member."""
    return ContractFactory(organisation=acme, reference="KAL-0001", name="Cloud Backup for Acme", contacts=[alice])


def off(user, choice):
    preference_set(user=user, choice=choice, enabled=False, via="page")


def on(user, choice):
    preference_set(user=user, choice=choice, enabled=True, via="page")


def rows(key_part: str) -> dict[str, OutboxMessage]:
    """The outbox rows whose key contains `key_part`, by recipient."""
    found = OutboxMessage.objects.filter(key__contains=key_part)
    by_to = {m.to: m for m in found}
    assert len(by_to) == found.count(), "one row per recipient"
    return by_to


def optional(row: OutboxMessage, user, choice) -> bool:
    """The row carries the RFC 8058 headers, and its link names exactly this person and kind."""
    url = row.headers["List-Unsubscribe"]
    assert url.startswith(f"<{BASE}/email/unsubscribe/") and url.endswith("/>")
    assert row.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    target = token_read(url[1:-1].rsplit("/", 2)[-2])
    return (target.user.pk, target.choice) == (user.pk, choice)


def mandatory(row: OutboxMessage) -> bool:
    return "List-Unsubscribe" not in row.headers and "List-Unsubscribe-Post" not in row.headers


def file(contract, user, priority="P3", at=FRI_1600):
    with time_machine.travel(at, tick=False):
        return ticket_open(
            user=user, contract=contract, service=contract.services.get(), priority=priority,
            subject="Backups fail", description="Nothing backs up since last night.",
        )  # fmt: skip


# --- The rule ---------------------------------------------------------------------------------------
def test_defaults_follow_the_persons_part(only_alice, alice, bob, charlie):
    ticket_about = About(organisation_id=only_alice.organisation_id, contract=only_alice, owner_id=alice.pk)
    assert [r.user for r in recipients(Kind.TICKET, users=[alice, bob, charlie], about=ticket_about)] == [alice]
    # Maintenance and incidents: every member by default (they use the services); Bob may turn them off.
    assert may_email(alice, Kind.MAINTENANCE, only_alice) and may_email(bob, Kind.MAINTENANCE, only_alice)
    assert may_email(bob, Kind.INCIDENT, only_alice)
    assert may_email(alice, Kind.SLA_CHANGE, only_alice) and not may_email(bob, Kind.SLA_CHANGE, only_alice)
    assert not may_email(charlie, Kind.MAINTENANCE, only_alice)  # another organisation, whatever he chose
    on(charlie, Choice.MAINTENANCE)
    assert not may_email(charlie, Kind.MAINTENANCE, only_alice)
    on(bob, Choice.SLA_CHANGE)  # a member may choose a per-contract kind: for every contract of Acme
    assert may_email(bob, Kind.SLA_CHANGE, only_alice)
    off(bob, Choice.MAINTENANCE)
    assert not may_email(bob, Kind.MAINTENANCE, only_alice)


def test_what_cannot_be_turned_off(only_alice, alice, bob):
    for choice in Choice:
        off(alice, choice)
        off(bob, choice)
    mine = {"organisation_id": only_alice.organisation_id, "contract": only_alice, "owner_id": alice.pk}
    assert may_email(alice, Kind.TICKET_FILED, about=About(**mine))
    assert not may_email(alice, Kind.TICKET, about=About(**mine))
    assert may_email(alice, Kind.BREACH, about=About(**mine, p1=True))
    assert not may_email(alice, Kind.BREACH, about=About(**mine))  # a P2 breach can be turned off
    assert not may_email(alice, Kind.ESCALATION, about=About(**mine, p1=True))
    assert may_email(alice, Kind.MAINTENANCE, only_alice)  # a designated contact
    assert not may_email(bob, Kind.MAINTENANCE, only_alice)
    assert may_email(alice, Kind.CREDIT, about=About(**mine)) and not may_email(alice, Kind.CREDIT, only_alice)
    assert may_email(bob, Kind.ACCOUNT)
    bob.is_active = False
    assert not may_email(bob, Kind.ACCOUNT)


# --- Tickets ----------------------------------------------------------------------------------------
def test_a_receipt_goes_to_its_filer_only_whatever_she_chose(acme_contract, alice, bob):
    """Today's bug: Bob, the contract's other contact, got "your ticket" receipts for Alice's."""
    off(alice, Choice.TICKET_MINE)
    t = file(acme_contract, alice)
    got = rows(f"ticket:{t.pk}:filed:")
    assert set(got) == {alice.email} and mandatory(got[alice.email])


def test_a_member_who_chose_every_ticket_gets_the_receipt_with_a_link(acme_contract, alice, bob):
    on(bob, Choice.TICKET_ORG)
    t = file(acme_contract, alice)
    got = rows(f"ticket:{t.pk}:filed:")
    assert set(got) == {alice.email, bob.email}
    assert optional(got[bob.email], bob, Choice.TICKET_ORG)


def test_replies_and_status_go_to_the_filer_and_participants_unless_turned_off(acme_contract, alice, bob, sam):
    t = file(acme_contract, alice)
    at = FRI_1600 + timedelta(minutes=5)
    reply = ticket_reply(ticket=t, author=sam, body="Looking.", now=at)
    got = rows(f"ticket:{t.pk}:reply:{reply.pk}:")
    assert set(got) == {alice.email} and optional(got[alice.email], alice, Choice.TICKET_MINE)
    ticket_reply(ticket=t, author=bob, body="Same here since 02:00.", now=at)  # Bob takes part
    off(alice, Choice.TICKET_MINE)
    reply = ticket_reply(ticket=t, author=sam, body="Found it.", now=at)
    got = rows(f"ticket:{t.pk}:reply:{reply.pk}:")
    assert set(got) == {bob.email} and optional(got[bob.email], bob, Choice.TICKET_MINE)
    ticket_set_status(ticket=t, actor=sam, status="resolved", now=at)
    assert set(rows(f"ticket:{t.pk}:status:")) == {bob.email}


def test_escalation_requests_and_acknowledgements_are_ticket_updates(acme_contract, alice, bob, lena):
    t = file(acme_contract, alice)
    off(alice, Choice.TICKET_MINE)
    request = ticket_request_escalation(ticket=t, user=bob, reason="Payroll is tomorrow.", now=FRI_1600)
    assert set(rows(f"ticket:{t.pk}:esc-request:")) == {bob.email}  # he asked: a participant
    off(bob, Choice.TICKET_MINE)
    escalation_acknowledge(request=request, actor=lena, now=FRI_1600 + timedelta(minutes=3))
    assert rows(f"ticket:{t.pk}:esc-ack:") == {}


def test_escalation_goes_to_the_people_and_designated_contacts_who_kept_it(acme_contract, alice, bob, lena):
    t = file(acme_contract, alice, "P1")
    off(bob, Choice.BREACH)
    ticket_escalate_now(ticket=t, actor=lena, now=FRI_1600 + timedelta(minutes=1))
    got = rows(f"ticket:{t.pk}:escalation:2:customer:")
    assert set(got) == {alice.email} and optional(got[alice.email], alice, Choice.BREACH)
    off(alice, Choice.BREACH)  # an escalation, even of her own P1, can be turned off
    with time_machine.travel(FRI_1600 + timedelta(hours=2), tick=False):
        escalate_due_tickets()
    assert rows(f"ticket:{t.pk}:escalation:3:customer:") == {}
    assert OutboxMessage.objects.filter(key__startswith=f"ticket:{t.pk}:escalation:3:staff:").exists()


def test_a_breach_of_ones_own_p1_goes_whatever_one_chose(acme_contract, alice, bob):
    p1, p3 = file(acme_contract, alice, "P1"), file(acme_contract, alice, "P3")
    off(alice, Choice.BREACH)
    off(bob, Choice.BREACH)
    with time_machine.travel(FRI_1600 + timedelta(days=3), tick=False):
        check_sla_deadlines()
    got = rows(f"ticket:{p1.pk}:crossing:first_response:breach:customer:")
    assert set(got) == {alice.email} and mandatory(got[alice.email])
    assert rows(f"ticket:{p3.pk}:crossing:first_response:breach:customer:") == {}
    assert OutboxMessage.objects.filter(key__startswith=f"ticket:{p3.pk}:crossing:first_response:breach:staff").exists()


def test_a_designated_contact_gets_breaches_by_default_with_a_link(acme_contract, alice, bob):
    t = file(acme_contract, alice, "P2")
    with time_machine.travel(FRI_1600 + timedelta(days=3), tick=False):
        check_sla_deadlines()
    got = rows(f"ticket:{t.pk}:crossing:first_response:breach:customer:")
    assert set(got) == {alice.email, bob.email}
    assert optional(got[bob.email], bob, Choice.BREACH) and optional(got[alice.email], alice, Choice.BREACH)


# --- Maintenance --------------------------------------------------------------------------------------
def _maintenance(contract):
    start = datetime(2026, 10, 11, 23, 0, tzinfo=NBO)
    with time_machine.travel(datetime(2026, 10, 1, 9, 0, tzinfo=NBO), tick=False):
        window = window_publish(
            title="Backup storage upgrade", description="Disks swapped.", services=list(contract.services.all()),
            starts_at=start, ends_at=start + timedelta(hours=2),
        )  # fmt: skip
    with time_machine.travel(start - timedelta(hours=48), tick=False):
        maintenance_notices_send_due()
    return window


def test_maintenance_goes_to_designated_contacts_whatever_they_chose_and_to_no_one_else_who_opted_out(
    only_alice, alice, bob
):
    dana = UserFactory(email="dana@acme.example", organisation=alice.organisation)
    off(alice, Choice.MAINTENANCE)  # the page says it cannot be turned off for her
    on(dana, Choice.MAINTENANCE)
    on(bob, Choice.MAINTENANCE)
    off(bob, Choice.MAINTENANCE)
    window = _maintenance(only_alice)
    got = rows(f"maintenance:{window.pk}:r1:announce:")
    assert set(got) == {alice.email, dana.email}
    assert mandatory(got[alice.email]) and optional(got[dana.email], dana, Choice.MAINTENANCE)
    with time_machine.travel(window.starts_at - timedelta(hours=1), tick=False):
        maintenance_notices_send_due()
    assert set(rows(f"maintenance:{window.pk}:r1:reminder:")) == {alice.email, dana.email}
    off(dana, Choice.MAINTENANCE)
    window_cancel(window=window, now=window.starts_at - timedelta(minutes=30))
    assert set(rows(f"maintenance:{window.pk}:r1:cancel:")) == {alice.email}


# --- SLA changes --------------------------------------------------------------------------------------
def test_a_new_sla_version_goes_to_designated_contacts_who_kept_it(acme_contract, alice, bob):
    draft = sla_version_draft(sla=acme_contract.sla, effective_on=date(2027, 1, 1), now=FRI_1600)
    off(alice, Choice.SLA_CHANGE)
    sla_version_publish(version=draft, now=FRI_1600)
    got = rows(f"sla-version:{draft.pk}:")
    assert set(got) == {bob.email} and optional(got[bob.email], bob, Choice.SLA_CHANGE)


# --- Credits ------------------------------------------------------------------------------------------
OCT = date(2026, 10, 1)


@pytest.fixture
def bad_october(acme_contract):
    start = datetime(2026, 10, 10, 2, 0, tzinfo=NBO)
    o = Outage.objects.create(title="Storage down", starts_at=start, ends_at=start + timedelta(minutes=500))
    o.services.set(acme_contract.services.all())
    return acme_contract


def test_a_claims_receipt_and_decision_reach_its_submitter_whatever_she_chose(bad_october, alice, bob):
    off(alice, Choice.CREDIT)
    off(bob, Choice.CREDIT)
    ayo = StaffFactory(email="ayo@vendor.example", staff_role="account_manager")
    at = datetime(2026, 11, 3, 10, 0, tzinfo=NBO)
    with time_machine.travel(at, tick=False):
        claim = claim_submit(contract=bad_october, month=OCT, user=alice)
    got = rows(f"claim:{claim.pk}:received:")
    assert set(got) == {alice.email} and mandatory(got[alice.email])
    claim_reject(claim=claim, actor=ayo, reason="Excluded cause.", now=at)
    assert set(rows(f"claim:{claim.pk}:rejected:")) == {alice.email}


def test_a_designated_contact_who_kept_credits_gets_the_decision_with_a_link(bad_october, alice, bob):
    ayo = StaffFactory(email="ayo@vendor.example", staff_role="account_manager")
    at = datetime(2026, 11, 3, 10, 0, tzinfo=NBO)
    with time_machine.travel(at, tick=False):
        claim = claim_submit(contract=bad_october, month=OCT, user=alice)
    claim_approve(claim=claim, actor=ayo, now=at)
    got = rows(f"claim:{claim.pk}:approved:")
    assert set(got) == {alice.email, bob.email}
    assert mandatory(got[alice.email]) and optional(got[bob.email], bob, Choice.CREDIT)


def test_a_month_judged_again_tells_the_claimant_and_the_contacts_who_kept_credits(bad_october, alice, bob):
    with time_machine.travel(datetime(2026, 11, 1, 1, 0, tzinfo=NBO), tick=False):
        close_due(now=datetime(2026, 11, 1, 1, 0, tzinfo=NBO))
    with time_machine.travel(datetime(2026, 11, 3, 10, 0, tzinfo=NBO), tick=False):
        claim_submit(contract=bad_october, month=OCT, user=bob)
    off(alice, Choice.CREDIT)
    off(bob, Choice.CREDIT)
    later = datetime(2026, 11, 5, 10, 0, tzinfo=NBO)
    outage_record(
        title="More down", services=bad_october.services.all(), starts_at=datetime(2026, 10, 20, 8, 0, tzinfo=NBO),
        ends_at=datetime(2026, 10, 20, 18, 0, tzinfo=NBO), cause="unplanned", actor=None, now=later,
    )  # fmt: skip
    with time_machine.travel(later + timedelta(hours=1), tick=False):
        close_due(now=later + timedelta(hours=1))
    got = rows(":rejudged:")
    assert set(got) == {bob.email} and mandatory(got[bob.email])


# --- Account ------------------------------------------------------------------------------------------
def test_a_password_reset_goes_whatever_one_chose(client, alice):
    for choice in Choice:
        off(alice, choice)
    client.post(reverse("password_reset"), {"email": alice.email})
    got = rows(f"password-reset:{alice.pk}:")
    assert set(got) == {alice.email} and mandatory(got[alice.email])


def test_an_invitation_goes_to_its_address_without_a_link(acme, alice):
    invitation, _ = invitation_create(organisation=acme, email="erin@acme.example", role="member", actor=alice)
    got = rows(f"invitation:{invitation.pk}:")
    assert set(got) == {"erin@acme.example"} and mandatory(got["erin@acme.example"])
    with pytest.raises(ValueError, match="goes to a person"):
        email_to_address(Kind.MAINTENANCE, key="x", to="erin@acme.example", template="people_invitation", context={})


def test_the_quarterly_contact_review_goes_to_the_admins_who_kept_it(acme, alice, bob):
    erin = UserFactory(email="erin@acme.example", organisation=acme, customer_role="admin")
    off(erin, Choice.CONTACT_REVIEW)
    on(bob, Choice.CONTACT_REVIEW)  # a member: the review asks admins only, whatever he chose
    with time_machine.travel(datetime(2026, 10, 1, 0, 30, tzinfo=NBO), tick=False):
        contacts_review_request_due()
    got = rows(f"contacts-review:{acme.pk}:")
    assert set(got) == {alice.email} and optional(got[alice.email], alice, Choice.CONTACT_REVIEW)


# --- What is sent -------------------------------------------------------------------------------------
def test_the_sent_email_carries_the_headers_and_the_link_in_its_footer(
    acme_contract, alice, sam, django_capture_on_commit_callbacks
):
    t = file(acme_contract, alice)
    mail.outbox.clear()
    at = FRI_1600 + timedelta(minutes=5)
    with time_machine.travel(at, tick=False), django_capture_on_commit_callbacks(execute=True):
        ticket_reply(ticket=t, author=sam, body="Looking.", now=at)
    sent = next(m for m in mail.outbox if m.to == [alice.email])
    url = OutboxMessage.objects.get(key__contains=":reply:", to=alice.email).headers["List-Unsubscribe"][1:-1]
    assert sent.extra_headers["List-Unsubscribe"] == f"<{url}>"
    assert sent.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    message = sent.message()
    assert message["List-Unsubscribe"] == f"<{url}>"
    assert f"Stop emails of this kind (Updates on my tickets): {url}" in sent.body
    assert f"All your email choices: {BASE}/account/emails/" in sent.body
    assert url in sent.alternatives[0][0]


def test_no_choice_is_recorded_until_someone_makes_one(acme_contract, alice):
    file(acme_contract, alice)
    assert not NotificationPreference.objects.exists()
