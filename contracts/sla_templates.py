"""The two SLA templates the product ships, read from the Klart AI and Kaluari Cloud Backup SLA
documents as decided in PRODUCT.md. Carried as data here (never read from outside the project)
and installed idempotently after every migrate, so a fresh database always has them.

Decisions where the documents are silent are listed in docs/decisions.md."""

from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from .choices import Cause, Channel, CreditKind, Priority

H = lambda n: timedelta(hours=n)  # noqa: E731
M = lambda n: timedelta(minutes=n)  # noqa: E731
WEEKDAYS = range(5)

CALENDARS = {
    "nairobi-24x7": {"name": "24x7 (Africa/Nairobi)", "timezone": "Africa/Nairobi", "always_open": True},
    "nairobi-business": {
        "name": "Kenya business hours (Mon-Fri 08:00-17:00, Africa/Nairobi)",
        "timezone": "Africa/Nairobi",
        "holiday_country": "KE",
        "hours": [(d, time(8), time(17)) for d in WEEKDAYS],
    },
    "stockholm-business": {
        "name": "Klart business hours (Mon-Fri 08:00-17:00, Europe/Stockholm)",
        "timezone": "Europe/Stockholm",
        "holiday_country": "SE",
        "hours": [(d, time(8), time(17)) for d in WEEKDAYS],
    },
    "stockholm-weekdays": {
        "name": "Klart weekdays (Mon-Fri all day, Europe/Stockholm)",
        "timezone": "Europe/Stockholm",
        "holiday_country": "SE",
        "hours": [(d, time(0), time(0)) for d in WEEKDAYS],  # 00:00-24:00
    },
}

KALUARI_EXCLUSIONS = [
    Cause.MISUSE, Cause.UNAUTHORISED_CHANGE, Cause.UNSUPPORTED_EQUIPMENT, Cause.BEYOND_CONTROL,
    Cause.THIRD_PARTY, Cause.SUSPENSION, Cause.EXTERNAL_NETWORK, Cause.SCHEDULED_MAINTENANCE,
    Cause.FORCE_MAJEURE, Cause.TARGETED_ATTACK, Cause.DDOS, Cause.REQUEST_BURST, Cause.FAIR_USAGE,
]  # fmt: skip

# Klart's document names no address: the one its template ships with (staff change it in a new version).
KLART_SUPPORT = "support@klart.ai"

