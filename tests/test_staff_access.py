"""Who manages access, and the audit of every change of it (portal.core.staff_access, portal.admin):
the role groups after migrate, staff_role following the group, the User admin (superusers manage
staff, roles and permissions, managers keep customer users only, nobody changes their own access),
each change audited with before and after (the password as a fact), the demo's roles, and the
vulnerability reports' emails in the outbox."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, Permission
from django.core import mail
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.urls import reverse

from portal.core.roles import ROLE_PERMISSIONS, StaffRole, role_group_name, sees_security
from portal.core.staff_access import role_groups_sync
from portal.models import AuditEntry, OutboxMessage, User
from tickets.security import security_report_submit

from .factories import StaffFactory

pytestmark = pytest.mark.django_db


def change_url(user):
    return reverse("admin:portal_user_change", args=[user.pk])


def form_data(client, user) -> dict:
    """What the browser would post back: the change form's fields as they are."""
    form = client.get(change_url(user)).context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if value is None or name == "password":
            continue
        if isinstance(value, list | tuple | set) or hasattr(value, "all"):
            data[name] = [getattr(v, "pk", v) for v in (value.all() if hasattr(value, "all") else value)]
        elif isinstance(value, bool):
            if value:
                data[name] = "on"
        else:
            data[name] = getattr(value, "pk", value)
    return data


def entries(action="user.access_changed"):
    return list(AuditEntry.objects.filter(action=action).order_by("id"))


# --- The groups --------------------------------------------------------------------------------------
def test_after_migrate_each_role_is_a_group_with_exactly_its_permissions():
    for role, labels in ROLE_PERMISSIONS.items():
        group = Group.objects.get(name=role_group_name(role))
        held = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
        assert held == set(labels), role
    assert not AuditEntry.objects.exists()  # creating them is no change of anyone's access


def test_sync_staff_roles_puts_a_legacy_role_in_its_group_and_is_idempotent(capsys):
    legacy = User.objects.create(email="old@vendor.example", is_staff=True, staff_role=StaffRole.SUPPORT_LEAD)
    call_command("sync_staff_roles")
    assert "old@vendor.example: added to the group Support lead" in capsys.readouterr().out
    assert list(legacy.groups.values_list("name", flat=True)) == ["Support lead"]
    assert legacy.has_perm("tickets.exclude_ticket")
    (entry,) = entries()
    assert (entry.before, entry.after, entry.actor) == ({"groups": []}, {"groups": ["Support lead"]}, None)
    call_command("sync_staff_roles")
    assert "Staff roles in step." in capsys.readouterr().out


def test_the_role_groups_are_read_only_in_the_admin(client, ada):
    client.force_login(ada)
    group = Group.objects.get(name="Support agent")
    page = client.get(reverse("admin:auth_group_change", args=[group.pk])).content.decode()
    assert 'name="permissions"' not in page and 'name="name"' not in page
    assert client.get(reverse("admin:auth_group_delete", args=[group.pk])).status_code == 403


