"""Demo data: a vendor with its staff, two customer organisations (one on each shipped SLA
template) with two users each, services and contracts. Idempotent: running it again changes
nothing (existing rows, passwords included, are left as they are)."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from contracts.models import SLA, Contract, CreditTier, Organisation, Service
from contracts.services import sla_copy
from portal.core.roles import CustomerRole, StaffRole, role_group_name
from portal.core.staff_access import staff_role_assign
from portal.models import User
from tickets.models import CannedReply

DEMO_PASSWORD = "sla-demo-2026"

STAFF = [
    # email, name, role, phone
    ("sam@vendor.example", "Sam Support", StaffRole.SUPPORT_AGENT, "+254 728 999 222"),
    ("lena@vendor.example", "Lena Lead", StaffRole.SUPPORT_LEAD, "+254 728 999 222"),
    ("ayo@vendor.example", "Ayo Account-Manager", StaffRole.ACCOUNT_MANAGER, "+254 700 100 300"),
    ("cleo@vendor.example", "Cleo Cloud-Solutions", StaffRole.CLOUD_SOLUTIONS_MANAGER, "+254 700 100 400"),
    ("sec@vendor.example", "Sol Security", StaffRole.SECURITY, ""),
]
ADMIN = ("admin@vendor.example", "Ada Admin")
STAFF_TZ = "Africa/Nairobi"  # the vendor's staff work in Nairobi: the admin shows and takes times in it

# Canned replies (tickets.canned): the support agents' team's, which Lena keeps, and one of Sam's own.
CANNED = [
    # team (a role) or None for Sam's own, name, body
    (StaffRole.SUPPORT_AGENT, "We are on it",
     "Dear {{ customer_name }},\n\nThank you: we are working on {{ ticket_number }} and will answer by "
     "{{ first_response_due }} ({{ timezone }} time) at the latest. Should it become more urgent, reach "
     "{{ escalation_contact }}.\n\nKind regards,\n{{ agent_name }}"),
    (StaffRole.SUPPORT_AGENT, "Logs, please",
     "Dear {{ customer_name }},\n\nTo find the cause of {{ ticket_number }}, please attach the backup agent's log "
     "file to this ticket.\n\n{{ agent_name }}"),
    (None, "Resolved, please confirm",
     "Dear {{ customer_name }},\n\nWe believe {{ ticket_number }} is resolved. If anything is still wrong, "
     "please reply to this email.\n\n{{ agent_name }}"),
]  # fmt: skip

SERVICES = [
    ("Cloud Backup", "cloud-backup", "Kaluari Cloud Backup: agents, backup jobs and restores."),
    ("AI Assistant", "ai-assistant", "Klart AI: autonomous AI services integrated with company data and tools."),
]

ORGANISATIONS = [
    {
        "name": "Acme Savings", "slug": "acme",
        "users": [("alice@acme.example", "Alice Achieng", CustomerRole.ADMIN), ("bob@acme.example", "Bob Barasa", CustomerRole.MEMBER)],
        "contract": {"reference": "KAL-0001", "name": "Cloud Backup for Acme Savings", "template": "kaluari-cloud-backup",
                     "services": ["cloud-backup"], "amount": Decimal("150000"), "currency": "KES", "starts_on": date(2026, 1, 1)},
    },
    {
        "name": "Globex Retail", "slug": "globex",
        "users": [("charlie@globex.example", "Charlie Carlsson", CustomerRole.ADMIN), ("dana@globex.example", "Dana Dahl", CustomerRole.MEMBER)],
        "contract": {"reference": "KLA-0001", "name": "AI Assistant for Globex Retail", "template": "klart-ai",
                     "services": ["ai-assistant"], "amount": Decimal("25000"), "currency": "SEK", "starts_on": date(2026, 1, 1),
                     # Klart's credit tiers are set per contract: this contract gets its own copy of the terms.
                     "own_sla": "Klart AI SLA for Globex Retail",
                     "tiers": [(Decimal("99.0"), True, Decimal("99.9"), False, Decimal("10")),
                               (Decimal("95.0"), True, Decimal("99.0"), False, Decimal("25")),
                               (None, True, Decimal("95.0"), False, Decimal("50"))]},
    },
]  # fmt: skip


def _user(email, **fields) -> User:
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User(email=email, **fields)
        user.set_password(DEMO_PASSWORD)
        user.save()
    return user


@transaction.atomic
def seed_demo() -> dict:
    staff = {
        role: _user(email, name=name, staff_role=role, phone=phone, is_staff=True, timezone=STAFF_TZ)
        for email, name, role, phone in STAFF
    }
    # Each staff member has their role (its group's permissions) and no more: only the admin is a
    # superuser (demo data from before roles were groups made them all superusers: undone).
    for role, user in staff.items():
        staff_role_assign(user=user, role=role, superuser=False)
    _user(ADMIN[0], name=ADMIN[1], is_staff=True, is_superuser=True, timezone=STAFF_TZ)
    now = timezone.now()
    for role, name, body in CANNED:
        team = Group.objects.get(name=role_group_name(role)) if role else None
        owner = None if role else staff[StaffRole.SUPPORT_AGENT]
        CannedReply.objects.get_or_create(
            name=name, team=team, owner=owner, defaults={"body": body, "created_at": now, "updated_at": now}
        )
    services = {}
    for name, slug, description in SERVICES:
        services[slug], _ = Service.objects.get_or_create(
            slug=slug, defaults={"name": name, "description": description}
        )

    for spec in ORGANISATIONS:
        org, _ = Organisation.objects.get_or_create(
            slug=spec["slug"],
            defaults={
                "name": spec["name"], "account_manager": staff[StaffRole.ACCOUNT_MANAGER],
                "solutions_manager": staff[StaffRole.CLOUD_SOLUTIONS_MANAGER],
            },
        )  # fmt: skip
        users = [_user(email, name=name, organisation=org, customer_role=role) for email, name, role in spec["users"]]
        c = spec["contract"]
        if Contract.objects.filter(reference=c["reference"]).exists():
            continue
        sla = SLA.objects.get(template_key=c["template"])
        if "own_sla" in c:
            sla = SLA.objects.filter(name=c["own_sla"]).first() or _own_sla(sla, c)
        contract = Contract.objects.create(
            organisation=org, reference=c["reference"], name=c["name"], sla=sla, starts_on=c["starts_on"],
            monthly_invoice_amount=c["amount"], currency=c["currency"],
        )  # fmt: skip
        contract.services.set([services[s] for s in c["services"]])
        # The admins (Alice, Charlie) are the notification contacts; Alice and Bob (Charlie and Dana)
        # may all open tickets: Alice, an admin, can take Bob's right away.
        contract.contacts.set([u for u in users if u.customer_role == CustomerRole.ADMIN])
        contract.support_contacts.set(users)
    return {"staff": staff}


def _own_sla(template: SLA, c: dict) -> SLA:
    tz = ZoneInfo(template.versions.get(number=1).timezone)
    sla = sla_copy(source=template, name=c["own_sla"], effective_from=datetime(2026, 1, 1, tzinfo=tz))
    version = sla.versions.get()
    CreditTier.objects.bulk_create(
        CreditTier(version=version, lower=lo, lower_inclusive=li, upper=hi, upper_inclusive=hi_inc, percent=pct)
        for lo, li, hi, hi_inc, pct in c["tiers"]
    )
    return sla
