"""Organisations, services, working calendars, versioned SLA terms and contracts.

Models hold data and derive values from their own row; state changes live in services.py,
reads in selectors.py, rules in the pure modules of portal/domain."""

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from portal.core.roles import StaffRole
from portal.core.validators import validate_timezone as validate_ground_timezone
from portal.domain.formats import duration

from ..choices import Cause, Channel, CreditKind, Priority

PERCENT = [MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))]


def validate_timezone(value: str) -> None:
    """portal.core.validators' rule, under the name the migrations of these fields refer to."""
    validate_ground_timezone(value)


def validate_positive_duration(value: timedelta) -> None:
    if value is not None and value < timedelta(0):
        raise ValidationError("A duration cannot be negative.")


# The longest duration a term may hold (a clock, a dwell, the maintenance notice, the annual cap) and
# the longest claim window: a year. Longer is a typing mistake, not a promise; 10,000 years was saved
# and broke every ticket filed under it (its deadline falls after year 9999), 999,999,999 days did not
# fit the database (a 500).
LONGEST_TERM = timedelta(days=365)
LONGEST_CLAIM_WINDOW_DAYS = 365


def validate_within_a_year(value: timedelta) -> None:
    if value is not None and value > LONGEST_TERM:
        raise ValidationError(
            f"At most a year ({LONGEST_TERM.days} days, e.g. 365 00:00:00); a longer duration cannot be a promise."
        )


DURATION_BOUNDS = [validate_positive_duration, validate_within_a_year]


def validate_exclusion_causes(value) -> None:
    if not isinstance(value, list) or any(c not in Cause.values or c == Cause.UNPLANNED for c in value):
        raise ValidationError("Exclusion causes must be a list of known causes (not 'unplanned').")


class PublishedTermsError(PermissionError):
    """A published SLA version, a row of its terms, or the name, working hours or timezone of a
    calendar a published version uses, was to be changed or deleted. Published terms never change behind the
    customers' backs: a change is a new draft version, published with a summary and an email."""


def refuse_published_version(version_ids, refused: str = "its terms cannot change") -> None:
    """PublishedTermsError when any of these versions is published (read from the database, not
    from an instance that may be stale)."""
    ids = {pk for pk in version_ids if pk is not None}
    published = SLAVersion.objects.filter(pk__in=ids, published_at__isnull=False).order_by("number").first()
    if published is not None:
        raise PublishedTermsError(f"{published} is published: {refused}. Make a new draft version.")


def refuse_frozen_calendar(calendar_ids, what: str = "its working hours") -> None:
    """PublishedTermsError when a published version uses any of these calendars."""
    ids = {pk for pk in calendar_ids if pk is not None}
    frozen = WorkingCalendar.objects.filter(pk__in=ids).in_published_terms().first() if ids else None
    if frozen is not None:
        raise PublishedTermsError(
            f"“{frozen}” is a calendar of published SLA terms: {what} cannot change (its closed dates can). "
            "Make a new calendar and use it in a new draft version."
        )


class Organisation(models.Model):
    """A customer of the vendor."""

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(unique=True)
    account_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        limit_choices_to={"is_staff": True},
        help_text="Escalation level 3 for this customer.",
    )
    solutions_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        limit_choices_to={"is_staff": True},
        help_text="Cloud solutions manager: escalation level 4.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # The secret of the organisation's iCal feed of maintenance windows; revoked by replacing it.
    ical_token = models.CharField(max_length=64, blank=True, editable=False)
    # Its details as its customer admins keep them (Klart: "maintain up-to-date contact information").
    address = models.TextField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    # When a customer admin last confirmed that its people and contacts are up to date, and the
    # quarter ("2026Q4") whose review request was last sent (contracts.people.review's sweep).
    contacts_reviewed_at = models.DateTimeField(null=True, blank=True)
    contacts_reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    review_requested_for = models.CharField(max_length=6, blank=True, editable=False)
    # The contract an email to support files on when several of the organisation's contracts have
    # the address it was sent to, and the one the portal's ticket form proposes; set by staff here
    # and by its customer admins on the contract's contacts page (contracts.people.support).
    default_contract = models.ForeignKey(
        "Contract",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Where an email to a support address several of its contracts share files a ticket, "
        "and the contract the ticket form proposes.",
    )

    # What the email templates read of an organisation, frozen with each email (portal.core.snapshot).
    EMAIL_FIELDS = ("name",)

    class Meta:
        ordering = ["name"]
        permissions = [("manage_people", "Can manage a customer's people: invite, change roles, deactivate")]

    def __str__(self):
        return self.name

    def clean(self):
        if self.default_contract_id and self.default_contract.organisation_id != self.pk:
            raise ValidationError({"default_contract": "Choose one of the organisation's own contracts."})


