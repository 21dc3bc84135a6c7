"""Staff roles as groups, and the audit of everyone's access.

- role_groups_sync: one Group per staff role holding exactly the permissions of the matrix
  (portal.core.roles.ROLE_PERMISSIONS), created or put back after every migration (a post_migrate
  receiver: on a fresh database a data migration would find no permissions yet) and by
  `manage.py sync_staff_roles`. A role group changed by hand is put back, audited.
- staff_role_follow: a staff member's role group is the truth; `User.staff_role` (which routes
  escalation emails) follows it. A staff member with a role but no role group (from before roles
  were groups) is put in the group of their role.
- Every change of a user's active, staff or superuser flag, role, groups, own permissions or
  password (the fact, never the hash) is audited with before and after, whoever makes it: the
  signals below catch each save and each change of the memberships, with the signed-in user of
  the request as the actor. A change made through AccessChange (the User admin's save) is one
  entry for the whole save. A group's permissions changing is audited too. A password given at
  creation to an account that had none, and a hash upgraded at login, are no change.
"""

from __future__ import annotations

import contextvars

from django.apps import apps as global_apps
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import is_password_usable
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models.signals import m2m_changed, post_save, pre_save
from django.dispatch import Signal

from .account_notices import email_changed_notice
from .api_tokens import token_revoke, tokens_of
from .audit import audit, current_actor
from .migrate_hooks import models_migrated
from .outbox import outbox_withdraw_for_user
from .roles import ROLE_PERMISSIONS, StaffRole, role_group_name, role_of_group

FIELDS = ("is_active", "is_staff", "is_superuser", "staff_role", "customer_role", "organisation_id", "email")

# What is being audited as one entry by an AccessChange or written by role_groups_sync: user and
# group instances, and ("user", pk) for a user's row; the signals leave them alone.
_muted: contextvars.ContextVar[tuple] = contextvars.ContextVar("staff_access_muted", default=())


def _mute(*items):
    return _muted.set((*_muted.get(), *items))


def _is_muted(obj) -> bool:
    muted = _muted.get()
    return any(m is obj for m in muted) or (isinstance(obj, get_user_model()) and ("user", obj.pk) in muted)


def _is_muted_user(pk) -> bool:
    return ("user", pk) in _muted.get()


# --- Role groups ---------------------------------------------------------------------------------
def _permissions(labels, using) -> list[Permission]:
    wanted = {tuple(label.split(".")) for label in labels}
    found = Permission.objects.using(using).filter(
        content_type__app_label__in={a for a, _ in wanted}, codename__in={c for _, c in wanted}
    )
    perms = [p for p in found.select_related("content_type") if (p.content_type.app_label, p.codename) in wanted]
    missing = wanted - {(p.content_type.app_label, p.codename) for p in perms}
    if missing:
        raise LookupError(f"Permissions in the role matrix that no model declares: {sorted(missing)}")
    return perms


def _label(p: Permission) -> str:
    return f"{p.content_type.app_label}.{p.codename}"


def role_groups_sync(*, using: str = DEFAULT_DB_ALIAS, actor=None) -> list[str]:
    """Create each role's group and give it exactly the matrix's permissions; then bring every
    staff member's role in step with their group. Idempotent. Returns what changed, in words."""
    with transaction.atomic(using=using):
        return _role_groups_sync(using, actor)


