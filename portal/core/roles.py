"""Customer roles, and staff roles as sets of permissions.

A staff role is a Group of the same name holding exactly the permissions below (docs/decisions.md,
"Who may do what", is this matrix in words). The groups are created and kept to this matrix after
every migration (portal.core.staff_access.role_groups_sync, run by a post_migrate receiver and by
`manage.py sync_staff_roles`). A staff member's group is the truth; `User.staff_role`, which routes
escalation emails, follows it. Superusers have every permission, except that superuser status
alone never shows vulnerability reports (sees_security)."""

from django.db import models


class CustomerRole(models.TextChoices):
    ADMIN = "admin", "Customer admin"
    MEMBER = "member", "Customer member"


class StaffRole(models.TextChoices):
    SUPPORT_AGENT = "support_agent", "Support agent"
    SUPPORT_LEAD = "support_lead", "Support lead"
    ACCOUNT_MANAGER = "account_manager", "Account manager"
    CLOUD_SOLUTIONS_MANAGER = "cloud_solutions_manager", "Cloud solutions manager"
    SECURITY = "security", "Security"


SECURITY_PERMISSION = "tickets.view_security_report"


def _view(app: str, *models: str) -> list[str]:
    return [f"{app}.view_{m}" for m in models]


# --- The matrix ------------------------------------------------------------------------------------
# Work tickets: the queue, the ticket page, public replies and internal notes, calls, status, assignment;
# canned replies to insert in them: one's own (personal) ones kept, one's teams' used (tickets.canned).
TICKET_WORK = [
    *_view("tickets", "ticket", "escalationrequest", "slacrossing"),
    "tickets.change_ticket",
    *[f"tickets.{op}_cannedreply" for op in ("view", "add", "change", "delete")],
]
# Those who answer customers' calls file tickets for them (not security staff, whose tickets are
# vulnerability reports).
FILE_FOR_CUSTOMER = ["tickets.file_for_customer"]
# They also triage email in: the list of held messages, each attached to a ticket, filed or discarded.
EMAIL_TRIAGE = ["tickets.view_inboundmessage", "tickets.triage_inboundmessage"]
# Support leads also exclude tickets from the SLA, change priorities and handle escalations
# (escalate now, acknowledge a customer's escalation request).
# They keep every team's canned replies too (a team is a role: its group's members use them).
TICKET_LEAD = [
    "tickets.exclude_ticket", "tickets.change_priority", "tickets.handle_escalation", "tickets.manage_team_replies",
]  # fmt: skip
# What the people working tickets read for context: the terms, contracts and their contacts,
# outages with their timeline and cause history, maintenance, the outbox and the addresses it
# bounced from, the sweeps.
CONTEXT_READ = [
    *_view("contracts", "organisation", "contract", "service", "sla", "slaversion", "priorityterm",
           "escalationlevel", "escalationdwell", "credittier", "workingcalendar", "workinghours", "closeddate"),
    *_view("contracts", "outage", "outageupdate", "outagecausechange", "maintenancewindow", "incident", "incidentupdate"),
    *_view("portal", "outboxmessage", "outboxattempt", "sweepheartbeat", "bouncedaddress"),
    "portal.view_staff_dashboard",
]  # fmt: skip
# Support leads also record outages and their public timeline (not their cause), schedule, change
# and cancel maintenance, keep a calendar's closed dates (a calendar of published terms has nothing
# else to change), put failed emails back in the queue, read the compliance report and keep the
# vendor's own webhook endpoints (its on-call tool).
LEAD_OPERATIONS = [
    "contracts.add_outage", "contracts.change_outage", "contracts.add_outageupdate", "contracts.change_outageupdate",
    "contracts.add_incident", "contracts.change_incident", "contracts.publish_incident", "contracts.change_outage_impact",
    "contracts.add_maintenancewindow", "contracts.change_maintenancewindow",
    "contracts.change_workingcalendar", "contracts.add_closeddate", "contracts.change_closeddate",
    "contracts.delete_closeddate",
    "portal.retry_outboxmessage", "credits.view_compliance",
    *[f"portal.{op}_vendorwebhookendpoint" for op in ("view", "add", "change", "delete")],
]  # fmt: skip
# Account and cloud solutions managers also keep contracts and contacts (organisations, contracts,
# customer users, and a customer's people as its admins do: invite, role, deactivate), draft SLA
# terms with new calendars if need be (never publish them), set an outage's cause (which excludes
# its minutes from uptime), and decide claims and reopen months.
MANAGER_OPERATIONS = [
    "contracts.add_organisation", "contracts.change_organisation", "contracts.add_contract", "contracts.change_contract",
    "portal.view_user", "portal.change_user", "contracts.manage_people",
    "contracts.add_sla", "contracts.change_sla", "contracts.add_slaversion", "contracts.change_slaversion",
    *[f"contracts.{op}_{m}" for m in ("priorityterm", "escalationlevel", "escalationdwell", "credittier", "workinghours") for op in ("add", "change", "delete")],
    "contracts.add_workingcalendar",
    "contracts.change_outage_cause",
    *_view("credits", "claim", "monthlyuptime"), "credits.decide_claim", "credits.reopen_monthlyuptime",
]  # fmt: skip
# Security staff work vulnerability reports (tickets only they see, with their attachments and
# emails; the dashboard's ticket sections show them), read the audit log, watch and lift login
# lockouts, revoke customers' API tokens and rotate a service's webhook token.
SECURITY_OPERATIONS = [
    SECURITY_PERMISSION,
    "portal.view_staff_dashboard",
    "portal.view_auditentry",
    *_view("portal", "outboxmessage", "outboxattempt"),
    "axes.view_accessattempt", "axes.delete_accessattempt", "axes.view_accesslog", "axes.view_accessfailurelog",
    "portal.view_apitoken", "portal.delete_apitoken",
    "contracts.view_service", "contracts.rotate_webhook_token",
]  # fmt: skip

