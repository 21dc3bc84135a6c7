"""Roles are permissions: every admin page, action and operation and every staff page, for each staff
role, allowed and refused, against the matrix of docs/decisions.md ("Staff roles are permissions"),
written out again here (not read from portal.core.roles: the test is the second statement of it).

A refused page is a 403 (a staff member without the permission), or the admin's redirect for an
object hidden from this user (a vulnerability report: Django's "doesn't exist" redirect); a refused
action is not offered and does nothing; a refused operation is a 403 and does nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from functools import cached_property
from zoneinfo import ZoneInfo

import pytest
import time_machine
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from knox.models import AuthToken

from contracts.incidents.services import incident_open
from contracts.maintenance.services import window_publish
from contracts.models import (
    SLA,
    Incident,
    Invitation,
    MaintenanceWindow,
    Outage,
    OutageUpdate,
    Service,
    SLAVersion,
    WorkingCalendar,
)
from contracts.services import sla_copy, version_terms_fingerprint
from credits.closing import close_month
from credits.models import Claim, MonthlyUptime
from credits.services import claim_approve, claim_submit
from portal.core.audit import audit
from portal.core.roles import StaffRole
from portal.models import (
    ApiToken,
    AuditEntry,
    BouncedAddress,
    OutboxMessage,
    SweepHeartbeat,
    User,
    VendorWebhookEndpoint,
)
from tickets.inbound.service import ingest
from tickets.models import CannedReply, EscalationRequest, InboundMessage, SLACrossing, Ticket, TicketMessage
from tickets.security import security_report_submit
from tickets.services import ticket_open, ticket_request_escalation

from .factories import ContractFactory, StaffFactory

pytestmark = pytest.mark.django_db

NBO = ZoneInfo("Africa/Nairobi")
NOW = datetime(2026, 11, 3, 10, 0, tzinfo=NBO)  # October is closed and still claimable
OCT = datetime(2026, 10, 1).date()

AGENT, LEAD, AM, CSM, SEC, SU, NONE = "agent", "lead", "am", "csm", "security", "superuser", "no role"
ROLES = [AGENT, LEAD, AM, CSM, SEC, SU, NONE]
WORK = {AGENT, LEAD, AM, CSM}  # the roles that work tickets with the context around them
LEADS = {LEAD, AM, CSM}
MANAGERS = {AM, CSM}
NOBODY: set[str] = set()

# --- The matrix, per admin: who opens its list (and an object's page), who adds, who edits ------------
# "edit": the object's page offers to save it (a view-only page is a "view"); None: not a role's to decide.
PAGES = {
    "portal.user": {"view": {AM, CSM, SU}, "add": {SU}, "edit": {AM, CSM, SU}},  # edit: a customer user
    "portal.user:staff": {"view": {AM, CSM, SU}, "add": {SU}, "edit": {SU}},  # a staff member: superusers
    "auth.group": {"view": {SU}, "add": {SU}, "edit": {SU}},
    "otp_totp.totpdevice": {"view": {SU}, "add": {SU}, "edit": {SU}},
    "otp_static.staticdevice": {"view": {SU}, "add": {SU}, "edit": {SU}},
    "axes.accessattempt": {"view": {SEC, SU}, "add": NOBODY, "edit": {SU}},
    "axes.accesslog": {"view": {SEC, SU}, "add": NOBODY, "edit": {SU}},
    "axes.accessfailurelog": {"view": {SEC, SU}, "add": NOBODY, "edit": {SU}},
    "portal.outboxmessage": {"view": {*WORK, SEC, SU}, "add": NOBODY, "edit": NOBODY},
    # The vendor's own webhook endpoints (on-call): added, tested, enabled, disabled, never edited.
    "portal.vendorwebhookendpoint": {"view": {*LEADS, SU}, "add": {*LEADS, SU}, "edit": NOBODY},
    "portal.auditentry": {"view": {SEC, SU}, "add": NOBODY, "edit": NOBODY},
    "portal.sweepheartbeat": {"view": {*WORK, SU}, "add": NOBODY, "edit": NOBODY},
    "portal.bouncedaddress": {"view": {*WORK, SU}, "add": NOBODY, "edit": NOBODY},
    "portal.apitoken": {"view": {SEC, SU}, "add": NOBODY, "edit": NOBODY},
    "contracts.maintenancewindow": {"view": {*WORK, SU}, "add": {*LEADS, SU}, "edit": {*LEADS, SU}},
    "contracts.service": {"view": {*WORK, SEC, SU}, "add": {SU}, "edit": {SU}},
    "contracts.outage": {"view": {*WORK, SU}, "add": {*LEADS, SU}, "edit": {*LEADS, SU}},
    "contracts.incident": {"view": {*WORK, SU}, "add": {*LEADS, SU}, "edit": {*LEADS, SU}},
    "contracts.organisation": {"view": {*WORK, SU}, "add": {*MANAGERS, SU}, "edit": {*MANAGERS, SU}},
    "contracts.workingcalendar": {"view": {*WORK, SU}, "add": {*MANAGERS, SU}, "edit": {*LEADS, SU}},
    "contracts.slaversion": {"view": {*WORK, SU}, "add": {*MANAGERS, SU}, "edit": {*MANAGERS, SU}},  # a draft
    # Whether anyone edits a published version is the terms' own rule (tests/test_admin.py), not a role's.
    "contracts.slaversion:published": {"view": {*WORK, SU}, "add": {*MANAGERS, SU}, "edit": None},
    "contracts.sla": {"view": {*WORK, SU}, "add": {*MANAGERS, SU}, "edit": {*MANAGERS, SU}},
    "contracts.contract": {"view": {*WORK, SU}, "add": {*MANAGERS, SU}, "edit": {*MANAGERS, SU}},
    "tickets.escalationrequest": {"view": {*WORK, SEC, SU}, "add": NOBODY, "edit": NOBODY},
    "tickets.slacrossing": {"view": {*WORK, SEC, SU}, "add": NOBODY, "edit": NOBODY},
    "tickets.ticket": {"view": {*WORK, SEC, SU}, "add": NOBODY, "edit": NOBODY},  # worked by operations
    "tickets.ticket:security": {"view": {SEC}, "add": NOBODY, "edit": NOBODY},  # superuser status alone: no
    # Triaged by operations. Security staff's list shows only the security address's email.
    "tickets.inboundmessage": {"view": {*WORK, SU}, "list": {*WORK, SEC, SU}, "add": NOBODY, "edit": NOBODY},
    "tickets.inboundmessage:security": {"view": {SEC}, "add": NOBODY, "edit": NOBODY},  # superuser status alone: no
    # Canned replies: everyone who works tickets keeps their own; the object is the support agents'
    # team reply: its members read it, the leads and managers keep every team's ("list": the changelist).
    "tickets.cannedreply": {
        "list": {*WORK, SEC, SU},
        "view": {AGENT, *LEADS, SU},
        "add": {*WORK, SEC, SU},
        "edit": {*LEADS, SU},
    },  # fmt: skip
    "tickets.cannedreply:personal": {"view": {AGENT}, "add": NOBODY, "edit": {AGENT}},  # the agent's: only his
    "credits.claim": {"view": {*MANAGERS, SU}, "add": NOBODY, "edit": NOBODY},  # decided by operations
    "credits.monthlyuptime": {"view": {*MANAGERS, SU}, "add": NOBODY, "edit": NOBODY},
}

# --- Every admin action, by who is offered it --------------------------------------------------------
ACTIONS = {
    "portal.user": {"delete_selected": {SU}},
    "auth.group": {"delete_selected": {SU}},
    "otp_totp.totpdevice": {"delete_selected": {SU}},
    "otp_static.staticdevice": {"delete_selected": {SU}},
    "axes.accessattempt": {"delete_selected": {SEC, SU}, "cleanup_expired_attempts": {SEC, SU}},
    "axes.accesslog": {"delete_selected": {SU}},
    "axes.accessfailurelog": {"delete_selected": {SU}},
    "portal.outboxmessage": {"delete_selected": {SU}, "retry_now": {*LEADS, SU}},
    "portal.vendorwebhookendpoint": {
        "delete_selected": {*LEADS, SU},
        "send_test": {*LEADS, SU},
        "enable": {*LEADS, SU},
        "disable": {*LEADS, SU},
    },  # fmt: skip
    "portal.auditentry": {},
    "portal.sweepheartbeat": {"delete_selected": {SU}},
    "portal.bouncedaddress": {"delete_selected": {SU}},
    "portal.apitoken": {"delete_selected": {SEC, SU}},
    "contracts.maintenancewindow": {"cancel_windows": {*LEADS, SU}},
    "contracts.service": {"delete_selected": {SU}, "rotate_webhook_token": {SEC, SU}},
    "contracts.outage": {"delete_selected": {SU}},
    "contracts.incident": {"delete_selected": {SU}, "publish_selected": {*LEADS, SU}},
    "contracts.organisation": {"delete_selected": {SU}},
    "contracts.workingcalendar": {"delete_selected": {SU}},
    "contracts.slaversion": {"delete_selected": {SU}, "publish": {SU}, "new_draft": {*MANAGERS, SU}},
    "contracts.sla": {"delete_selected": {SU}},
    "contracts.contract": {"delete_selected": {SU}},
    "tickets.escalationrequest": {"acknowledge": {*LEADS, SU}},
    "tickets.slacrossing": {},
    "tickets.inboundmessage": {},
    "tickets.cannedreply": {"delete_selected": {*WORK, SEC, SU}},  # each reply's own delete permission holds
    "tickets.ticket": {
        "take": {*WORK, SEC, SU},
        "resolve": {*WORK, SEC, SU},
        "escalate_now": {*LEADS, SU},
        "exclude_from_sla": {*LEADS, SU},
        "link_to_incident": {*WORK, SEC, SU},
    },  # fmt: skip
    "credits.claim": {
        "approve_eligible": {*MANAGERS, SU},
        "settle": {AM, SU},
        "reject_selected": {*MANAGERS, SU},
        "export_csv": {*MANAGERS, SU},
    },  # fmt: skip
    "credits.monthlyuptime": {"export_csv": {*MANAGERS, SU}},
}

# --- The operations on an object's page, and the downloads -------------------------------------------
OPERATIONS = {
    "ticket:reply": {*WORK, SEC, SU},
    "ticket:note": {*WORK, SEC, SU},
    "ticket:status": {*WORK, SEC, SU},
    "ticket:assign": {*WORK, SEC, SU},
    "ticket:take": {*WORK, SEC, SU},
    "ticket:call": {*WORK, SEC, SU},
    "ticket:incident": {*WORK, SEC, SU},
    "ticket:file": {*WORK, SU},  # security staff work vulnerability reports, not customers' calls
    "inbound:attach": {*WORK, SU},
    "inbound:file": {*WORK, SU},
    "inbound:discard": {*WORK, SU},
    "inbound:report": {SEC},  # the security address's held email: a report (or discarded)
    "inbound:discard-security": {SEC},
    "ticket:priority": {*LEADS, SU},
    "ticket:exclude": {*LEADS, SU},
    "ticket:escalate": {*LEADS, SU},
    "ticket:acknowledge": {*LEADS, SU},
    "security:reply": {SEC},  # a vulnerability report: security staff only, superusers included
    "claim:approve": {*MANAGERS, SU},
    "claim:adjust": {*MANAGERS, SU},
    "claim:reject": {*MANAGERS, SU},
    "claim:settle": {AM, SU},
    "month:reopen": {*MANAGERS, SU},
    "people:invite": {*MANAGERS, SU},
    "people:deactivate": {*MANAGERS, SU},
}
STAFF_PAGES = {
    "dashboard": {*WORK, SEC, SU},
    "compliance": {*LEADS, SU},
    "compliance_export": {*LEADS, SU},
    "compliance_contract": {*LEADS, SU},
    "claims_export": {*MANAGERS, SU},
    "months_export": {*MANAGERS, SU},
    "ticket_attachment_admin": {*WORK, SEC, SU},
    "ticket_attachment_site": {*WORK, SEC, SU},
    "security_attachment_admin": {SEC},
    "security_attachment_site": {SEC},
    "claim_attachment_admin": {*MANAGERS, SU},
    "claim_attachment_site": {*MANAGERS, SU},
    "organisation_people": {*MANAGERS, SU},
}

ROLE_OF = {
    AGENT: StaffRole.SUPPORT_AGENT, LEAD: StaffRole.SUPPORT_LEAD, AM: StaffRole.ACCOUNT_MANAGER,
    CSM: StaffRole.CLOUD_SOLUTIONS_MANAGER, SEC: StaffRole.SECURITY,
}  # fmt: skip


def test_the_matrix_covers_every_admin_and_action():
    """A new ModelAdmin or action must be put in the matrix (here and in docs/decisions.md)."""
    registered = {m._meta.label_lower for m in admin.site._registry}
    assert registered == {label.split(":")[0] for label in PAGES}
    request = RequestFactory().get("/admin/")
    request.user = User(is_staff=True, is_superuser=True, is_active=True)
    for model, model_admin in admin.site._registry.items():
        assert set(model_admin.get_actions(request)) == set(ACTIONS[model._meta.label_lower]), model


# --- The world each test reads and changes: built as far as the test asks ------------------------------
class World:
    def __init__(self, tmp_path, settings, acme_contract, alice):
        settings.MEDIA_ROOT = tmp_path
        self.contract, self.alice = acme_contract, alice

    @cached_property
    def people(self) -> dict[str, User]:
        people = {
            name: StaffFactory(email=f"{name.replace(' ', '-')}@vendor.example", name=name.title(), staff_role=role)
            for name, role in ROLE_OF.items()
        }
        people[SU] = StaffFactory(email="admin@vendor.example", name="Ada Admin", is_superuser=True, staff_role="")
        people[NONE] = StaffFactory(email="nobody@vendor.example", name="No Role", staff_role="")
        return people

    def client(self, client, role):
        client.force_login(self.people[role])
        return client

    @cached_property
    def ticket(self) -> Ticket:
        log = SimpleUploadedFile("agent.log", b"backup job 17 failed\n", content_type="text/plain")
        return ticket_open(
            user=self.alice, contract=self.contract, service=self.contract.services.get(), priority="P3",
            subject="Restore fails", description="Since last night.", files=[log],
        )  # fmt: skip

    @cached_property
    def escalation(self) -> EscalationRequest:
        return ticket_request_escalation(ticket=self.ticket, user=self.alice, reason="It blocks us.")

    @cached_property
    def security_ticket(self) -> Ticket:
        report = security_report_submit(email="finder@example.org", name="Finder", summary="XSS", details="In search.")
        report.attachments.create(
            file=SimpleUploadedFile("poc.txt", b"<script>"), original_name="poc.txt", content_type="text/plain",
            size=8, uploaded_by=report.created_by, uploaded_at=NOW,
        )  # fmt: skip
        return report

    @cached_property
    def held(self) -> InboundMessage:
        """An email held for staff: its sender is nobody we know."""
        raw = (
            b"From: pat@other.example\r\nTo: support@kaluari.com\r\nSubject: Restore help\r\n"
            b"Message-ID: <held@other.example>\r\n\r\nCan you help?\r\n"
        )
        return InboundMessage.objects.get(pk=ingest(raw, received_at=NOW, source="pipe").inbound_id)

    @cached_property
    def held_security(self) -> InboundMessage:
        """An email to the security address that taking failed on: held, for who sees reports."""
        raw = (
            b"From: finder@example.org\r\nTo: security@vendor.example\r\nSubject: SQL injection\r\n"
            b"Message-ID: <sqli@example.org>\r\n\r\nIn the search box.\r\n"
        )
        return InboundMessage.objects.create(
            sha256="f" * 64, sender="finder@example.org", message_id="<sqli@example.org>", subject="SQL injection",
            recipients="security@vendor.example", received_at=NOW, source="pipe", security=True, size=len(raw),
            raw=raw, outcome=InboundMessage.Outcome.HELD, reason="Taking it failed.", created_at=NOW,
        )  # fmt: skip

    @cached_property
    def incident(self) -> Incident:
        """A draft incident on the contract's service (staff publish it, link tickets to it)."""
        outage = Outage.objects.create(title="Backups failing", starts_at=NOW - timedelta(minutes=30))
        outage.services.set(self.contract.services.all())
        return incident_open(outage=outage, title="Backups failing", status="investigating", body="Looking.",
                             actor=None, publish=False, now=NOW)  # fmt: skip

    @cached_property
    def october(self) -> MonthlyUptime:
        service = self.contract.services.get()
        start = datetime(2026, 10, 10, 2, 0, tzinfo=NBO)
        outage = Outage.objects.create(title="Storage down", starts_at=start, ends_at=start + timedelta(minutes=500))
        outage.services.set([service])
        close_month(month=OCT, now=NOW - timedelta(days=2))
        return MonthlyUptime.objects.get(contract=self.contract, month=OCT)

    @cached_property
    def claim(self) -> Claim:
        assert self.october.status == MonthlyUptime.Status.CLOSED  # closed first: a claim needs its figure
        graph = SimpleUploadedFile("graph.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)
        graph.checked_type = "image/png"
        return claim_submit(contract=self.contract, month=OCT, user=self.alice, note="The 10th.", files=[graph])

    @cached_property
    def approved_claim(self) -> Claim:
        other = ContractFactory(organisation=self.contract.organisation, contacts=[self.alice])
        close_month(month=OCT, now=NOW - timedelta(days=2))
        claim = claim_submit(contract=other, month=OCT, user=self.alice)
        return claim_approve(claim=claim, actor=self.people[SU], amount=Decimal("10"), reason="Goodwill.")

    @cached_property
    def window(self) -> MaintenanceWindow:
        start = datetime(2026, 11, 20, 23, 0, tzinfo=NBO)
        return window_publish(
            title="Storage upgrade", description="New disks.", services=[self.contract.services.get()],
            starts_at=start, ends_at=start + timedelta(hours=1), actor=self.people[SU],
        )  # fmt: skip

    @cached_property
    def draft(self) -> SLAVersion:
        """An unpublished version (of an SLA of its own, nobody on it): as test data."""
        sla = sla_copy(source=self.contract.sla, name="Draft terms", effective_from=NOW + timedelta(days=30))
        SLAVersion.objects.filter(sla=sla).update(published_at=None)
        return sla.versions.get()

    @cached_property
    def failed_email(self) -> OutboxMessage:
        message = OutboxMessage.objects.filter(key__startswith=f"ticket:{self.ticket.pk}:").order_by("pk").first()
        OutboxMessage.objects.filter(pk=message.pk).update(status=OutboxMessage.Status.FAILED)
        return message

    def objects(self) -> dict[str, object]:
        """One object of each admin's model (for its page)."""
        p = self.people
        outage = Outage.objects.create(title="Network", starts_at=NOW - timedelta(hours=1))
        OutageUpdate.objects.create(outage=outage, at=NOW, body="Investigating.")
        crossing = SLACrossing.objects.create(
            ticket=self.ticket, clock="first_response", kind="breach", at=NOW, recorded_at=NOW
        )
        token, _ = AuthToken.objects.create(user=self.alice)
        holder = StaffFactory(email="holder@vendor.example", name="Device Holder")
        attempt_fields = {"user_agent": "curl", "ip_address": "10.0.0.1", "username": "bob@acme.example"}
        return {
            "portal.user": self.alice,
            "portal.user:staff": p[AGENT],
            "auth.group": Group.objects.get(name="Support agent"),
            # Someone else's devices: whoever has one must sign in with it (these clients do not).
            "otp_totp.totpdevice": TOTPDevice.objects.create(user=holder, name="phone"),
            "otp_static.staticdevice": StaticDevice.objects.create(user=holder, name="backup"),
            "axes.accessattempt": AccessAttempt.objects.create(
                **attempt_fields,
                attempt_time=NOW,
                get_data="",
                post_data="",
                http_accept="*/*",
                path_info="/",
                failures_since_start=1,
            ),  # fmt: skip
            "axes.accesslog": AccessLog.objects.create(**attempt_fields, attempt_time=NOW),
            "axes.accessfailurelog": AccessFailureLog.objects.create(**attempt_fields, attempt_time=NOW),
            "portal.outboxmessage": self.failed_email,
            "portal.vendorwebhookendpoint": VendorWebhookEndpoint.objects.create(
                url="https://oncall.vendor.example/hooks",
                events=["ticket.at_risk"],
                secret="whsec_test",
                created_at=NOW,
            ),
            "portal.auditentry": audit(actor=p[SU], action="test.done", target=self.alice),
            "portal.sweepheartbeat": SweepHeartbeat.objects.create(name="escalations", last_started_at=NOW),
            "portal.bouncedaddress": BouncedAddress.objects.create(
                address="gone@acme.example", first_bounced_at=NOW, last_bounced_at=NOW, bounces=1, last_status="5.1.1"
            ),
            "portal.apitoken": ApiToken.objects.get(pk=token.pk),
            "contracts.maintenancewindow": self.window,
            "contracts.service": Service.objects.get(slug="cloud-backup"),
            "contracts.outage": outage,
            "contracts.incident": self.incident,
            "contracts.organisation": self.contract.organisation,
            "contracts.workingcalendar": WorkingCalendar.objects.first(),
            "contracts.slaversion": self.draft,
            "contracts.slaversion:published": self.contract.sla.versions.exclude(published_at=None).first(),
            "contracts.sla": SLA.objects.get(pk=self.contract.sla_id),
            "contracts.contract": self.contract,
            "tickets.escalationrequest": self.escalation,
            "tickets.slacrossing": crossing,
            "tickets.ticket": self.ticket,
            "tickets.ticket:security": self.security_ticket,
            "tickets.inboundmessage": self.held,
            "tickets.inboundmessage:security": self.held_security,
            "tickets.cannedreply": CannedReply.objects.create(
                name="Greeting",
                body="Hello {{ customer_name }}.",
                team=Group.objects.get(name="Support agent"),
                created_at=NOW,
                updated_at=NOW,
            ),
            "tickets.cannedreply:personal": CannedReply.objects.create(
                name="Mine", body="On it.", owner=p[AGENT], created_at=NOW, updated_at=NOW
            ),
            "credits.claim": self.claim,
            "credits.monthlyuptime": self.october,
        }


@pytest.fixture
def world(tmp_path, settings, acme_contract, alice):
    with time_machine.travel(NOW, tick=False):
        yield World(tmp_path, settings, acme_contract, alice)


def admin_url(label, view, *args):
    app, model = label.split(":")[0].split(".")
    return reverse(f"admin:{app}_{model}_{view}", args=args)


def refused(response) -> bool:
    """Refused as Django's admin refuses: a 403, or the redirect of an object this user cannot see."""
    return response.status_code == 403 or (response.status_code == 302 and "/login/" not in response["Location"])


# --- Pages ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ROLES)
def test_admin_pages_for_each_role(client, world, role):
    objects = world.objects()
    client = world.client(client, role)
    wrong = []
    for label, allowed in PAGES.items():
        obj = objects[label]
        pages = [("change", admin_url(label, "change", obj.pk), allowed["view"])]
        if ":" not in label:  # a second object of the same admin: its page only
            pages += [
                ("changelist", admin_url(label, "changelist"), allowed.get("list", allowed["view"])),
                ("add", admin_url(label, "add"), allowed["add"]),
            ]
        for name, url, roles in pages:
            response = client.get(url)
            if role in roles and response.status_code != 200:
                wrong.append(f"{label} {name}: {response.status_code}, expected 200")
            elif role not in roles and not refused(response):
                wrong.append(f"{label} {name}: {response.status_code}, expected refused")
            elif name == "change" and response.status_code == 200 and allowed["edit"] is not None:
                edits = 'name="_save"' in response.content.decode()
                if edits != (role in allowed["edit"]):
                    wrong.append(f"{label} change page {'edits' if edits else 'only shows'}; expected the other")
    assert wrong == []
    assert client.get(reverse("admin:index")).status_code == 200  # every staff member has the index


@pytest.mark.parametrize("role", ROLES)
def test_every_action_is_offered_to_the_roles_the_matrix_names(client, world, role):
    user = world.people[role]
    wrong = []
    for model, model_admin in admin.site._registry.items():
        label = model._meta.label_lower
        request = RequestFactory().get("/admin/")
        request.user = user
        offered = set(model_admin.get_actions(request)) if model_admin.has_view_or_change_permission(request) else set()
        expected = {name for name, roles in ACTIONS[label].items() if role in roles}
        if offered != expected:
            wrong.append(f"{label}: offered {sorted(offered)}, expected {sorted(expected)}")
    assert wrong == []


# --- Actions: allowed, they act; refused, nothing happens ----------------------------------------------
def post_action(client, label, action, objs, query="", **data):
    return client.post(
        admin_url(label, "changelist") + query,
        {"action": action, "_selected_action": [o.pk for o in objs], "index": "0", **data},
    )


ACTION_CASES = {
    # name: (model, action, the objects it acts on, extra POST data, whether it acted)
    "take": (
        "tickets.ticket", "take", lambda w: [w.ticket], {},
        lambda w, role: Ticket.objects.get(pk=w.ticket.pk).assignee_id == w.people[role].pk,
    ),
    "resolve": (
        "tickets.ticket", "resolve", lambda w: [w.ticket], {},
        lambda w, role: Ticket.objects.get(pk=w.ticket.pk).status == Ticket.Status.RESOLVED,
    ),
    "escalate_now": (
        "tickets.ticket", "escalate_now", lambda w: [w.ticket], {},
        lambda w, role: Ticket.objects.get(pk=w.ticket.pk).escalation_level == 2,
    ),
    "exclude_from_sla": (
        "tickets.ticket", "exclude_from_sla", lambda w: [w.ticket], {"apply": "yes", "cause": "ddos", "reason": "A flood."},
        lambda w, role: Ticket.objects.get(pk=w.ticket.pk).excluded_cause == "ddos",
    ),
    "acknowledge": (
        "tickets.escalationrequest", "acknowledge", lambda w: [w.escalation], {},
        lambda w, role: EscalationRequest.objects.get(pk=w.escalation.pk).acknowledged_at is not None,
    ),
    "approve_eligible": (
        "credits.claim", "approve_eligible", lambda w: [w.claim], {},
        lambda w, role: Claim.objects.get(pk=w.claim.pk).status == Claim.Status.APPROVED,
    ),
    "reject_selected": (
        "credits.claim", "reject_selected", lambda w: [w.claim], {"apply": "yes", "reason": "Not ours."},
        lambda w, role: Claim.objects.get(pk=w.claim.pk).status == Claim.Status.REJECTED,
    ),
    "settle": (
        "credits.claim", "settle", lambda w: [w.approved_claim], {"query": "?status=all"},
        lambda w, role: Claim.objects.get(pk=w.approved_claim.pk).status == Claim.Status.SETTLED,
    ),
    "claims_export_csv": (
        "credits.claim", "export_csv", lambda w: [w.claim], {},
        lambda w, role: w.response.get("Content-Type", "").startswith("text/csv"),
    ),
    "months_export_csv": (
        "credits.monthlyuptime", "export_csv", lambda w: [w.october], {},
        lambda w, role: w.response.get("Content-Type", "").startswith("text/csv"),
    ),
    "cancel_windows": (
        "contracts.maintenancewindow", "cancel_windows", lambda w: [w.window], {},
        lambda w, role: MaintenanceWindow.objects.get(pk=w.window.pk).status == MaintenanceWindow.Status.CANCELLED,
    ),
    "rotate_webhook_token": (
        "contracts.service", "rotate_webhook_token", lambda w: [w.contract.services.get()], {},
        lambda w, role: Service.objects.get(slug="cloud-backup").webhook_token_hash != "",
    ),
    "publish": (
        "contracts.slaversion", "publish", lambda w: [w.draft],
        lambda w: {"apply": "yes", f"terms-{w.draft.pk}": version_terms_fingerprint(w.draft)},
        lambda w, role: SLAVersion.objects.get(pk=w.draft.pk).published_at is not None,
    ),
    "new_draft": (
        "contracts.slaversion", "new_draft", lambda w: [w.contract.sla.versions.first()],
        {"apply": "yes", "effective_on": "2026-12-20"},
        lambda w, role: w.contract.sla.versions.filter(published_at=None).exists(),
    ),
    "publish_selected": (
        "contracts.incident", "publish_selected", lambda w: [w.incident], {},
        lambda w, role: Incident.objects.get(pk=w.incident.pk).published_at is not None,
    ),
    "link_to_incident": (
        "tickets.ticket", "link_to_incident", lambda w: [w.ticket], lambda w: {"incident": w.incident.pk},
        lambda w, role: Ticket.objects.get(pk=w.ticket.pk).incident_id == w.incident.pk,
    ),
    "retry_now": (
        "portal.outboxmessage", "retry_now", lambda w: [w.failed_email], {},
        lambda w, role: OutboxMessage.objects.get(pk=w.failed_email.pk).status == OutboxMessage.Status.PENDING,
    ),
    "revoke_api_token": (
        "portal.apitoken", "delete_selected", lambda w: [ApiToken.objects.get(pk=AuthToken.objects.create(user=w.alice)[0].pk)],
        {"post": "yes"}, lambda w, role: not AuthToken.objects.exists(),
    ),
}  # fmt: skip


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", list(ACTION_CASES))
def test_an_action_acts_for_the_roles_the_matrix_names_and_does_nothing_for_the_others(client, world, case, role):
    label, action, objs, data, acted = ACTION_CASES[case]
    selected = objs(world)
    data = data(world) if callable(data) else data  # POST data naming an object of the world
    client = world.client(client, role)
    world.response = post_action(client, label, action, selected, **data)
    allowed = role in ACTIONS[label][action]
    assert acted(world, role) == allowed, (world.response.status_code, world.response.get("Location"))
    if not allowed:  # the list again (no action for this user, or not this one), or refused
        assert world.response.status_code in (200, 302, 403)


# --- Operations on an object's page ---------------------------------------------------------------
def _ticket_op(name, data, done):
    return lambda w: (reverse(f"admin:tickets_ticket_{name}", args=[w.ticket.pk]), data(w), done)


OPERATION_CASES = {
    "ticket:reply": _ticket_op(
        "reply",
        lambda w: {"body": "On it."},
        lambda w, role: TicketMessage.objects.filter(ticket=w.ticket, internal=False).exists(),
    ),
    "ticket:note": _ticket_op(
        "reply",
        lambda w: {"body": "Check the disks.", "internal": "on"},
        lambda w, role: TicketMessage.objects.filter(ticket=w.ticket, internal=True).exists(),
    ),
    "ticket:status": _ticket_op(
        "status",
        lambda w: {"status": "waiting"},
        lambda w, role: Ticket.objects.get(pk=w.ticket.pk).status == "waiting",
    ),
    "ticket:assign": _ticket_op(
        "assign",
        lambda w: {"assignee": w.people[SU].pk},
        lambda w, role: Ticket.objects.get(pk=w.ticket.pk).assignee_id == w.people[SU].pk,
    ),
    "ticket:take": _ticket_op(
        "take", lambda w: {}, lambda w, role: Ticket.objects.get(pk=w.ticket.pk).assignee_id == w.people[role].pk
    ),
    "ticket:call": _ticket_op(
        "call",
        lambda w: {
            "direction": "outbound",
            "contact_name": "Alice, +254 700 000 001",
            "started_at": "2026-11-03T10:00",
            "duration": "5",
            "answered": "on",
            "notes": "Restarted the agent together.",
        },
        lambda w, role: Ticket.objects.get(pk=w.ticket.pk).first_response_at == NOW,
    ),  # fmt: skip
    "ticket:file": lambda w: (
        reverse("admin:tickets_ticket_file"),
        {
            "channel": "phone",
            "customer": w.alice.pk,
            "contract": w.contract.pk,
            "service": w.contract.services.get().pk,
            "priority": "P3",
            "subject": "Restore slow",
            "description": "Called about a slow restore.",
            "reached_at": "2026-11-03T09:30",
        },
        lambda w, role: Ticket.objects.filter(channel="phone", filed_at=NOW - timedelta(minutes=30)).exists(),
    ),  # fmt: skip
    "ticket:priority": _ticket_op(
        "priority",
        lambda w: {"priority": "P1", "reason": "Production is down."},
        lambda w, role: Ticket.objects.get(pk=w.ticket.pk).priority == "P1",
    ),
    "ticket:exclude": _ticket_op(
        "exclude",
        lambda w: {"cause": "ddos", "reason": "A flood."},
        lambda w, role: Ticket.objects.get(pk=w.ticket.pk).excluded_cause == "ddos",
    ),
    "ticket:escalate": _ticket_op(
        "escalate", lambda w: {}, lambda w, role: Ticket.objects.get(pk=w.ticket.pk).escalation_level == 2
    ),
    "ticket:acknowledge": lambda w: (
        reverse("admin:tickets_ticket_acknowledge", args=[w.ticket.pk, w.escalation.pk]),
        {},
        lambda w, role: EscalationRequest.objects.get(pk=w.escalation.pk).acknowledged_at is not None,
    ),
    "security:reply": lambda w: (
        reverse("admin:tickets_ticket_reply", args=[w.security_ticket.pk]),
        {"body": "Thanks, confirmed."},
        lambda w, role: TicketMessage.objects.filter(ticket=w.security_ticket).exists(),
    ),
    "inbound:attach": lambda w: (
        reverse("admin:tickets_inboundmessage_attach", args=[w.held.pk]),
        {"ticket": w.ticket.pk},
        lambda w, role: InboundMessage.objects.get(pk=w.held.pk).outcome == "replied",
    ),
    "inbound:file": lambda w: (
        reverse("admin:tickets_inboundmessage_file", args=[w.held.pk]),
        {"contract": w.contract.pk, "person": w.alice.email},
        lambda w, role: InboundMessage.objects.get(pk=w.held.pk).outcome == "filed",
    ),
    "inbound:discard": lambda w: (
        reverse("admin:tickets_inboundmessage_discard", args=[w.held.pk]),
        {},
        lambda w, role: InboundMessage.objects.get(pk=w.held.pk).outcome == "discarded",
    ),
    "inbound:report": lambda w: (
        reverse("admin:tickets_inboundmessage_report", args=[w.held_security.pk]),
        {},
        lambda w, role: InboundMessage.objects.get(pk=w.held_security.pk).outcome == "filed",
    ),
    "inbound:discard-security": lambda w: (
        reverse("admin:tickets_inboundmessage_discard", args=[w.held_security.pk]),
        {},
        lambda w, role: InboundMessage.objects.get(pk=w.held_security.pk).outcome == "discarded",
    ),
    "claim:approve": lambda w: (
        reverse("admin:credits_claim_approve", args=[w.claim.pk]),
        {},
        lambda w, role: Claim.objects.get(pk=w.claim.pk).status == Claim.Status.APPROVED,
    ),
    "claim:adjust": lambda w: (
        reverse("admin:credits_claim_adjust", args=[w.claim.pk]),
        {"amount": "100", "reason": "Goodwill."},
        lambda w, role: Claim.objects.get(pk=w.claim.pk).amount == Decimal("100"),
    ),
    "claim:reject": lambda w: (
        reverse("admin:credits_claim_reject", args=[w.claim.pk]),
        {"reason": "Not ours."},
        lambda w, role: Claim.objects.get(pk=w.claim.pk).status == Claim.Status.REJECTED,
    ),
    "claim:settle": lambda w: (
        reverse("admin:credits_claim_settle", args=[w.approved_claim.pk]),
        {},
        lambda w, role: Claim.objects.get(pk=w.approved_claim.pk).status == Claim.Status.SETTLED,
    ),
    "month:reopen": lambda w: (
        reverse("admin:credits_monthlyuptime_reopen", args=[w.october.pk]),
        {"reason": "A cause was corrected."},
        lambda w, role: MonthlyUptime.objects.get(pk=w.october.pk).status == MonthlyUptime.Status.REOPENED,
    ),
    "ticket:incident": lambda w: (
        reverse("admin:tickets_ticket_incident", args=[w.ticket.pk]),
        {"incident": w.incident.pk},
        lambda w, role: Ticket.objects.get(pk=w.ticket.pk).incident_id == w.incident.pk,
    ),
    "people:invite": lambda w: (
        reverse("admin:contracts_organisation_people", args=[w.contract.organisation_id]),
        {"op": "invite", "email": "erin@acme.example", "role": "member"},
        lambda w, role: Invitation.objects.filter(email="erin@acme.example").exists(),
    ),
    "people:deactivate": lambda w: (
        reverse("admin:contracts_organisation_people", args=[w.contract.organisation_id]),
        {"op": "deactivate", "member": w.contract.organisation.users.get(customer_role="member").pk},
        lambda w, role: not w.contract.organisation.users.get(customer_role="member").is_active,
    ),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", list(OPERATION_CASES))
def test_an_operation_acts_for_the_roles_the_matrix_names_and_is_refused_to_the_others(client, world, case, role):
    url, data, done = OPERATION_CASES[case](world)
    client = world.client(client, role)
    response = client.post(url, data)
    if role in OPERATIONS[case]:
        assert response.status_code == 302 and "/login/" not in response["Location"], response.status_code
        assert done(world, role)
    else:
        # Not found for whoever does not see it: reports and the security address's email for who
        # does not see reports, customers' email for security staff (who see only the former).
        hidden = case.startswith("security:") or case in ("inbound:report", "inbound:discard-security")
        hidden = hidden or (case.startswith("inbound:") and role == SEC)
        assert response.status_code == (404 if hidden else 403)
        assert not done(world, role)


# --- The staff pages and the downloads -------------------------------------------------------------
STAFF_PAGE_URLS = {
    "dashboard": lambda w: reverse("admin:staff_dashboard"),
    "compliance": lambda w: reverse("admin:compliance") + "?month=2026-10",
    "compliance_export": lambda w: reverse("admin:compliance_export") + "?month=2026-10",
    "compliance_contract": lambda w: reverse("admin:compliance_contract", args=[w.contract.pk]) + "?month=2026-10",
    "claims_export": lambda w: reverse("admin:credits_claim_export") + "?status=all",
    "months_export": lambda w: reverse("admin:credits_monthlyuptime_export"),
    "ticket_attachment_admin": lambda w: reverse(
        "admin:tickets_ticket_attachment", args=[w.ticket.pk, w.ticket.attachments.get().pk]
    ),
    "ticket_attachment_site": lambda w: reverse(
        "attachment-download", args=[w.ticket.pk, w.ticket.attachments.get().pk]
    ),
    "security_attachment_admin": lambda w: reverse(
        "admin:tickets_ticket_attachment", args=[w.security_ticket.pk, w.security_ticket.attachments.get().pk]
    ),
    "security_attachment_site": lambda w: reverse(
        "attachment-download", args=[w.security_ticket.pk, w.security_ticket.attachments.get().pk]
    ),
    "claim_attachment_admin": lambda w: reverse(
        "admin:credits_claim_attachment", args=[w.claim.pk, w.claim.attachments.get().pk]
    ),
    "claim_attachment_site": lambda w: reverse("claim-attachment", args=[w.claim.pk, w.claim.attachments.get().pk]),
    "organisation_people": lambda w: reverse("admin:contracts_organisation_people", args=[w.contract.organisation_id]),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", list(STAFF_PAGES))
def test_staff_pages_and_downloads_for_each_role(client, world, page, role):
    assert world.october.month == OCT  # a month in the reports
    url = STAFF_PAGE_URLS[page](world)
    response = world.client(client, role).get(url)
    if role in STAFF_PAGES[page]:
        assert response.status_code == 200
    else:
        assert response.status_code in (403, 404)  # a file this user may not have is not found


# --- Sam, a support agent -------------------------------------------------------------------------
SAM_SECTIONS = {
    "Tickets": {"Tickets", "Escalation requests", "SLA crossings", "Inbound messages", "Canned replies"},
    "Contracts": {
        "Contracts",
        "Incidents",
        "Maintenance windows",
        "Organisations",
        "Outages",
        "SLA versions",
        "SLAs",
        "Services",
        "Working calendars",
    },  # fmt: skip
    "Portal: accounts and email outbox": {"Outbox messages", "Sweep heartbeats", "Bounced addresses"},
}


def test_sam_has_exactly_the_support_agents_permissions_and_sees_only_his_sections(client, sam):
    expected = {
        "tickets.view_ticket", "tickets.change_ticket", "tickets.view_escalationrequest", "tickets.view_slacrossing",
        "tickets.file_for_customer", "tickets.view_inboundmessage", "tickets.triage_inboundmessage",
        "tickets.view_cannedreply", "tickets.add_cannedreply", "tickets.change_cannedreply",
        "tickets.delete_cannedreply", "contracts.view_organisation", "contracts.view_contract", "contracts.view_service", "contracts.view_sla",
        "contracts.view_slaversion", "contracts.view_priorityterm", "contracts.view_escalationlevel",
        "contracts.view_escalationdwell", "contracts.view_credittier", "contracts.view_workingcalendar",
        "contracts.view_workinghours", "contracts.view_closeddate", "contracts.view_outage",
        "contracts.view_outageupdate", "contracts.view_outagecausechange", "contracts.view_maintenancewindow",
        "contracts.view_incident", "contracts.view_incidentupdate",
        "portal.view_outboxmessage", "portal.view_outboxattempt", "portal.view_sweepheartbeat",
        "portal.view_bouncedaddress", "portal.view_staff_dashboard",
    }  # fmt: skip
    assert not sam.is_superuser and list(sam.groups.values_list("name", flat=True)) == ["Support agent"]
    assert sam.get_all_permissions() == expected
    client.force_login(sam)
    response = client.get(reverse("admin:index"))
    sections = {app["name"]: {m["name"] for m in app["models"]} for app in response.context["app_list"]}
    assert sections == SAM_SECTIONS
    html = response.content.decode()
    assert "Staff dashboard" in html and "SLA compliance report" not in html


def test_a_role_group_is_kept_to_the_matrix_and_staff_role_follows_the_group(client, sam):
    from portal.core.staff_access import role_groups_sync

    lead = Group.objects.get(name="Support lead")
    lead.permissions.add(Permission.objects.get(codename="view_auditentry"))  # by hand: put back
    assert any("Support lead" in c for c in role_groups_sync())
    assert not lead.permissions.filter(codename="view_auditentry").exists()
    assert role_groups_sync() == []  # idempotent
    sam.groups.set([lead])  # the group is the truth: the role follows on the next sync (or admin save)
    role_groups_sync()
    sam.refresh_from_db()
    assert sam.staff_role == StaffRole.SUPPORT_LEAD
    actions = list(AuditEntry.objects.order_by("id").values_list("action", flat=True))
    assert "group.permissions_changed" in actions and "user.access_changed" in actions


def test_the_login_backend_reads_a_staff_members_permissions_as_django_does_in_one_query(
    sam, django_assert_num_queries
):
    """portal.core.backends reads a role's and a person's own permissions in one statement: the same
    answer as Django's ModelBackend (its two), for a role alone, a grant by name beside the role (also
    one the role holds), no role, an inactive account and a superuser."""
    from django.contrib.auth.backends import ModelBackend

    from portal.core.backends import PortalBackend

    def fresh(user):
        return User.objects.get(pk=user.pk)  # no permissions kept from an earlier read

    named = Permission.objects.get(codename="settle_claim")
    held_by_role = Permission.objects.get(codename="change_ticket")
    lone = User.objects.create_user(email="lone@vendor.example", password="x", is_staff=True)
    lone.user_permissions.add(named)
    gone = User.objects.create_user(email="gone@vendor.example", password="x", is_staff=True, is_active=False)
    gone.groups.add(Group.objects.get(name="Support lead"))
    boss = User.objects.create_superuser(email="boss@vendor.example", password="x")
    sam.user_permissions.add(named, held_by_role)
    for user in (sam, lone, gone, boss):
        assert PortalBackend().get_all_permissions(fresh(user)) == ModelBackend().get_all_permissions(fresh(user))
    sam = fresh(sam)
    with django_assert_num_queries(1):
        perms = PortalBackend().get_all_permissions(sam)
        assert sam.has_perm("credits.settle_claim") and sam.has_perm("tickets.change_ticket")
        assert not sam.has_perm("credits.change_monthlyuptime")
    assert "credits.settle_claim" in perms and "tickets.view_ticket" in perms
    assert fresh(gone).get_all_permissions() == set() and not fresh(gone).has_perm("tickets.view_ticket")
