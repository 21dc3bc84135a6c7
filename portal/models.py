"""Accounts (users log in with their email) and the one email outbox of the product."""

import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from knox.models import AuthToken

from portal.core.roles import CustomerRole, StaffRole
from portal.core.validators import validate_timezone


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create(self, email, password, **extra):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email, password=None, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **extra)

    def get_by_natural_key(self, username):
        return self.get(email__iexact=username)


class User(AbstractUser):
    """A customer (belongs to an organisation, with a customer role) or a vendor staff member
    (is_staff, with a staff role that escalation levels name as their contact)."""

    username = None
    email = models.EmailField("email address", unique=True)
    name = models.CharField(max_length=150, blank=True)
    phone = models.CharField(max_length=40, blank=True, help_text="Shown to customers when a channel says 'call'.")
    # Where the person is: their pages show times in the contract's timezone and, where it differs,
    # in this one beside it (portal_tags.when). Empty: the contract's only.
    timezone = models.CharField(max_length=64, blank=True, validators=[validate_timezone])
    organisation = models.ForeignKey(
        "contracts.Organisation", null=True, blank=True, on_delete=models.PROTECT, related_name="users"
    )
    customer_role = models.CharField(max_length=20, choices=CustomerRole.choices, blank=True)
    staff_role = models.CharField(max_length=40, choices=StaffRole.choices, blank=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []
    # What the email templates read of a person, frozen with each email (portal.core.snapshot).
    EMAIL_FIELDS = ("name", "email", "organisation", "is_staff")
    objects = UserManager()

    class Meta:
        indexes = [
            # The staff by name, as the queue's assignee filter and the assign form list them on every
            # page: without it, a scan of every customer's people (bench/RESULTS.md, session 17).
            models.Index(fields=["name", "email"], condition=Q(is_staff=True), name="user_staff_by_name"),
        ]
        constraints = [
            # One account per address whatever its case: the login matches it case-folded (two
            # would be a server error at every login of either).
            models.UniqueConstraint(Lower("email"), name="user_email_unique_ci"),
            # A customer is never staff, and a staff member belongs to no customer.
            models.CheckConstraint(
                condition=Q(organisation__isnull=True) | Q(is_staff=False),
                name="user_customer_is_not_staff",
            ),
            models.CheckConstraint(
                condition=Q(organisation__isnull=True, customer_role="")
                | Q(organisation__isnull=False) & ~Q(customer_role=""),
                name="user_customer_role_iff_organisation",
            ),
        ]

    def __str__(self):
        return f"{self.name} <{self.email}>" if self.name else self.email

    @property
    def is_customer(self) -> bool:
        return self.organisation_id is not None

    def get_full_name(self):
        return self.name or self.email

    def get_short_name(self):
        return (self.name or self.email).split(" ")[0]


class NotificationPreference(models.Model):
    """A user's own choice for one kind of email (portal.core.notify_rules.Kind). No row: the kind's
    default applies (notify_rules decides it). Written from the preferences page or an unsubscribe
    link; `via` says which."""

    class Via(models.TextChoices):
        PAGE = "page", "Preferences page"
        LINK = "link", "Unsubscribe link in an email"
        ONE_CLICK = "one_click", "One-click unsubscribe (mail client)"
        API = "api", "API"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="email_preferences")
    kind = models.CharField(max_length=30)
    enabled = models.BooleanField()
    updated_at = models.DateTimeField()
    via = models.CharField(max_length=10, choices=Via.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "kind"], name="one_preference_per_user_and_kind")]

    def __str__(self):
        return f"{self.user_id}: {self.kind} {'on' if self.enabled else 'off'}"


class ContextField(models.TextField):
    """An outbox row's frozen context: JSON text (portal.core.snapshot). Its placeholder makes Django
    insert many rows with VALUES rather than UNNEST(%s::text[]): psycopg quotes each element of
    a text array in Python, escaping every quote of the JSON with a regular expression, for every
    row a sweep writes (bench/RESULTS.md, session 3)."""

    def get_placeholder(self, value, compiler, connection):
        return "%s"