class Service(models.Model):
    """Something the vendor offers, e.g. "Cloud Backup"."""

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(unique=True)
    description = models.TextField(blank=True)
    # Alertmanager authenticates per service with a bearer token; only its SHA-256 is stored.
    webhook_token_hash = models.CharField(max_length=64, blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        permissions = [("rotate_webhook_token", "Can rotate a service's Alertmanager webhook token")]

    def __str__(self):
        return self.name


class WorkingCalendarQuerySet(models.QuerySet):
    def in_published_terms(self):
        """The calendars a published version uses: its business hours, its acknowledgement clock or
        a clock of one of its priorities. Their hours and timezone are frozen."""
        versions = SLAVersion.objects.filter(published_at__isnull=False)
        terms = PriorityTerm.objects.filter(version__published_at__isnull=False)
        return self.filter(
            Q(pk__in=versions.values("business_calendar"))
            | Q(pk__in=versions.exclude(escalation_ack_calendar=None).values("escalation_ack_calendar"))
            | Q(pk__in=terms.values("calendar"))
            | Q(pk__in=terms.exclude(resolution_calendar=None).values("resolution_calendar"))
        )


class WorkingCalendar(models.Model):
    """Timezone + weekly working hours + public holidays (the `holidays` package) + extra closed
    dates. 24x7 is a calendar too. contracts.calendars turns a row into the pure clock
    (portal.domain.working_time.WorkingTime)."""

    name = models.CharField(max_length=200, unique=True)
    timezone = models.CharField(max_length=64, validators=[validate_timezone])
    always_open = models.BooleanField(default=False, help_text="24x7: every instant is working time.")
    holiday_country = models.CharField(max_length=2, blank=True, help_text="ISO 3166 code, e.g. KE")
    holiday_subdivision = models.CharField(max_length=10, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = WorkingCalendarQuerySet.as_manager()

    # What makes the clock, frozen while a published version uses the calendar.
    CLOCK_FIELDS = ("timezone", "always_open", "holiday_country", "holiday_subdivision")
    # Frozen with it: the name, which customers read as a priority's support availability
    # ("Mon-Fri 08:00-17:00") in the published terms and which "what changed" compares.
    FROZEN_FIELDS = ("name", *CLOCK_FIELDS)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        if self.pk is not None:
            stored = WorkingCalendar.objects.filter(pk=self.pk).values(*self.FROZEN_FIELDS).first()
            if stored and any(stored[f] != getattr(self, f) for f in self.FROZEN_FIELDS):
                refuse_frozen_calendar([self.pk], "its name, timezone and public holidays")
        super().save(*args, **kwargs)

    def clean(self):
        if self.holiday_subdivision and not self.holiday_country:
            raise ValidationError({"holiday_subdivision": "A subdivision needs a country."})
        if self.holiday_country:
            import holidays

            try:
                holidays.country_holidays(self.holiday_country, subdiv=self.holiday_subdivision or None)
            except NotImplementedError:
                raise ValidationError(
                    {"holiday_country": "The holidays package does not know this country/subdivision."}
                ) from None


class WorkingHours(models.Model):
    class Weekday(models.IntegerChoices):
        MONDAY = 0
        TUESDAY = 1
        WEDNESDAY = 2
        THURSDAY = 3
        FRIDAY = 4
        SATURDAY = 5
        SUNDAY = 6

    calendar = models.ForeignKey(WorkingCalendar, on_delete=models.CASCADE, related_name="hours")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    opens = models.TimeField()
    closes = models.TimeField(help_text="00:00 means the end of the day (24:00).")

    class Meta:
        ordering = ["weekday", "opens"]
        verbose_name_plural = "working hours"

    def __str__(self):
        return f"{self.get_weekday_display()} {self.opens:%H:%M}-{self.closes:%H:%M}"

    def save(self, *args, **kwargs):
        stored = WorkingHours.objects.filter(pk=self.pk).values_list("calendar_id", flat=True) if self.pk else []
        refuse_frozen_calendar([self.calendar_id, *stored])
        super().save(*args, **kwargs)

    def clean(self):
        if self.closes is not None and self.opens is not None:
            if self.closes.hour == self.closes.minute == 0:
                return
            if self.closes <= self.opens:
                raise ValidationError({"closes": "Closing time must be after opening time (00:00 means midnight)."})


class ClosedDate(models.Model):
    calendar = models.ForeignKey(WorkingCalendar, on_delete=models.CASCADE, related_name="closed_dates")
    date = models.DateField()
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["date"]
        constraints = [models.UniqueConstraint(fields=["calendar", "date"], name="closed_date_once")]

    def __str__(self):
        return f"{self.date} {self.reason}".strip()


class TermsRevision(models.Model):
    """One row whose token changes, in the same transaction, with every change to SLA terms or
    working calendars (contracts.terms_revision). Processes keep compiled terms while it holds."""

    token = models.UUIDField()

    def __str__(self):
        return str(self.token)


class SLA(models.Model):
    """A named agreement whose terms are versioned. A template is one the vendor copies for new
    contracts; a contract may also point at a template directly."""

    name = models.CharField(max_length=200, unique=True)
    vendor = models.CharField(max_length=200, help_text="Who makes the promise, e.g. Kaluari Limited.")
    is_template = models.BooleanField(default=False)
    template_key = models.SlugField(blank=True, help_text="Set on the templates the product ships.")
    summary = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "SLA"
        verbose_name_plural = "SLAs"

    def __str__(self):
        # "(template)" is for staff choosing terms in the admin; customers read the name alone.
        return f"{self.name} (template)" if self.is_template else self.name


class SLAVersion(models.Model):
    """The terms of an SLA from an effective moment on. Tickets, maintenance and credits are
    judged by the published version in force at the time of the event."""

    sla = models.ForeignKey(SLA, on_delete=models.CASCADE, related_name="versions", verbose_name="SLA")
    number = models.PositiveIntegerField()
    effective_from = models.DateTimeField()
    published_at = models.DateTimeField(null=True, blank=True, editable=False)
    change_summary = models.TextField(blank=True, help_text="Told to the customers' contacts when published.")

    uptime_guarantee = models.DecimalField(max_digits=6, decimal_places=3, validators=PERCENT)
    timezone = models.CharField(max_length=64, validators=[validate_timezone])
    business_calendar = models.ForeignKey(
        WorkingCalendar, on_delete=models.PROTECT, related_name="+", help_text="Business hours shown to customers."
    )
    credit_kind = models.CharField(max_length=20, choices=CreditKind.choices)
    claim_window_days = models.PositiveSmallIntegerField(
        default=30,
        validators=[
            MaxValueValidator(
                LONGEST_CLAIM_WINDOW_DAYS, f"At most {LONGEST_CLAIM_WINDOW_DAYS} days after the month's end."
            )
        ],
    )

    maintenance_notice = models.DurationField(default=timedelta(hours=48), validators=DURATION_BOUNDS)
    offpeak_start = models.TimeField(help_text="Local time; the window may cross midnight (22:00-06:00).")
    offpeak_end = models.TimeField()
    maintenance_annual_cap = models.DurationField(default=timedelta(hours=12), validators=DURATION_BOUNDS)

    # Klart: an escalation request is acknowledged within 4 working hours. Blank: the priority's
    # first-response time applies.
    escalation_ack_time = models.DurationField(null=True, blank=True, validators=DURATION_BOUNDS)
    escalation_ack_calendar = models.ForeignKey(
        WorkingCalendar, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    exclusion_causes = models.JSONField(default=list, blank=True, validators=[validate_exclusion_causes])
    # A ticket that comes in by email (level 1 of the ladder) gets this priority unless its subject
    # names one ([P1]..[P4]). Blank: the version's least urgent priority.
    email_priority = models.CharField(
        max_length=3, choices=Priority.choices, blank=True, help_text="Priority of a ticket filed by email."
    )

    # What the email templates read of a version, frozen with each email (portal.core.snapshot).
    EMAIL_FIELDS = ("sla", "number", "effective_from", "published_at", "change_summary", "timezone")

    class Meta:
        ordering = ["sla", "-effective_from"]
        verbose_name = "SLA version"
        constraints = [
            models.UniqueConstraint(fields=["sla", "number"], name="sla_version_number_once"),
            models.CheckConstraint(
                condition=Q(uptime_guarantee__gte=0) & Q(uptime_guarantee__lte=100), name="sla_guarantee_percent"
            ),
        ]
        indexes = [models.Index(fields=["sla", "effective_from"])]
        # Publishing emails every contact and puts the terms in force: superusers only, unless the
        # matrix gives it to a role (docs/decisions.md, "Staff roles are permissions").
        permissions = [("publish_slaversion", "Can publish an SLA version")]

    def __str__(self):
        return f"{self.sla} v{self.number}"

    def save(self, *args, **kwargs):
        # A version created published (a template, a contract's own copy) is written once; a
        # draft is saved until it is published (contracts.services.sla_version_publish), never after.
        if self.pk is not None:
            refuse_published_version([self.pk])
        super().save(*args, **kwargs)

    @property
    def is_published(self) -> bool:
        return self.published_at is not None

    def clean(self):
        if self.escalation_ack_time and not self.escalation_ack_calendar_id:
            raise ValidationError({"escalation_ack_calendar": "An acknowledgement time needs a calendar."})


def terms_row_versions(row) -> list:
    """The version a row of terms belongs to, and the one it belonged to when it was read."""
    if row.pk is None:
        return [row.version_id]
    return [row.version_id, *type(row).objects.filter(pk=row.pk).values_list("version_id", flat=True)]


class TermsRow(models.Model):
    """A row of an SLA version's terms (a priority, a ladder rung, a dwell, a credit tier): refused
    once its version is published (changes go through a new draft)."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        refuse_published_version(terms_row_versions(self))
        super().save(*args, **kwargs)


class PriorityTerm(TermsRow):
    """One row of the priority matrix: what the priority means and its clocks."""

    version = models.ForeignKey(SLAVersion, on_delete=models.CASCADE, related_name="priorities")
    priority = models.CharField(max_length=3, choices=Priority.choices)
    meaning = models.TextField(help_text="Shown to the customer beside the choice when filing.")
    calendar = models.ForeignKey(
        WorkingCalendar,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The clock of first response and escalation dwell (24x7 or business hours).",
    )
    resolution_calendar = models.ForeignKey(
        WorkingCalendar,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Blank: the same calendar as first response.",
    )
    first_response = models.DurationField(validators=DURATION_BOUNDS)
    resolution_target = models.DurationField(validators=DURATION_BOUNDS, help_text="Passing it warns.")
    resolution_limit = models.DurationField(validators=DURATION_BOUNDS, help_text="Passing it breaches.")

    class Meta:
        ordering = ["version", "priority"]
        constraints = [models.UniqueConstraint(fields=["version", "priority"], name="priority_term_once")]

    def __str__(self):
        return f"{self.version} {self.priority}"

    @property
    def resolution_clock(self):
        return self.resolution_calendar or self.calendar


class EscalationLevel(TermsRow):
    """A rung of the escalation ladder: the channel the customer uses and who is told."""

    version = models.ForeignKey(SLAVersion, on_delete=models.CASCADE, related_name="escalation_levels")
    level = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(9)])
    channel = models.CharField(max_length=10, choices=Channel.choices)
    instruction = models.CharField(max_length=200, help_text="e.g. “Call your Account Manager”.")
    contact = models.CharField(
        max_length=200,
        blank=True,
        help_text="Email address or phone number. Blank: the staff member of the role (the organisation's own "
        "account/solutions manager where it has one).",
    )
    staff_role = models.CharField(max_length=40, choices=StaffRole.choices, help_text="Who is emailed on reaching it.")

    class Meta:
        ordering = ["version", "level"]
        constraints = [models.UniqueConstraint(fields=["version", "level"], name="escalation_level_once")]

    def __str__(self):
        return f"Level {self.level}: {self.instruction}"


class EscalationDwell(TermsRow):
    """How long a ticket of a priority stays at a level before it moves up (on the priority's clock)."""

    version = models.ForeignKey(SLAVersion, on_delete=models.CASCADE, related_name="escalation_dwells")
    level = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(9)])
    priority = models.CharField(max_length=3, choices=Priority.choices)
    dwell = models.DurationField(validators=DURATION_BOUNDS)

    class Meta:
        ordering = ["version", "level", "priority"]
        constraints = [models.UniqueConstraint(fields=["version", "level", "priority"], name="escalation_dwell_once")]

    def __str__(self):
        return f"Level {self.level} {self.priority}: {duration(self.dwell)}"


class CreditTier(TermsRow):
    """A range of monthly uptime (each bound inclusive or exclusive, or open) and its credit."""

    version = models.ForeignKey(SLAVersion, on_delete=models.CASCADE, related_name="credit_tiers")
    lower = models.DecimalField(max_digits=6, decimal_places=3, null=True, blank=True, validators=PERCENT)
    lower_inclusive = models.BooleanField(default=True)
    upper = models.DecimalField(max_digits=6, decimal_places=3, null=True, blank=True, validators=PERCENT)
    upper_inclusive = models.BooleanField(default=True)
    percent = models.DecimalField(
        max_digits=6, decimal_places=3, validators=PERCENT, help_text="Of the month's invoice."
    )

    class Meta:
        ordering = ["version", "-upper"]

    def __str__(self):
        # Not via as_tier(): the admin prints rows whose values are being refused (lower > upper).
        from portal.domain.tiers import Range

        return f"{Range(self.lower, self.upper, self.lower_inclusive, self.upper_inclusive)} → {self.percent}%"

    def clean(self):
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise ValidationError({"lower": "The lower bound is above the upper bound."})
        if self.lower is None and self.upper is None:
            raise ValidationError({"upper": "A tier needs at least one bound."})

    def as_tier(self):
        from portal.domain.tiers import Tier

        return Tier(self.lower, self.upper, self.percent, self.lower_inclusive, self.upper_inclusive)


TERMS_ROWS = (PriorityTerm, EscalationLevel, EscalationDwell, CreditTier)


def refuse_published_delete(sender, instance, **kwargs) -> None:
    """pre_delete (contracts.apps): a published version, a row of its terms, or a working hour of a
    calendar it uses is never deleted, however the delete comes (instance, queryset, cascade)."""
    if sender is SLAVersion:
        refuse_published_version([instance.pk], "it cannot be deleted")
    elif sender in TERMS_ROWS:
        refuse_published_version([instance.version_id])
    elif sender is WorkingHours:
        refuse_frozen_calendar([instance.calendar_id])


class Contract(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="contracts")
    reference = models.CharField(max_length=50, unique=True)
    name = models.CharField(max_length=200)
    services = models.ManyToManyField(Service, related_name="contracts")
    sla = models.ForeignKey(SLA, on_delete=models.PROTECT, related_name="contracts", verbose_name="SLA")
    starts_on = models.DateField()
    ends_on = models.DateField(null=True, blank=True)
    monthly_invoice_amount = models.DecimalField(max_digits=14, decimal_places=4, validators=[MinValueValidator(0)])
    currency = models.CharField(max_length=3, help_text="ISO 4217, e.g. KES, EUR, JPY")
    contacts = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="contact_for",
        help_text="Customer users who receive this contract's notifications.",
    )
    # Kaluari: "Clients shall designate one or more support contacts that are authorized to engage
    # Support Services". Only they open tickets on the contract (contracts.people.support).
    support_contacts = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="support_contact_for",
        help_text="Customer users who may open tickets on this contract (its designated support contacts).",
    )

    # What the email templates read of a contract, frozen with each email (portal.core.snapshot).
    EMAIL_FIELDS = ("organisation", "reference", "name")

    class Meta:
        ordering = ["organisation", "reference"]

    def __str__(self):
        return f"{self.reference} – {self.name}"

    def clean(self):
        if self.ends_on and self.starts_on and self.ends_on < self.starts_on:
            raise ValidationError({"ends_on": "The contract ends before it starts."})
        if self.currency and (len(self.currency) != 3 or not self.currency.isalpha()):
            raise ValidationError({"currency": "Use a three-letter ISO 4217 code."})
        self.currency = (self.currency or "").upper()