def _role_groups_sync(using, actor) -> list[str]:
    labels = {label for perms in ROLE_PERMISSIONS.values() for label in perms}
    for app_label in sorted({label.split(".")[0] for label in labels}):
        # The permissions of every model (custom ones included), whatever order post_migrate runs in.
        create_permissions(global_apps.get_app_config(app_label), verbosity=0, using=using, apps=global_apps)
    changes = []
    for role, wanted_labels in ROLE_PERMISSIONS.items():
        group, created = Group.objects.using(using).get_or_create(name=role_group_name(role))
        wanted = _permissions(wanted_labels, using)
        before = sorted(_label(p) for p in group.permissions.select_related("content_type"))
        after = sorted({_label(p) for p in wanted})
        if before == after:
            continue
        token = _mute(group)
        try:
            group.permissions.set(wanted)
        finally:
            _muted.reset(token)
        if created:
            changes.append(f"created the group {group.name}")
        else:  # a role group changed by hand (or a new matrix): put back, audited
            changes.append(f"reset the permissions of {group.name}")
            audit(
                actor=actor, action="group.permissions_changed", target=group,
                before={"permissions": sorted(set(before) - set(after))}, after={"permissions": sorted(set(after) - set(before))},
            )  # fmt: skip
    for user in get_user_model().objects.using(using).filter(is_staff=True).prefetch_related("groups"):
        change = staff_role_follow(user, actor=actor, adopt=True)
        if change:
            changes.append(f"{user.email}: {change}")
    return changes


def on_post_migrate(sender, using=DEFAULT_DB_ALIAS, plan=None, **kwargs):
    """Not after a migration that unapplied some, nor before the tables have the models' columns
    (portal.core.migrate_hooks): the sync reads users with the code's model."""
    if models_migrated(plan, [Group, Permission, get_user_model()], using):
        role_groups_sync(using=using)


def role_groups(user) -> list[Group]:
    return [g for g in user.groups.all() if role_of_group(g.name) is not None]


def staff_role_follow(user, *, actor=None, adopt: bool = False) -> str:
    """Set `user.staff_role` from their role group (none: no role), audited like every change of
    access. With `adopt`, a staff member with a role and no role group is put in their role's group
    instead (their role from before roles were groups). Returns what changed, in words."""
    change = AccessChange(user, actor=actor)
    try:
        said = _follow(user, adopt=adopt)
    except BaseException:
        change.abandon()
        raise
    change.done()
    return said


def staff_role_assign(*, user, role: str, actor=None, superuser: bool | None = None):
    """Give a staff member exactly one role: its group in place of any other role group, the role
    following it (and, when `superuser` is given, that superuser flag). One audit entry, if
    anything changed."""
    group = Group.objects.using(user._state.db).get(name=role_group_name(role))
    with AccessChange(user, actor=actor) as change:
        if superuser is not None and user.is_superuser != superuser:
            user.is_superuser = superuser
            user.save(update_fields=["is_superuser"])
        user.groups.remove(*[g for g in role_groups(user) if g.pk != group.pk])
        user.groups.add(group)
        _follow(user)
    return change


def _follow(user, *, adopt: bool = False) -> str:
    groups = role_groups(user)
    if adopt and not groups and user.staff_role in StaffRole.values:
        group = Group.objects.using(user._state.db).get(name=role_group_name(user.staff_role))
        user.groups.add(group)
        return f"added to the group {group.name}"
    roles = [role_of_group(g.name) for g in groups]
    # One role group is the role; more than one (the User admin refuses it) keeps a role among them.
    role = roles[0] if len(roles) == 1 else (user.staff_role if user.staff_role in roles else "")
    if role == user.staff_role:
        return ""
    old, user.staff_role = user.staff_role, role
    user.save(update_fields=["staff_role"])
    return f"role {old or '-'} → {role or '-'}"


# --- The audit of access ------------------------------------------------------------------------
def _password_fact(hashed: str) -> str:
    if not hashed:
        return "none"
    return "set" if is_password_usable(hashed) else "unusable"


def access_state(pk, using=DEFAULT_DB_ALIAS) -> dict:
    """A user's access as stored: the flags and role, groups, own permissions, password hash."""
    User = get_user_model()
    row = User.objects.using(using).filter(pk=pk).values(*FIELDS, "password").first()
    if row is None:
        return {}
    return {
        **row,
        "groups": sorted(Group.objects.using(using).filter(user=pk).values_list("name", flat=True)),
        "user_permissions": sorted(
            f"{a}.{c}"
            for a, c in Permission.objects.using(using)
            .filter(user=pk)
            .values_list("content_type__app_label", "codename")
        ),
    }


