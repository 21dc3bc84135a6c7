from django.db import models


class Priority(models.TextChoices):
    P1 = "P1", "P1 – production incident"
    P2 = "P2", "P2 – major incident"
    P3 = "P3", "P3 – medium-to-low impact"
    P4 = "P4", "P4 – general error"
    # Klart AI has one priority-free pair of targets.
    STANDARD = "STD", "Standard"


def priority_name(code: str) -> str:
    """A priority in a line of text as its SLA calls it: Kaluari numbers them (P1), Klart's single
    one is "Standard" (its code STD is the database's, never a person's)."""
    return Priority(code).label if code == Priority.STANDARD else code


class Cause(models.TextChoices):
    """Why a service was down. Every cause but UNPLANNED may be excluded by a contract."""

    UNPLANNED = "unplanned", "Unplanned outage"
    MISUSE = "misuse", "Use not as recommended by the company"
    UNAUTHORISED_CHANGE = "unauthorised_change", "Unauthorised changes to configuration or set-up"
    CUSTOMER_MODIFICATION = "customer_modification", "Customer modification of the service or its configuration"
    UNSUPPORTED_EQUIPMENT = "unsupported_equipment", "Unsupported equipment, software or services"
    BEYOND_CONTROL = "beyond_control", "Beyond the company's control"
    THIRD_PARTY = "third_party", "Third-party providers"
    SUSPENSION = "suspension", "Suspension or termination under the Terms of Use"
    EXTERNAL_NETWORK = "external_network", "Network problems external to the company's systems"
    SCHEDULED_MAINTENANCE = "scheduled_maintenance", "Scheduled downtime (within the maintenance rules)"
    FORCE_MAJEURE = "force_majeure", "Force majeure"
    TARGETED_ATTACK = "targeted_attack", "Targeted attack"
    DDOS = "ddos", "Distributed denial of service attack"
    REQUEST_BURST = "request_burst", "Burst of requests at least 5x the known volume"
    FAIR_USAGE = "fair_usage", "Violation of fair or projected usage"


class CreditKind(models.TextChoices):
    ACCOUNT_CREDIT = "account_credit", "Service credit on the account"
    REFUND = "refund", "Refund of the month's invoice"


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    PHONE = "phone", "Phone"


class Impact(models.TextChoices):
    """What an outage does to one of its services (PRODUCT.md, "Incidents and notices"). Major is
    down for every contract on the service; partial only for the contracts staff scope the outage
    to; degraded for none (Kaluari counts the minutes a service was unavailable)."""

    DEGRADED = "degraded", "Degraded performance"
    PARTIAL = "partial", "Partial outage"
    MAJOR = "major", "Major outage"


IMPACT_ORDER = [Impact.DEGRADED, Impact.PARTIAL, Impact.MAJOR]  # least to most severe
# Whom an impact on a service is down for (the one rule: credits.closing.outage_spans for uptime, the
# public status page's bars): everyone on the service, or only the contracts staff scope it to.
DOWN_FOR_EVERYONE = frozenset({Impact.MAJOR})
DOWN_FOR_SCOPED = frozenset({Impact.MAJOR, Impact.PARTIAL})


def worst_impact(impacts) -> str:
    """The most severe of `impacts` (major when there are none: an outage is down unless told)."""
    found = [IMPACT_ORDER.index(i) for i in impacts]
    return IMPACT_ORDER[max(found)] if found else Impact.MAJOR
