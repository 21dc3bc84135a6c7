"""An organisation's people, run by its customer admins (and by managers in the admin): invitations
(signed, expiring, single use, emailed through the outbox), roles, deactivation, last logins; the
last admin stays; a member reads the list and changes nothing; another organisation's person is a 404."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail, signing
from django.test import Client
from django.urls import reverse
from knox.models import AuthToken

from contracts.models import Invitation
from contracts.people import PeopleError
from contracts.people.invitations import SALT, invitation_create
from contracts.people.members import member_set_active, member_set_role
from portal.models import AuditEntry, OutboxMessage, User

from .factories import PASSWORD, UserFactory
from .test_staff_access import change_url, form_data

pytestmark = pytest.mark.django_db

NBO = ZoneInfo("Africa/Nairobi")
NOW = datetime(2026, 11, 3, 10, 0, tzinfo=NBO)
GOOD = "kingfisher-lantern-42"


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def login(client, email, password=PASSWORD):
    return client.post("/accounts/login/", {"username": email, "password": password}, REMOTE_ADDR="198.51.100.7")


def invite(client, who, email="erin@acme.example", role="member"):
    client.force_login(who)
    return client.post("/people/invite/", {"email": email, "role": role})


# --- Inviting -------------------------------------------------------------------------------------
def test_alice_invites_erin_who_sets_a_password_and_is_signed_in(
    client, alice, bob, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = invite(client, alice)
    assert response.status_code == 302 and response["Location"] == "/people/"
    # The email went through the outbox, rendered and sent, with the link in it.
    [sent] = [m for m in mail.outbox if m.to == ["erin@acme.example"]]
    assert sent.subject == "Alice Achieng invites you to Acme Savings on the SLA Portal"
    row = OutboxMessage.objects.get(template="people_invitation")
    assert (row.to, row.key, sent.extra_headers["Message-ID"]) == (
        "erin@acme.example", f"invitation:{Invitation.objects.get().pk}:{Invitation.objects.get().nonce}", row.message_id)  # fmt: skip
    assert "(the link works once, until 2026-11-10 07:00 (UTC+00:00)):" in sent.body
    url = re.search(r"https?://\S+/invitation/(\S+)/", sent.body)[0]
    path = url.split("://", 1)[1].split("/", 1)[1]
    path = "/" + path
    entry = AuditEntry.objects.get(action="people.invited")
    assert entry.actor == alice and entry.after["email"] == "erin@acme.example" and entry.after["role"] == "member"

    client.logout()
    page = client.get(path)
    assert page.status_code == 200 and b"Join Acme Savings" in page.content and b"erin@acme.example" in page.content
    weak = client.post(path, {"name": "Erin Ekwueme", "password1": "password", "password2": "password"})
    assert weak.status_code == 400 and b"too common" in weak.content
    differ = client.post(path, {"name": "Erin Ekwueme", "password1": GOOD, "password2": GOOD + "x"})
    assert differ.status_code == 400 and b"The two passwords differ." in differ.content
    done = client.post(path, {"name": "Erin Ekwueme", "password1": GOOD, "password2": GOOD})
    assert done.status_code == 302 and done["Location"] == "/"
    erin = User.objects.get(email="erin@acme.example")
    assert (erin.name, erin.organisation_id, erin.customer_role, erin.is_active) == (
        "Erin Ekwueme", alice.organisation_id, "member", True)  # fmt: skip
    assert erin.check_password(GOOD)
    assert client.get("/").wsgi_request.user == erin  # signed in
    assert AuditEntry.objects.filter(action="people.invitation_accepted", target_id=str(erin.pk)).exists()

    # Single use: the link now says so.
    client.logout()
    again = client.get(path)
    assert again.status_code == 400 and b"already been used" in again.content
    again = client.post(path, {"name": "Mallory", "password1": GOOD, "password2": GOOD})
    assert again.status_code == 400 and User.objects.filter(email="erin@acme.example").count() == 1


def test_forged_altered_expired_replaced_and_withdrawn_links_are_refused_with_their_reason(client, alice, frozen):
    invitation, token = invitation_create(
        organisation=alice.organisation, email="erin@acme.example", role="member", actor=alice
    )
    forged = signing.dumps({"i": invitation.pk, "n": "0" * 32}, salt=SALT)
    for bad in [
        forged,
        token[:-2] + "xx",
        "x" * 43,
        signing.dumps({"i": invitation.pk, "n": invitation.nonce}, salt="other"),
    ]:
        response = client.get(f"/invitation/{bad}/")
        assert response.status_code == 400 and b"This invitation link is not valid" in response.content, bad
        assert (
            client.post(f"/invitation/{bad}/", {"name": "E", "password1": GOOD, "password2": GOOD}).status_code == 400
        )
    # A new invitation to the same address replaces the old link.
    _, newer = invitation_create(organisation=alice.organisation, email="erin@acme.example", role="admin", actor=alice)
    assert b"replaced by a newer one" in client.get(f"/invitation/{token}/").content
    assert client.get(f"/invitation/{newer}/").status_code == 200
    # Expired after 7 days.
    frozen.shift(timedelta(days=7, seconds=1))
    response = client.get(f"/invitation/{newer}/")
    assert response.status_code == 400 and b"This invitation expired on 2026-11-10 07:00" in response.content
    assert b"Ask Alice Achieng for a new one." in response.content
    # Withdrawn.
    _, third = invitation_create(organisation=alice.organisation, email="erin@acme.example", role="member", actor=alice)
    client.force_login(alice)
    pk = Invitation.objects.get(email="erin@acme.example", revoked_at=None, accepted_at=None).pk
    assert client.post(f"/people/invitations/{pk}/revoke/").status_code == 302
    client.logout()
    assert b"was withdrawn" in client.get(f"/invitation/{third}/").content
    assert not User.objects.filter(email="erin@acme.example").exists()


def test_an_address_of_another_organisation_cannot_be_invited_or_join(client, alice, charlie):
    response = invite(client, alice, email="Charlie@Globex.example")
    assert response.status_code == 400
    assert b"already has an account with another organisation" in response.content
    assert not Invitation.objects.exists()
    # An address that gets an account elsewhere after the invitation went out.
    _, token = invitation_create(organisation=alice.organisation, email="frank@example.org", role="member", actor=alice)
    UserFactory(email="frank@example.org", organisation=charlie.organisation)
    client.logout()
    response = client.post(f"/invitation/{token}/", {"name": "Frank", "password1": GOOD, "password2": GOOD})
    assert response.status_code == 400 and b"already has an account with another organisation" in response.content


def test_invite_form_errors_are_400_with_field_messages(client, alice, bob):
    response = invite(client, alice, email="not-an-address", role="owner")
    assert response.status_code == 400
    assert b'id="invite_email_error"' in response.content and b'id="invite_role_error"' in response.content
    response = invite(client, alice, email="bob@acme.example")
    assert response.status_code == 400 and b"already one of Acme Savings" in response.content
    form = {"email": "erin@acme.example", "role": "member", "support_contracts": ["9" * 25]}  # no database integer
    response = client.post("/people/invite/", form)
    assert response.status_code == 400 and b"Choose among your organisation" in response.content


def test_a_member_reads_the_list_and_changes_nothing(client, alice, bob):
    client.force_login(bob)
    page = client.get("/people/")
    assert page.status_code == 200
    assert b"Alice Achieng" in page.content and b"mailto:alice@acme.example" in page.content
    assert b"Deactivate" not in page.content and b"Last login" not in page.content and b"Invite" not in page.content
    assert invite(client, bob).status_code == 403
    for url in [f"/people/{alice.pk}/role/", f"/people/{alice.pk}/deactivate/", f"/people/{alice.pk}/reactivate/"]:
        assert client.post(url, {"role": "member"}).status_code == 403
    alice.refresh_from_db()
    assert (alice.customer_role, alice.is_active) == ("admin", True)
    assert not Invitation.objects.exists()


def test_an_acme_admin_touching_a_globex_user_gets_404(client, alice, charlie):
    client.force_login(alice)
    for url in [
        f"/people/{charlie.pk}/role/",
        f"/people/{charlie.pk}/deactivate/",
        f"/people/{charlie.pk}/reactivate/",
    ]:
        assert client.post(url, {"role": "member"}).status_code == 404
    other, _ = invitation_create(
        organisation=charlie.organisation, email="x@globex.example", role="member", actor=charlie
    )
    assert client.post(f"/people/invitations/{other.pk}/revoke/").status_code == 404
    assert Invitation.objects.get(pk=other.pk).revoked_at is None
    assert b"Charlie" not in client.get("/people/").content


# --- Roles and deactivation -------------------------------------------------------------------------
def test_alice_makes_bob_an_admin_and_back_audited(client, alice, bob):
    client.force_login(alice)
    assert client.post(f"/people/{bob.pk}/role/", {"role": "admin"}).status_code == 302
    bob.refresh_from_db()
    assert bob.customer_role == "admin"
    entry = AuditEntry.objects.get(action="people.role_changed")
    assert (entry.actor, entry.before, entry.after) == (alice, {"customer_role": "member"}, {"customer_role": "admin"})
    assert client.post(f"/people/{bob.pk}/role/", {"role": "owner"}).status_code == 400
    assert client.post(f"/people/{bob.pk}/role/", {"role": "member"}).status_code == 302
    assert User.objects.get(pk=bob.pk).customer_role == "member"


def test_the_last_admin_can_be_neither_demoted_nor_deactivated(client, alice, bob, ayo):
    with pytest.raises(PeopleError, match="only admin"):
        member_set_role(member=alice, role="member", actor=ayo)
    with pytest.raises(PeopleError, match="only admin"):
        member_set_active(member=alice, active=False, actor=ayo)
    client.force_login(alice)
    response = client.post(f"/people/{alice.pk}/deactivate/")
    assert response.status_code == 400 and b"You cannot deactivate yourself" in response.content
    response = client.post(f"/people/{alice.pk}/role/", {"role": "member"})
    assert response.status_code == 400 and b"You cannot demote yourself" in response.content
    # With a second admin, the first can go.
    member_set_role(member=bob, role="admin", actor=alice)
    member_set_active(member=alice, active=False, actor=ayo)
    assert not User.objects.get(pk=alice.pk).is_active
    with pytest.raises(PeopleError, match="Bob Barasa is the organisation's only admin"):
        member_set_role(member=User.objects.get(pk=bob.pk), role="member", actor=ayo)


def test_a_deactivated_person_cannot_log_in_loses_sessions_and_tokens_and_keeps_tickets(
    client, alice, bob, acme_contract
):
    from tickets.services import ticket_open

    ticket = ticket_open(user=bob, contract=acme_contract, service=acme_contract.services.get(), priority="P3",
                         subject="Restore fails", description="Since last night.")  # fmt: skip
    _, token = AuthToken.objects.create(user=bob)
    bobs = type(client)()
    bobs.force_login(bob)
    client.force_login(alice)
    assert client.post(f"/people/{bob.pk}/deactivate/").status_code == 302
    entry = AuditEntry.objects.get(action="people.deactivated")
    assert (entry.actor, entry.before, entry.after) == (alice, {"is_active": True}, {"is_active": False})
    assert bobs.get("/")["Location"].startswith("/accounts/login/")  # the session ends
    assert login(type(client)(), "bob@acme.example").status_code == 200  # the form again: refused
    api = type(client)(headers={"Authorization": f"Token {token}"})
    assert api.get("/api/v1/tickets/").status_code == 401
    ticket.refresh_from_db()
    assert ticket.created_by_id == bob.pk  # the ticket stays, his
    page = client.get("/people/")
    assert b"deactivated" in page.content and b"Reactivate" in page.content
    assert client.post(f"/people/{bob.pk}/reactivate/").status_code == 302
    assert login(type(client)(), "bob@acme.example").status_code == 302


def test_the_people_page_shows_each_last_login_to_admins(client, alice, bob):
    assert login(type(client)(), "bob@acme.example").status_code == 302
    client.force_login(alice)
    page = client.get("/people/").content.decode()
    row = page.split(f'id="person-{bob.pk}"')[1].split("</tr>")[0]
    assert "2026-11-03 07:00 (UTC+00:00)" in row
    # In the viewer's own timezone where she has one (a login belongs to no contract).
    User.objects.filter(pk=alice.pk).update(timezone="Africa/Nairobi")
    page = client.get("/people/").content.decode()
    assert "2026-11-03 10:00 (UTC+03:00)" in page.split(f'id="person-{bob.pk}"')[1].split("</tr>")[0]


# --- Staff in the admin -----------------------------------------------------------------------------
def test_a_manager_runs_a_customers_people_from_the_admin_and_an_agent_cannot(client, alice, bob, ayo, sam):
    url = reverse("admin:contracts_organisation_people", args=[alice.organisation_id])
    client.force_login(sam)
    assert client.get(url).status_code == 403
    assert client.post(url, {"op": "deactivate", "member": bob.pk}).status_code == 403
    client.force_login(ayo)
    page = client.get(url)
    assert page.status_code == 200 and b"Bob Barasa" in page.content
    assert client.post(url, {"op": "invite", "email": "erin@acme.example", "role": "member"}).status_code == 302
    assert Invitation.objects.get().invited_by == ayo
    done = client.post(url, {"op": "deactivate", "member": bob.pk}, follow=True)
    assert "Bob Barasa: deactivated." in done.content.decode()  # in words, not the operation's name
    assert AuditEntry.objects.get(action="people.deactivated").actor == ayo
    refused = client.post(url, {"op": "role", "member": bob.pk, "role": "bogus"})  # was a 500
    assert refused.status_code == 400 and User.objects.get(pk=bob.pk).customer_role == "member"
    response = client.post(url, {"op": "role", "member": alice.pk, "role": "member"})
    assert response.status_code == 400 and User.objects.get(pk=alice.pk).customer_role == "admin"
    # Another organisation's user through this organisation's page: not found.
    charlie = UserFactory(email="charlie@globex.example")
    assert client.post(url, {"op": "deactivate", "member": charlie.pk}).status_code == 404
    assert client.post(url, {"op": "invite", "email": "bad"}).status_code == 400


def test_the_user_admin_keeps_the_last_active_admin_too(rf, alice, bob, charlie, ayo):
    from django.contrib import admin

    model_admin = admin.site._registry[User]
    request = rf.post("/admin/")
    request.user = ayo
    Form = model_admin.get_form(request, alice, change=True)

    def data(**changes):
        initial = Form(instance=alice).initial
        fields = {k: v for k, v in initial.items() if k in Form.base_fields and v is not None}
        fields.update(changes)
        return {k: v for k, v in fields.items() if v is not False}

    refused = Form(data(is_active=False), instance=alice)
    assert not refused.is_valid() and "only active admin" in str(refused.non_field_errors())
    refused = Form(data(customer_role="member"), instance=alice)
    assert not refused.is_valid()
    refused = Form(data(organisation=charlie.organisation_id), instance=alice)  # Acme's admin moved to Globex
    assert not refused.is_valid() and "only active admin" in str(refused.non_field_errors())
    member_set_role(member=bob, role="admin", actor=alice)
    assert Form(data(customer_role="member"), instance=alice).is_valid()


def test_a_deactivated_person_gets_no_email_written_for_them_before(client, alice, bob, acme_contract, lena, settings,
                                                                     mailoutbox):  # fmt: skip
    """An email written for Bob and not sent yet (a retry waiting after the server refused it) is
    given up when he is deactivated, by an admin of his organisation or any other way."""
    from portal.core.delivery import outbox_send_due
    from portal.core.outbox import Email, outbox_enqueue

    for key, to in [(f"ticket:1:reply:1:user:{bob.pk}", bob.email), (f"ticket:1:reply:1:user:{alice.pk}", alice.email),
                    (f"ticket:1:reply:1:user:{bob.pk}1", "someone@acme.example")]:  # fmt: skip
        outbox_enqueue(email=Email(key=key, to=to, template="password_reset", context={"reset_url": "https://x/r"}))
    client.force_login(alice)
    assert client.post(f"/people/{bob.pk}/deactivate/").status_code == 302
    outbox_send_due()
    assert sorted(m.to[0] for m in mailoutbox) == [alice.email, "someone@acme.example"]
    row = OutboxMessage.objects.get(to=bob.email)
    assert (row.status, row.last_error) == ("failed", "Not sent: the recipient was deactivated.")

    # Deactivated any other way (the admin, a shell): the same.
    charlie = UserFactory(email="carol@acme.example", organisation=acme_contract.organisation)
    outbox_enqueue(email=Email(key=f"x:user:{charlie.pk}", to=charlie.email, template="password_reset",
                               context={"reset_url": "https://x/r"}))  # fmt: skip
    charlie.is_active = False
    charlie.save()
    assert OutboxMessage.objects.get(to=charlie.email).status == "failed"


def carol_invites(acme, role="admin"):
    carol = UserFactory(email="carol@acme.example", name="Carol Chege", organisation=acme, customer_role="admin")
    _, token = invitation_create(organisation=acme, email="carol.private@example.org", role=role, actor=carol)
    return User.objects.get(pk=carol.pk), token


def accept(client, token):
    return client.post(f"/invitation/{token}/", {"name": "C", "password1": GOOD, "password2": GOOD})


@pytest.mark.parametrize("change", ["deactivated", "demoted", "moved"])
def test_an_admin_who_leaves_is_demoted_or_moved_takes_back_their_open_invitations(
    client, alice, acme, globex, ada, change
):
    carol, token = carol_invites(acme)
    _, alices = invitation_create(organisation=acme, email="dan@acme.example", role="member", actor=alice)
    if change == "deactivated":
        member_set_active(member=carol, active=False, actor=alice)
    elif change == "demoted":
        member_set_role(member=carol, role="member", actor=alice)
    else:  # staff move her to Globex in the admin
        staff = Client()
        staff.force_login(ada)
        data = {**form_data(staff, carol), "organisation": globex.pk}
        assert staff.post(change_url(carol), data).status_code == 302
    invitation = Invitation.objects.get(email="carol.private@example.org")
    assert invitation.revoked_at == NOW
    [entry] = AuditEntry.objects.filter(action="people.invitation_revoked")
    assert entry.target_id == str(invitation.pk) and entry.before == {
        "email": "carol.private@example.org",
        "role": "admin",
    }
    assert entry.after["reason"] == "carol@acme.example may no longer invite to Acme Savings"
    assert b"was withdrawn" in client.get(f"/invitation/{token}/").content
    assert accept(client, token).status_code == 400
    assert not User.objects.filter(email="carol.private@example.org").exists()
    assert client.get(f"/invitation/{alices}/").status_code == 200  # another admin's stands


def test_an_invitation_whose_sender_may_no_longer_invite_is_refused_when_used(client, acme):
    carol, token = carol_invites(acme)
    User.objects.filter(pk=carol.pk).update(customer_role="member")  # a path that withdrew nothing
    response = client.get(f"/invitation/{token}/")
    assert response.status_code == 400
    assert b"Carol Chege no longer looks after Acme Savings&#x27;s people" in response.content
    assert accept(client, token).status_code == 400
    assert not User.objects.filter(email="carol.private@example.org").exists()


def test_staff_invitations_stand_while_the_staff_member_manages_people(client, acme, ayo):
    _, token = invitation_create(organisation=acme, email="erin@acme.example", role="member", actor=ayo)
    assert client.get(f"/invitation/{token}/").status_code == 200
    User.objects.filter(pk=ayo.pk).update(is_active=False)
    assert client.get(f"/invitation/{token}/").status_code == 400