def new_message_id() -> str:
    return f"<{uuid.uuid4().hex}@{settings.MESSAGE_ID_DOMAIN}>"


_new_message_id = new_message_id  # the name migration 0001 refers to


class OutboxMessage(models.Model):
    """One notification to one recipient. Written in the same transaction as the change that
    causes it, with its context frozen then (portal.core.snapshot) and its Message-ID fixed then;
    rendered by the worker that first sends it and stored, so a retry resends the same message."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed (gave up)"

    key = models.CharField(max_length=200, unique=True, help_text="e.g. sla-version:12:contact:7")
    message_id = models.CharField(max_length=200, unique=True, default=new_message_id, verbose_name="Message-ID")
    # Set by the sender that claimed the row; a stale sender cannot overwrite a newer claim.
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    template = models.CharField(max_length=100)
    to = models.EmailField()
    # The template's context as it was when the row was written (portal.core.snapshot, JSON).
    context = ContextField(blank=True)
    # Empty until the row is first rendered, by the worker that sends it.
    subject = models.CharField(max_length=300, blank=True)
    body_text = models.TextField(blank=True)
    body_html = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # When the row may next be tried: set at creation, pushed back by each failure (backoff).
    next_attempt_at = models.DateTimeField()
    # While SENDING, the sender holds the row until then; past it the row is anyone's again.
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # Headers of this message beyond the outbox's own (List-Unsubscribe of an optional email; a
    # vulnerability report's reply address and threading: Reply-To, In-Reply-To, References).
    headers = models.JSONField(default=dict, blank=True)
    # Names of the attachments rendered with it at each send from its context (portal.core.email_parts).
    attachments = models.JSONField(default=list, blank=True)
    last_error = models.TextField(blank=True)
    # A delivery status notification came back for it (portal.core.bounces): when, its status, why.
    bounced_at = models.DateTimeField(null=True, blank=True)
    bounce_status = models.CharField(max_length=20, blank=True, help_text="e.g. 5.1.1 (RFC 3463)")
    bounce_detail = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("retry_outboxmessage", "Can put failed emails back in the queue")]
        indexes = [
            # The sweep's two questions: which pending rows are due, which leases ran out.
            models.Index(fields=["next_attempt_at"], name="outbox_pending_due", condition=Q(status="pending")),
            models.Index(fields=["lease_until"], name="outbox_sending_lease", condition=Q(status="sending")),
            # Staff's list of bounced emails.
            models.Index(fields=["bounced_at"], name="outbox_bounced", condition=Q(bounced_at__isnull=False)),
            # The admin's list (newest first, its page and its capped count): read from the index,
            # not a sort of every email ever sent (migration 0017).
            models.Index(fields=["-created_at", "-id"], name="outbox_list_order"),
            # The sent rows that still hold their bodies, by when they were sent: the housekeeping
            # (portal.core.housekeeping) finds those past OUTBOX_KEEP_BODIES_DAYS without reading the
            # rows it emptied before.
            models.Index(fields=["sent_at"], name="outbox_bodies_kept", condition=Q(status="sent") & ~Q(body_text="")),
            # The reset form's limit: an account's recent reset emails (portal.site.forms).
            models.Index(
                fields=["to", "created_at"], name="outbox_password_resets", condition=Q(template="password_reset")
            ),
        ]

    def __str__(self):
        return f"{self.key} → {self.to} ({self.status})"


class OutboxAttempt(models.Model):
    message = models.ForeignKey(OutboxMessage, on_delete=models.CASCADE, related_name="attempt_log")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    ok = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["started_at"]

    def __str__(self):
        return f"{self.message.message_id} at {self.started_at:%Y-%m-%d %H:%M:%S}: {'ok' if self.ok else self.error}"


class BouncedAddress(models.Model):
    """An address our email bounced from (portal.core.bounces): staff see it to correct it."""

    address = models.EmailField(unique=True)
    first_bounced_at = models.DateTimeField()
    last_bounced_at = models.DateTimeField(db_index=True)
    # How many of our emails to it bounced (each outbox row counts once).
    bounces = models.PositiveIntegerField(default=0)
    last_status = models.CharField(max_length=20, blank=True)
    last_detail = models.CharField(max_length=500, blank=True)
    last_message = models.ForeignKey(OutboxMessage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-last_bounced_at"]
        verbose_name_plural = "bounced addresses"

    def __str__(self):
        return f"{self.address} ({self.last_status or 'bounced'})"


class AuditEntry(models.Model):
    """Append-only: who did what that matters, when, from where, before and after. Written by
    portal.core.audit.audit() in the transaction of the change; never updated or deleted."""

    at = models.DateTimeField(db_index=True, verbose_name="when")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    actor_email = models.CharField(max_length=254, blank=True, help_text="Kept if the user is deleted.")
    ip = models.GenericIPAddressField(null=True, blank=True, verbose_name="IP address")
    action = models.CharField(max_length=60, db_index=True)
    target_type = models.CharField(max_length=60)
    target_id = models.CharField(max_length=40, verbose_name="target ID")
    target_repr = models.CharField(max_length=300)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_email or 'system'}: {self.action} {self.target_repr}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("Audit entries are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit entries are append-only.")


class SweepHeartbeat(models.Model):
    """When each beat sweep last ran: /healthz and the admin show it, and call a sweep unhealthy
    when it is more than three minutes late."""

    name = models.CharField(max_length=60, unique=True)
    last_started_at = models.DateTimeField()
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_result = models.CharField(max_length=200, blank=True)
    runs = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["name"]
        # The staff dashboard (portal.site.staff_pages) is a page of its own; its permission lives here.
        permissions = [("view_staff_dashboard", "Can view the staff dashboard")]

    def __str__(self):
        return f"{self.name} at {self.last_finished_at or self.last_started_at:%Y-%m-%d %H:%M:%S}"


class FormSubmission(models.Model):
    """One sending of a form that makes something (a ticket, a reply), by the one-time key written
    into the form: the same key sent again (a double click, a browser resending after a timeout)
    is taken to what the first made (portal.core.once). Kept a day."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.UUIDField()
    url = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="form_submission_once")]
        indexes = [models.Index(fields=["created_at"], name="form_submission_age")]  # forgetting old keys

    def __str__(self):
        return f"{self.key} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class ApiToken(AuthToken):
    """knox's API token row as staff see it in the admin (portal/admin.py): named by its prefix,
    the first 15 characters of the secret (its digest is only the row's key)."""

    class Meta:
        proxy = True
        verbose_name = "API token"

    def __str__(self):
        return f"{self.token_key}… of {self.user.email}"


