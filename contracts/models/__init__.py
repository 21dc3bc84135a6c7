"""Organisations, services, working calendars, versioned SLA terms and contracts (terms.py), and
the downtime evidence: maintenance windows and outages (downtime.py).

Models hold data and derive values from their own row; state changes live in services.py,
reads in selectors.py, rules in the pure modules of portal/domain."""

from .downtime import MaintenanceNotice, MaintenanceWindow, Outage, OutageCauseChange, OutageUpdate
from .incidents import Incident, IncidentStatus, IncidentUpdate
from .people import Invitation
from .subscribers import StatusSubscriber, SubscriptionRequest
from .terms import (
    PERCENT,
    SLA,
    TERMS_ROWS,
    ClosedDate,
    Contract,
    CreditTier,
    EscalationDwell,
    EscalationLevel,
    Organisation,
    PriorityTerm,
    PublishedTermsError,
    Service,
    SLAVersion,
    TermsRevision,
    WorkingCalendar,
    WorkingCalendarQuerySet,
    WorkingHours,
    refuse_frozen_calendar,
    refuse_published_delete,
    refuse_published_version,
    terms_row_versions,
    validate_exclusion_causes,
    validate_positive_duration,
    validate_timezone,
)

__all__ = [
    "StatusSubscriber",
    "SubscriptionRequest",
    "ClosedDate",
    "Contract",
    "CreditTier",
    "EscalationDwell",
    "EscalationLevel",
    "Incident",
    "IncidentStatus",
    "IncidentUpdate",
    "Invitation",
    "MaintenanceNotice",
    "MaintenanceWindow",
    "Organisation",
    "Outage",
    "OutageCauseChange",
    "OutageUpdate",
    "PERCENT",
    "PriorityTerm",
    "PublishedTermsError",
    "SLA",
    "SLAVersion",
    "Service",
    "TERMS_ROWS",
    "TermsRevision",
    "WorkingCalendar",
    "WorkingCalendarQuerySet",
    "WorkingHours",
    "refuse_frozen_calendar",
    "refuse_published_delete",
    "refuse_published_version",
    "terms_row_versions",
    "validate_exclusion_causes",
    "validate_positive_duration",
    "validate_timezone",
]