TEMPLATES = {
    "kaluari-cloud-backup": {
        "name": "Kaluari Cloud Backup SLA",
        "vendor": "Kaluari Limited",
        "summary": "99.8% monthly uptime; P1-P4 support with a four-level escalation ladder; refunds of the "
        "month's invoice below the guarantee, claimed within 30 days of month end.",
        "version": {
            "effective_from": datetime(2025, 1, 1, tzinfo=ZoneInfo("Africa/Nairobi")),
            "uptime_guarantee": Decimal("99.8"),
            "timezone": "Africa/Nairobi",
            "business_calendar": "nairobi-business",
            "credit_kind": CreditKind.REFUND,
            "claim_window_days": 30,
            "maintenance_notice": H(48),
            "offpeak_start": time(22),
            "offpeak_end": time(6),
            "maintenance_annual_cap": H(12),
            "escalation_ack_time": None,
            "escalation_ack_calendar": None,
            "exclusion_causes": [c.value for c in KALUARI_EXCLUSIONS],
            "email_priority": Priority.P3,
        },
        "priorities": [
            # priority, meaning, calendar, first response, resolution target, resolution limit
            (
                Priority.P1,
                "Production incident: severely impacts your ability to push, process or trigger "
                "backup within 12 hours.",
                "nairobi-24x7",
                M(15),
                H(1),
                H(1),
            ),
            (
                Priority.P2,
                "Major incident: your backup agent cannot complete a backup job.",
                "nairobi-24x7",
                H(1),
                H(4),
                H(4),
            ),
            (
                Priority.P3,
                "Medium-to-low impact: affects only the restore process.",
                "nairobi-business",
                H(4),
                H(12),
                H(24),
            ),
            (
                Priority.P4,
                "General error or minor interruption caused by network connectivity.",
                "nairobi-business",
                H(8),
                H(24),
                H(48),
            ),
        ],  # fmt: skip
        "levels": [
            (1, Channel.EMAIL, "Email support with a description of the issue", "support@kaluari.com", "support_agent"),
            (2, Channel.PHONE, "Call the support line", "+254 728 999 222", "support_lead"),
            (3, Channel.PHONE, "Call your Account Manager", "", "account_manager"),
            (4, Channel.PHONE, "Call the Cloud Solutions Manager", "", "cloud_solutions_manager"),
        ],
        # (level, {priority: dwell}) – PRODUCT.md's reading of the misaligned seed table.
        "dwells": [
            (1, {Priority.P1: M(15), Priority.P2: M(15), Priority.P3: M(30), Priority.P4: H(1)}),
            (2, {Priority.P1: H(1), Priority.P2: H(2), Priority.P3: H(4), Priority.P4: H(12)}),
            (3, {Priority.P1: H(1), Priority.P2: H(2), Priority.P3: H(4), Priority.P4: H(12)}),
            (4, {Priority.P1: H(4), Priority.P2: H(4), Priority.P3: H(12), Priority.P4: H(36)}),
        ],
        # As written (1.5.1-1.5.3): "between" includes both bounds, "less than" excludes.
        "tiers": [
            (Decimal("98.0"), True, Decimal("99.0"), True, Decimal("10")),
            (Decimal("95.0"), True, Decimal("98.0"), True, Decimal("25")),
            (None, True, Decimal("90.0"), False, Decimal("50")),
        ],
    },
    "klart-ai": {
        "name": "Klart AI SLA",
        "vendor": "Klart AI",
        "summary": "99.9% uptime; any request or escalation acknowledged within 4 business hours and resolved "
        "within 24 hours, Monday to Friday excluding public holidays; service credits on the account "
        "(tiers set per contract); 48 hours' notice of maintenance, at most 12 hours a year.",
        "version": {
            "effective_from": datetime(2024, 11, 3, tzinfo=ZoneInfo("Europe/Stockholm")),
            "uptime_guarantee": Decimal("99.9"),
            "timezone": "Europe/Stockholm",
            "business_calendar": "stockholm-business",
            "credit_kind": CreditKind.ACCOUNT_CREDIT,
            "claim_window_days": 30,
            "maintenance_notice": H(48),
            "offpeak_start": time(22),
            "offpeak_end": time(6),
            "maintenance_annual_cap": H(12),
            "escalation_ack_time": H(4),
            "escalation_ack_calendar": "stockholm-business",
            "exclusion_causes": [Cause.CUSTOMER_MODIFICATION.value, Cause.FORCE_MAJEURE.value],
        },
        "priorities": [
            (
                Priority.STANDARD,
                "Any service request: acknowledged within 4 business hours, resolved within "
                "24 hours (Monday to Friday, excluding public holidays).",
                "stockholm-business",
                H(4),
                H(24),
                H(24),
                "stockholm-weekdays",
            ),
        ],  # fmt: skip
        # Level 1 is email (PRODUCT.md, "Support channels": Klart's template gets an address); no
        # dwell, so nothing escalates from it.
        "levels": [
            (1, Channel.EMAIL, "Email support with a description of the request", KLART_SUPPORT, "support_agent")
        ],
        "dwells": [],
        "tiers": [],  # "set per contract"
    },
}