# --- Outbound webhooks: a customer's endpoints and the deliveries to them (portal.core.webhooks) ----
class WebhookEvent(models.TextChoices):
    """What an endpoint can subscribe to (docs/webhooks.md describes each payload)."""

    TICKET_FILED = "ticket.filed", "Ticket filed"
    TICKET_UPDATED = "ticket.updated", "Ticket updated (status, priority, public reply, escalation request)"
    TICKET_BREACHED = "ticket.breached", "Ticket breached an SLA deadline"
    TICKET_ESCALATED = "ticket.escalated", "Ticket escalated to a higher level"
    INCIDENT_UPDATED = "incident.updated", "Incident updated"
    CLAIM_DECIDED = "claim.decided", "Service-credit claim decided"
    # The vendor's own endpoints (no organisation: an on-call tool staff register in the admin).
    TICKET_AT_RISK = "ticket.at_risk", "P1 ticket at risk of missing its first response (vendor on-call)"
    PING = "ping", "Test event (sent from the portal on request)"


class WebhookEndpoint(models.Model):
    """An HTTPS address of a customer organisation that receives signed deliveries of the events it
    chose. The secret signs every delivery (HMAC-SHA256); after a rotation the previous one signs
    too until `previous_secret_until`, so a receiver can switch without losing a delivery. Without
    an organisation it is the vendor's own (its on-call tool), registered by staff in the admin."""

    organisation = models.ForeignKey(
        "contracts.Organisation", null=True, blank=True, on_delete=models.CASCADE, related_name="webhooks",
        help_text="Empty: the vendor's own endpoint (on-call), kept by staff in the admin.",
    )  # fmt: skip
    url = models.URLField("URL", max_length=500)
    description = models.CharField(max_length=100, blank=True)
    events = models.JSONField(default=list, help_text="WebhookEvent values this endpoint receives.")
    secret = models.CharField(max_length=80, editable=False)
    previous_secret = models.CharField(max_length=80, blank=True, editable=False)
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    # Failed attempts since the last success (or a fresh start), shown to its admins; decides nothing
    # (an endpoint is disabled when a delivery fails its last attempt and it accepted nothing since).
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_success_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField()
    # What an email about the endpoint reads of it (never the secrets; portal.core.snapshot).
    EMAIL_FIELDS = ("url", "description", "disabled_reason", "disabled_at", "consecutive_failures")

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.url