def access_diff(before: dict, after: dict, *, password_set: bool = True) -> tuple[dict, dict]:
    """What changed, as the audit entry's before and after; the password as a fact. A hash that
    changed only because the hasher upgraded it (`password_set` False) is no change."""
    old, new = {}, {}
    for key in (*FIELDS, "groups", "user_permissions"):
        if key in after and before.get(key) != after[key]:
            old[key], new[key] = before.get(key), after[key]
    was, now = before.get("password"), after.get("password")
    if was is not None and now is not None and was != now and was != "":
        usability_changed = is_password_usable(was) != is_password_usable(now)
        if password_set or usability_changed:
            old["password"] = _password_fact(was)
            new["password"] = (
                "changed" if _password_fact(now) == "set" and old["password"] == "set" else _password_fact(now)
            )
    return old, new


class AccessChange:
    """Audit a change of one user's access made in several steps (fields, then memberships) as one
    entry: the state before is read at the start, the signals stay quiet for this user until
    done(), which makes their role follow their groups and writes the entry (action user.created
    for a user who had no row yet). Used as a context manager or in two steps (the admin's save)."""

    def __init__(self, user, *, actor=None, action: str = "user.access_changed"):
        self.user, self.actor, self.action = user, actor, action
        self.using = user._state.db or DEFAULT_DB_ALIAS
        self.before = access_state(user.pk, self.using) if user.pk is not None else {}
        self._token = _mute(user, *([("user", user.pk)] if user.pk is not None else []))

    def abandon(self) -> None:
        _muted.reset(self._token)

    def done(self, *, follow_role: bool = False):
        try:
            if follow_role:
                _follow(self.user)
        finally:
            self.abandon()
        after = access_state(self.user.pk, self.using)
        if not self.before:
            action, old, new = "user.created", {}, {k: v for k, v in after.items() if k != "password"}
            new["password"] = _password_fact(after.get("password", ""))
        else:
            action, (old, new) = self.action, access_diff(self.before, after)
        _deactivated(self.user.pk, old, new)
        if old or new:
            entry = audit(actor=self.actor, action=action, target=self.user, before=old, after=new)
            if action != "user.created":
                _changed(self.user, self.actor, old, new, entry)
            return entry
        return None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.abandon()
        else:
            self.done()
        return False


def _deactivated(user_id, old: dict, new: dict) -> None:
    if old.get("is_active") is True and new.get("is_active") is False:
        outbox_withdraw_for_user(user_id=user_id)


# Sent once a change of a user's access is audited (whatever path it took), with the entry's before
# and after: the apps above take back what the person may no longer give (contracts: the open
# invitations of someone who is no longer an active admin of their organisation).
access_changed = Signal()  # sender=User; user, actor, before, after


def _changed(user, actor, old: dict, new: dict, entry) -> None:
    """What follows a change, in its transaction: a person moved to another organisation keeps no
    API token (one handed to the old organisation's integration would read the new one's data); the
    old address of a changed email is told (an address changed by someone else is how an account
    is taken over)."""
    if "organisation_id" in new:
        token_revoke(actor=actor, tokens=tokens_of(user), reason="moved to another organisation")
    if "email" in new and old.get("email"):
        email_changed_notice(user=user, old=old["email"], new=new["email"], actor=actor, entry=entry)
    access_changed.send(sender=type(user), user=user, actor=actor, before=old, after=new)


def audit_user_deleted(*, actor, user) -> None:
    state = access_state(user.pk, user._state.db or DEFAULT_DB_ALIAS)
    state["password"] = _password_fact(state.get("password", ""))
    audit(actor=actor, action="user.deleted", target=user, before=state, after={})


# --- Signals: whatever path a change takes ------------------------------------------------------
WATCHED = {*FIELDS, "password"}


def _before_save(sender, instance, raw=False, update_fields=None, **kwargs):
    if raw or instance.pk is None or instance._state.adding or _is_muted(instance):
        return
    if update_fields is not None and not (set(update_fields) & WATCHED):
        return  # e.g. last_login at each sign-in: nothing to compare
    row = sender.objects.using(instance._state.db).filter(pk=instance.pk).values(*WATCHED).first()
    if row is not None:
        instance._access_before = row