# --- The User admin: superusers manage staff and roles ----------------------------------------------
def test_a_superuser_gives_a_role_by_its_group_and_staff_role_follows_in_one_audit_entry(client, ada, sam):
    client.force_login(ada)
    data = form_data(client, sam)
    data["groups"] = [Group.objects.get(name="Support lead").pk]
    response = client.post(change_url(sam), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    sam.refresh_from_db()
    assert sam.staff_role == StaffRole.SUPPORT_LEAD and sam.has_perm("tickets.change_priority")
    (entry,) = entries()
    assert entry.actor == ada and entry.target_id == str(sam.pk)
    assert entry.before == {"staff_role": "support_agent", "groups": ["Support agent"]}
    assert entry.after == {"staff_role": "support_lead", "groups": ["Support lead"]}


def test_moving_a_person_to_another_organisation_is_audited(client, ada, bob, charlie):
    # Bob would read Globex's tickets from then on: as much a change of access as a role.
    client.force_login(ada)
    data = {**form_data(client, bob), "organisation": charlie.organisation_id}
    response = client.post(change_url(bob), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    (entry,) = entries()
    assert entry.actor == ada and entry.target_id == str(bob.pk)
    assert (entry.before, entry.after) == (
        {"organisation_id": bob.organisation_id},
        {"organisation_id": charlie.organisation_id},
    )


def test_a_customers_email_changed_by_staff_is_audited(client, ayo, alice):
    # The address a password reset goes to: changing it is a way into the account.
    client.force_login(ayo)  # an account manager: customers' accounts
    data = {**form_data(client, alice), "email": "alice.achieng@acme.example"}
    response = client.post(change_url(alice), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    (entry,) = entries()
    assert entry.actor == ayo and (entry.before, entry.after) == (
        {"email": "alice@acme.example"}, {"email": "alice.achieng@acme.example"}
    )  # fmt: skip


def test_a_persons_timezone_is_offered_as_one_types_and_a_city_alone_is_refused_with_its_zone(client, ada, sam):
    client.force_login(ada)
    page = client.get(change_url(sam)).content.decode()
    assert 'list="id_timezone_zones"' in page and '<option value="Africa/Nairobi">' in page
    data = {**form_data(client, sam), "timezone": "Nairobi"}
    response = client.post(change_url(sam), data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["timezone"] == [
        "“Nairobi” is not a known IANA timezone (did you mean Africa/Nairobi?)."
    ]
    assert client.post(change_url(sam), {**data, "timezone": "Africa/Nairobi"}).status_code == 302


def test_a_staff_member_has_one_role_and_only_staff_have_one(client, ada, sam, alice):
    client.force_login(ada)
    data = form_data(client, sam)
    data["groups"] = [Group.objects.get(name="Support lead").pk, Group.objects.get(name="Security").pk]
    response = client.post(change_url(sam), data)
    assert response.status_code == 200 and "A staff member has one role" in response.content.decode()
    data = form_data(client, alice)
    data["groups"] = [Group.objects.get(name="Support agent").pk]
    response = client.post(change_url(alice), data)
    assert response.status_code == 200 and "only staff have one" in response.content.decode()
    assert not entries() and not alice.groups.exists()


def test_taking_the_role_group_away_takes_the_role(client, ada, sam):
    client.force_login(ada)
    data = form_data(client, sam)
    data["groups"] = []
    client.post(change_url(sam), data)
    sam.refresh_from_db()
    assert sam.staff_role == "" and not sam.get_all_permissions()


def test_nobody_changes_their_own_access_a_superuser_neither(client, ada):
    client.force_login(ada)
    page = client.get(change_url(ada)).content.decode()
    for field in ("is_superuser", "is_staff", "groups", "user_permissions", "is_active"):
        assert f'name="{field}"' not in page, field
    data = form_data(client, ada)
    data.update(is_superuser="", groups=[Group.objects.get(name="Security").pk])
    client.post(change_url(ada), data)
    ada.refresh_from_db()
    assert ada.is_superuser and not ada.groups.exists()
    assert client.get(reverse("admin:portal_user_delete", args=[ada.pk])).status_code == 403


def test_a_manager_keeps_customer_users_only_and_never_their_access(client, ayo, alice, bob, sam):
    # Acme keeps an active admin when Alice is deactivated (the last one cannot be: test_people).
    type(bob).objects.filter(pk=bob.pk).update(customer_role="admin")
    client.force_login(ayo)
    page = client.get(change_url(alice)).content.decode()
    assert 'name="_save"' in page
    for field in ("is_superuser", "is_staff", "groups", "user_permissions"):
        assert f'name="{field}"' not in page, field
    data = form_data(client, alice)
    data.update(name="Alice A.", is_staff="on", is_superuser="on", groups=[Group.objects.get(name="Security").pk])
    data.pop("is_active")  # deactivated
    assert client.post(change_url(alice), data).status_code == 302
    alice.refresh_from_db()
    assert alice.name == "Alice A." and not alice.is_active
    assert not (alice.is_staff or alice.is_superuser or alice.groups.exists())
    (entry,) = entries()
    assert (entry.actor, entry.before, entry.after) == (ayo, {"is_active": True}, {"is_active": False})
    # A staff member's page is for reading; setting anyone's password is a superuser's.
    assert 'name="_save"' not in client.get(change_url(sam)).content.decode()
    assert client.post(change_url(sam), form_data(client, sam)).status_code == 403
    assert client.get(reverse("admin:auth_user_password_change", args=[alice.pk])).status_code == 403
    assert client.get(reverse("admin:portal_user_add")).status_code == 403


# --- Every change of access is audited, whatever its path ---------------------------------------------
def test_a_password_set_in_the_admin_is_audited_as_a_fact(client, ada, alice):
    old_hash = alice.password
    client.force_login(ada)
    url = reverse("admin:auth_user_password_change", args=[alice.pk])
    response = client.post(url, {"password1": "a-new-long-passphrase", "password2": "a-new-long-passphrase"})
    assert response.status_code == 302
    (entry,) = entries()
    assert (entry.actor, entry.before, entry.after) == (ada, {"password": "set"}, {"password": "changed"})
    alice.refresh_from_db()
    assert old_hash not in str(entry.before) and alice.password not in str(entry.after)


def test_a_customer_changing_their_own_password_is_audited_with_them_as_actor(client, alice):
    from .factories import PASSWORD

    client.force_login(alice)
    response = client.post(
        "/accounts/password_change/",
        {
            "old_password": PASSWORD,
            "new_password1": "another-long-passphrase",
            "new_password2": "another-long-passphrase",
        },
    )
    assert response.status_code == 302
    (entry,) = entries()
    assert (entry.actor, entry.target_id, entry.after) == (alice, str(alice.pk), {"password": "changed"})


def test_a_hash_upgraded_at_sign_in_and_a_login_are_no_change(client, settings, alice):
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher", "django.contrib.auth.hashers.MD5PasswordHasher",
    ]  # fmt: skip
    User.objects.filter(pk=alice.pk).update(password=make_password("an-old-passphrase", hasher="md5"))
    response = client.post("/accounts/login/", {"username": "alice@acme.example", "password": "an-old-passphrase"})
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.password.startswith("pbkdf2_")  # upgraded, saved
    assert not entries()


def test_flags_groups_and_permissions_changed_in_code_are_audited(ada, alice, sam):
    sam.is_superuser = True
    sam.save()
    sam.user_permissions.add(Permission.objects.get(codename="view_auditentry"))
    Group.objects.get(name="Security").user_set.add(sam)  # from the group's side
    alice.set_unusable_password()
    alice.save()
    changes = [(e.target_id, e.before, e.after) for e in entries()]
    assert changes == [
        (str(sam.pk), {"is_superuser": False}, {"is_superuser": True}),
        (str(sam.pk), {"user_permissions": []}, {"user_permissions": ["portal.view_auditentry"]}),
        (str(sam.pk), {"groups": ["Support agent"]}, {"groups": ["Security", "Support agent"]}),
        (str(alice.pk), {"password": "set"}, {"password": "unusable"}),
    ]


def test_a_groups_permissions_changing_is_audited(ada):
    group = Group.objects.create(name="Auditors")
    group.permissions.add(Permission.objects.get(codename="view_auditentry"))
    (entry,) = entries("group.permissions_changed")
    assert (entry.target_repr, entry.before, entry.after) == (
        "Auditors",
        {"permissions": []},
        {"permissions": ["portal.view_auditentry"]},
    )
    lead = Group.objects.get(name="Support lead")
    lead.permissions.add(Permission.objects.get(codename="view_auditentry"))  # a role group by hand ...
    assert role_groups_sync() == ["reset the permissions of Support lead"]  # ... put back, audited
    assert [e.before for e in entries("group.permissions_changed")][-1] == {"permissions": ["portal.view_auditentry"]}


def test_a_user_deleted_in_the_admin_is_audited(client, ada, bob):
    client.force_login(ada)
    client.post(reverse("admin:portal_user_delete", args=[bob.pk]), {"post": "yes"})
    (entry,) = entries("user.deleted")
    assert entry.before["is_active"] is True and entry.before["password"] == "set" and entry.after == {}


# --- Vulnerability reports: the security role, never superuser status alone -------------------------
def test_superuser_status_alone_does_not_show_vulnerability_reports_or_their_emails(client, ada, sam, sol):
    report = security_report_submit(email="finder@example.org", name="Finder", summary="XSS", details="In search.")
    assert not sees_security(ada) and sees_security(sol) and not sees_security(sam)
    emails = OutboxMessage.objects.filter(template__startswith="security_report")
    assert emails.exists()
    outbox = reverse("admin:portal_outboxmessage_changelist")
    for user, shown in ((sam, False), (ada, False), (sol, True)):
        client.force_login(user)
        listed = {m.pk for m in client.get(outbox).context["cl"].result_list}
        assert ({m.pk for m in emails} <= listed) == shown, user
        assert (client.get(reverse("admin:tickets_ticket_change", args=[report.pk])).status_code == 200) == shown
    Group.objects.get(name="Security").user_set.add(ada)
    ada = User.objects.get(pk=ada.pk)
    assert sees_security(ada)


# --- The demo -----------------------------------------------------------------------------------------
def test_the_demo_staff_have_their_roles_and_only_the_admin_is_a_superuser():
    from portal.site.demo import seed_demo

    User.objects.create(email="sam@vendor.example", is_staff=True, is_superuser=True, staff_role="support_agent")
    seed_demo()  # an older demo database: its staff were all superusers
    staff = {u.email: u for u in User.objects.filter(is_staff=True)}
    assert {e for e, u in staff.items() if u.is_superuser} == {"admin@vendor.example"}
    roles = {e: (u.staff_role, [g.name for g in u.groups.all()]) for e, u in staff.items()}
    assert roles == {
        "sam@vendor.example": ("support_agent", ["Support agent"]),
        "lena@vendor.example": ("support_lead", ["Support lead"]),
        "ayo@vendor.example": ("account_manager", ["Account manager"]),
        "cleo@vendor.example": ("cloud_solutions_manager", ["Cloud solutions manager"]),
        "sec@vendor.example": ("security", ["Security"]),
        "admin@vendor.example": ("", []),
    }
    demoted = entries()[0]
    assert demoted.before["is_superuser"] is True and demoted.after["is_superuser"] is False
    count = AuditEntry.objects.count()
    seed_demo()
    assert AuditEntry.objects.count() == count  # idempotent


def test_a_factory_staff_member_is_in_their_roles_group():
    lead = StaffFactory(email="lead@vendor.example", staff_role=StaffRole.SUPPORT_LEAD)
    assert [g.name for g in lead.groups.all()] == ["Support lead"] and not lead.is_superuser


def test_deleting_a_group_or_a_second_factor_device_is_audited(client, ada, sam):
    from portal.core.staff_otp import device_from_command

    night = Group.objects.create(name="Night shift")
    night.permissions.set(Permission.objects.filter(codename="view_outboxmessage"))
    sam.groups.add(night)
    client.force_login(ada)
    response = client.post(reverse("admin:auth_group_delete", args=[night.pk]), {"post": "yes"})
    assert response.status_code == 302 and not Group.objects.filter(name="Night shift").exists()
    (entry,) = entries("group.deleted")
    assert entry.actor == ada and entry.before == {
        "name": "Night shift", "members": [sam.email], "permissions": ["portal.view_outboxmessage"],
    }  # fmt: skip
    device, _ = device_from_command(user=sam)
    response = client.post(reverse("admin:otp_totp_totpdevice_delete", args=[device.pk]), {"post": "yes"})
    assert response.status_code == 302
    (entry,) = entries("staff_otp.device.deleted")
    assert entry.actor == ada and entry.before == {"user": sam.email, "name": device.name, "confirmed": True}


def test_staff_belong_to_no_organisation(client, ada, sam, alice, acme):
    """One of an organisation's would see its tickets as a customer and be its admins' to deactivate."""
    client.force_login(ada)
    data = form_data(client, alice)
    data["is_staff"] = "on"
    response = client.post(change_url(alice), data)
    assert response.status_code == 200 and "Staff belong to no organisation" in response.content.decode()
    data = {**form_data(client, sam), "organisation": acme.pk}
    response = client.post(change_url(sam), data)
    assert response.status_code == 200 and "Staff belong to no organisation" in response.content.decode()
    assert not User.objects.get(pk=alice.pk).is_staff and User.objects.get(pk=sam.pk).organisation is None


def test_the_old_address_is_told_when_staff_change_a_persons_email(
    client, ayo, alice, django_capture_on_commit_callbacks
):
    mail.outbox.clear()
    client.force_login(ayo)
    data = {**form_data(client, alice), "email": "alice@acme.exmaple"}  # a typo, or a takeover
    with (
        time_machine.travel(datetime(2026, 11, 3, 9, 30, tzinfo=UTC), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert client.post(change_url(alice), data).status_code == 302
    [row] = OutboxMessage.objects.filter(template="account_email_changed")
    assert row.to == "alice@acme.example" and row.key.startswith(f"email-changed:{alice.pk}:")
    [sent] = [m for m in mail.outbox if m.to == ["alice@acme.example"]]
    assert sent.subject == "Your SLA Portal sign-in address was changed"
    assert sent.extra_headers["From"] == settings.DEFAULT_FROM_EMAIL
    assert (
        "changed from alice@acme.example to alice@acme.exmaple by Ayo AM (our staff) on 2026-11-03 09:30 (UTC+00:00)"
        in sent.body
    )
    assert "contact us at once at security@vendor.example" in sent.body
    assert "alice@acme.exmaple" in sent.alternatives[0][0]
    assert "List-Unsubscribe" not in sent.extra_headers  # about the account: nobody turns it off


def test_no_notice_when_the_email_stays(client, ayo, alice):
    client.force_login(ayo)
    assert client.post(change_url(alice), {**form_data(client, alice), "name": "Alice A."}).status_code == 302
    assert not OutboxMessage.objects.filter(template="account_email_changed").exists()


def test_an_email_changed_outside_the_admin_is_told_too(alice):
    alice.email = "alice@elsewhere.example"
    alice.save()
    assert OutboxMessage.objects.get(template="account_email_changed").to == "alice@acme.example"


def test_an_address_is_one_account_whatever_its_case(client, ada, ayo, alice, bob):
    client.force_login(ayo)
    response = client.post(change_url(bob), {**form_data(client, bob), "email": "Alice@Acme.example"})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["email"] == [
        "alice@acme.example is already the address of another account."
    ]
    assert User.objects.get(pk=bob.pk).email == "bob@acme.example"
    assert client.post(change_url(bob), {**form_data(client, bob), "email": " Bob.B@ACME.Example"}).status_code == 302
    assert User.objects.get(pk=bob.pk).email == "bob.b@acme.example"  # stored as the login matches it
    client.force_login(ada)
    add = reverse("admin:portal_user_add")
    new = {"email": "ALICE@acme.example", "name": "Twin", "usable_password": "false"}
    response = client.post(add, new)
    assert response.status_code == 200 and "already the address of another account" in str(
        response.context["adminform"].form.errors["email"]
    )
    assert client.post(add, {**new, "email": "Erin@Acme.example"}).status_code == 302
    assert User.objects.filter(email="erin@acme.example").exists()


def test_the_database_refuses_two_accounts_that_differ_only_in_case(alice):
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(email="Alice@Acme.EXAMPLE", name="Twin")