class VendorWebhookEndpoint(WebhookEndpoint):
    """The vendor's own endpoints (no organisation), as staff keep them in the admin: permissions of
    their own (support leads and up), apart from customers' endpoints."""

    class Meta:
        proxy = True
        verbose_name = "vendor webhook endpoint"


class WebhookDelivery(models.Model):
    """One event to one endpoint: a queue row like the email outbox's (leased by one sender at a
    time, retried with backoff), sent in order per endpoint and subject (the object it is about) and
    parked after WEBHOOK_MAX_ATTEMPTS so that it stops holding the later ones back. At least once: a
    receiver dedupes by delivery_id."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        DELIVERED = "delivered", "Delivered"
        PARKED = "parked", "Parked (gave up)"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=40, choices=WebhookEvent.choices)
    # The cause, e.g. "ticket:12:filed": one delivery per endpoint and cause, however often it is emitted.
    key = models.CharField(max_length=200)
    # The object it is about, the key's first two parts ("ticket:12"): a delivery waits only for the
    # earlier ones of its endpoint about the same object (portal.core.webhook_delivery).
    subject = models.CharField(max_length=200, default="")
    delivery_id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False, verbose_name="delivery ID")
    # The JSON body sent (envelope and data), fixed when the event happened.
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    lease_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_response = models.TextField(blank=True, help_text="The start of the last response's body.")
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [models.UniqueConstraint(fields=["endpoint", "key"], name="webhook_delivery_once")]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="webhook_pending_due", condition=Q(status="pending")),
            models.Index(fields=["lease_until"], name="webhook_sending_lease", condition=Q(status="sending")),
            # Each endpoint's earliest ready delivery, read in this order (one at a time per endpoint).
            models.Index(
                fields=["endpoint", "id"], name="webhook_endpoint_queue", condition=Q(status__in=["pending", "sending"])
            ),
            # "... and of this subject?" (sent in order per subject).
            models.Index(
                fields=["endpoint", "subject", "id"],
                name="webhook_subject_queue",
                condition=Q(status__in=["pending", "sending"]),
            ),  # fmt: skip
        ]

    def __str__(self):
        return f"{self.event} {self.delivery_id} → {self.endpoint_id} ({self.status})"

    @property
    def error_detail(self) -> str:
        """The last error, unless it only repeats the status code shown beside it."""
        return "" if self.last_error == f"HTTP {self.last_status_code}" else self.last_error