def install(models) -> list:
    """Create the shipped templates that are missing, with the shipped calendars they use; leave
    existing ones (and any staff edits to them) alone. `models` maps model names to classes, so the same code serves the
    post-migrate hook and tests. Returns the SLAs it created."""
    SLA, SLAVersion = models["SLA"], models["SLAVersion"]
    created_slas = []
    for key, spec in TEMPLATES.items():
        if SLA.objects.filter(template_key=key).exists():
            continue
        # Calendars are looked up by name, the only key they have: only a template being installed
        # touches them, so a calendar staff renamed is not shipped again beside it on every migrate.
        calendars = install_calendars(models, calendar_keys(spec))
        sla = SLA.objects.create(
            name=spec["name"], vendor=spec["vendor"], is_template=True, template_key=key, summary=spec["summary"]
        )
        v = dict(spec["version"])
        v["business_calendar"] = calendars[v["business_calendar"]]
        v["escalation_ack_calendar"] = calendars.get(v["escalation_ack_calendar"])
        version = SLAVersion.objects.create(sla=sla, number=1, published_at=v["effective_from"], **v)
        install_terms(models, version, spec, calendars)
        created_slas.append(sla)
    return created_slas


def calendar_keys(spec) -> set[str]:
    """The CALENDARS a template's terms point at."""
    v = spec["version"]
    keys = {v["business_calendar"], v["escalation_ack_calendar"]}
    keys |= {row[i] for row in spec["priorities"] for i in (2, 6) if i < len(row)}
    return {k for k in keys if k is not None}


def install_calendars(models, keys) -> dict:
    """The shipped calendars of `keys`, created where missing (an existing one is left as it is)."""
    WorkingCalendar, WorkingHours = models["WorkingCalendar"], models["WorkingHours"]
    calendars = {}
    for key in sorted(keys):
        spec = CALENDARS[key]
        cal, created = WorkingCalendar.objects.get_or_create(
            name=spec["name"],
            defaults={
                "timezone": spec["timezone"],
                "always_open": spec.get("always_open", False),
                "holiday_country": spec.get("holiday_country", ""),
            },
        )
        if created:
            WorkingHours.objects.bulk_create(
                WorkingHours(calendar=cal, weekday=d, opens=o, closes=c) for d, o, c in spec.get("hours", [])
            )
        calendars[key] = cal
    return calendars


def install_terms(models, version, spec, calendars) -> None:
    models["PriorityTerm"].objects.bulk_create(
        models["PriorityTerm"](
            version=version, priority=row[0], meaning=row[1], calendar=calendars[row[2]],
            first_response=row[3], resolution_target=row[4], resolution_limit=row[5],
            resolution_calendar=calendars[row[6]] if len(row) > 6 else None,
        )
        for row in spec["priorities"]
    )  # fmt: skip
    models["EscalationLevel"].objects.bulk_create(
        models["EscalationLevel"](
            version=version, level=lvl, channel=ch, instruction=ins, contact=contact, staff_role=role
        )
        for lvl, ch, ins, contact, role in spec["levels"]
    )
    models["EscalationDwell"].objects.bulk_create(
        models["EscalationDwell"](version=version, level=lvl, priority=pri, dwell=dwell)
        for lvl, per_priority in spec["dwells"]
        for pri, dwell in per_priority.items()
    )
    models["CreditTier"].objects.bulk_create(
        models["CreditTier"](
            version=version, lower=lo, lower_inclusive=lo_inc, upper=hi, upper_inclusive=hi_inc, percent=pct
        )
        for lo, lo_inc, hi, hi_inc, pct in spec["tiers"]
    )


MODEL_NAMES = ("WorkingCalendar", "WorkingHours", "SLA", "SLAVersion", "PriorityTerm", "EscalationLevel",
               "EscalationDwell", "CreditTier")  # fmt: skip


def current_models() -> dict:
    from django.apps import apps

    return {name: apps.get_model("contracts", name) for name in MODEL_NAMES}


def install_after_migrate(sender, using="default", plan=None, **kwargs):
    """After a migration to the head only: not after one that unapplied migrations (`migrate
    contracts zero` or back to an older one) nor while the code's models have tables or columns the
    database lacks (portal.core.migrate_hooks): install reads the code's models."""
    from django.db import transaction

    from portal.core.migrate_hooks import models_migrated

    from .terms_revision import bump

    models = current_models()
    if not models_migrated(plan, models.values(), using):
        return
    with transaction.atomic(using=using):
        install(models)
        bump()  # installed in bulk: no signal said so