ROLE_PERMISSIONS: dict[str, list[str]] = {
    StaffRole.SUPPORT_AGENT: [*TICKET_WORK, *FILE_FOR_CUSTOMER, *EMAIL_TRIAGE, *CONTEXT_READ],
    StaffRole.SUPPORT_LEAD: [*TICKET_WORK, *FILE_FOR_CUSTOMER, *EMAIL_TRIAGE, *TICKET_LEAD, *CONTEXT_READ, *LEAD_OPERATIONS],
    StaffRole.ACCOUNT_MANAGER: [
        *TICKET_WORK, *FILE_FOR_CUSTOMER, *EMAIL_TRIAGE, *TICKET_LEAD, *CONTEXT_READ, *LEAD_OPERATIONS, *MANAGER_OPERATIONS,
        "credits.settle_claim",
    ],
    StaffRole.CLOUD_SOLUTIONS_MANAGER: [
        *TICKET_WORK, *FILE_FOR_CUSTOMER, *EMAIL_TRIAGE, *TICKET_LEAD, *CONTEXT_READ, *LEAD_OPERATIONS, *MANAGER_OPERATIONS,
    ],
    StaffRole.SECURITY: [*TICKET_WORK, *SECURITY_OPERATIONS],
}  # fmt: skip


def role_group_name(role: str) -> str:
    """The Group that is the role: named as the role is shown ("Support agent")."""
    return StaffRole(role).label


def role_of_group(name: str) -> str | None:
    return next((role.value for role in StaffRole if role.label == name), None)


def sees_security(user) -> bool:
    """Vulnerability reports are shown to staff who hold the security permission through their role
    (or granted to them by name): superuser status alone does not show them."""
    if not (getattr(user, "is_authenticated", False) and user.is_active and user.is_staff):
        return False
    if not user.is_superuser:
        return user.has_perm(SECURITY_PERMISSION)  # read with the user's other permissions, cached
    cached = getattr(user, "_sees_security", None)
    if cached is None:
        app, codename = SECURITY_PERMISSION.split(".")
        cached = user._sees_security = (
            held_permissions(user).filter(content_type__app_label=app, codename=codename).exists()
        )
    return cached


def held_permissions(user):
    """The permissions `user` holds by name or through a group (a role), superuser status aside."""
    from django.contrib.auth.models import Permission
    from django.db.models import Q

    return Permission.objects.filter(Q(user=user) | Q(group__user=user))


WORK_PERMISSION = "tickets.change_ticket"  # TICKET_WORK's: who may hold a ticket


def working_staff(users):
    """`users` narrowed to the active staff who work tickets (WORK_PERMISSION through their role or
    by name, or superuser status, as has_perm answers): whom a ticket may be assigned to
    (tickets.services.ticket_assign asks has_perm)."""
    return _holding(users, WORK_PERMISSION, superusers=True)


def security_staff(users):
    """`users` narrowed to the active staff who see vulnerability reports, as sees_security decides
    it: the permission through their role or granted by name (superuser status alone is not it).
    sees_security asks the same of one superuser from the permission's side: it is asked on every
    staff page, and that query took 0.50 ms against this one's 0.68 (300 runs each, session 13);
    tests/test_security_reports.py holds both to the same answer."""
    return _holding(users, SECURITY_PERMISSION, superusers=False)


def _holding(users, permission: str, *, superusers: bool):
    from django.db.models import Q

    app, codename = permission.split(".")
    held = Q(user_permissions__codename=codename, user_permissions__content_type__app_label=app) | Q(
        groups__permissions__codename=codename, groups__permissions__content_type__app_label=app
    )
    if superusers:
        held |= Q(is_superuser=True)
    return users.filter(held, is_staff=True, is_active=True).distinct()