def _after_save(sender, instance, created=False, raw=False, **kwargs):
    before = instance.__dict__.pop("_access_before", None)
    if before is None or created or raw:
        return
    after = {f: getattr(instance, f) for f in WATCHED}
    # set_password() keeps the raw password until save() ends; an upgraded hash has none.
    old, new = access_diff(before, after, password_set=getattr(instance, "_password", None) is not None)
    _deactivated(instance.pk, old, new)
    if old or new:
        actor = current_actor()
        entry = audit(actor=actor, action="user.access_changed", target=instance, before=old, after=new)
        _changed(instance, actor, old, new, entry)


def _member_ids(instance, reverse: bool, pk_set) -> list:
    if not reverse:
        return [] if _is_muted(instance) else [instance.pk]
    if pk_set is None:  # clear() from the group's (or permission's) side
        pk_set = instance.user_set.values_list("pk", flat=True)
    return [pk for pk in pk_set if not _is_muted_user(pk)]


def _memberships(kind: str, pk, using) -> list[str]:
    if kind == "groups":
        return sorted(Group.objects.using(using).filter(user=pk).values_list("name", flat=True))
    rows = Permission.objects.using(using).filter(user=pk).values_list("content_type__app_label", "codename")
    return sorted(f"{a}.{c}" for a, c in rows)


def _user_memberships_changed(kind: str):
    def receiver(sender, instance, action, reverse, pk_set, using, **kwargs):
        if action.startswith("pre_"):
            ids = _member_ids(instance, reverse, pk_set)
            instance.__dict__[f"_access_{kind}"] = {pk: _memberships(kind, pk, using) for pk in ids}
        elif action.startswith("post_"):
            User = get_user_model()
            for pk, old in instance.__dict__.pop(f"_access_{kind}", {}).items():
                new = _memberships(kind, pk, using)
                if new != old:
                    user = instance if not reverse else User.objects.using(using).get(pk=pk)
                    audit(
                        actor=current_actor(), action="user.access_changed", target=user,
                        before={kind: old}, after={kind: new},
                    )  # fmt: skip

    return receiver


def _group_permissions_changed(sender, instance, action, reverse, pk_set, using, **kwargs):
    if action.startswith("pre_"):
        if not reverse:
            groups = [] if _is_muted(instance) else [instance]
        else:
            qs = Group.objects.using(using).filter(pk__in=pk_set) if pk_set is not None else instance.group_set.all()
            groups = [g for g in qs if not _is_muted(g)]
        instance.__dict__["_access_group_perms"] = {
            g: sorted(_label(p) for p in g.permissions.select_related("content_type")) for g in groups
        }
    elif action.startswith("post_"):
        for group, old in instance.__dict__.pop("_access_group_perms", {}).items():
            new = sorted(_label(p) for p in group.permissions.select_related("content_type"))
            if new != old:
                audit(
                    actor=current_actor(), action="group.permissions_changed", target=group,
                    before={"permissions": sorted(set(old) - set(new))}, after={"permissions": sorted(set(new) - set(old))},
                )  # fmt: skip


_groups_changed = _user_memberships_changed("groups")
_user_permissions_changed = _user_memberships_changed("user_permissions")


def connect() -> None:
    """Connected once, by PortalConfig.ready."""
    User = get_user_model()
    pre_save.connect(_before_save, sender=User, dispatch_uid="staff-access-before-save")
    post_save.connect(_after_save, sender=User, dispatch_uid="staff-access-after-save")
    m2m_changed.connect(_groups_changed, sender=User.groups.through, dispatch_uid="staff-access-groups")
    m2m_changed.connect(
        _user_permissions_changed, sender=User.user_permissions.through, dispatch_uid="staff-access-user-perms"
    )
    m2m_changed.connect(
        _group_permissions_changed, sender=Group.permissions.through, dispatch_uid="staff-access-group-perms"
    )
