"""Tickets, their history (pauses, messages, events, SLA crossings, escalation requests) and the
clock columns. Deadlines are derived by tickets.deadlines.ticket_deadlines from the terms and the
history and stored here: the stored columns are the truth every sweep, page, API answer and
email reads."""

import os
import uuid
from datetime import datetime

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import Q

from contracts.choices import Cause, Priority, priority_name
from portal.core.roles import StaffRole, role_group_name

from .deadlines import clock_words


class Ticket(models.Model):
    class Status(models.TextChoices):
        NEW = "new", "New"
        OPEN = "open", "Open"
        WAITING = "waiting", "Waiting on customer"
        RESOLVED = "resolved", "Resolved"
        CLOSED = "closed", "Closed"

    class Kind(models.TextChoices):
        SUPPORT = "support", "Support request"
        SECURITY = "security", "Vulnerability report"

    class Channel(models.TextChoices):
        """How the customer reached us: the portal's form, the API, an email, a phone call."""

        PORTAL = "portal", "Portal"
        API = "api", "API"
        EMAIL = "email", "Email"
        PHONE = "phone", "Phone"

    class SLAState(models.TextChoices):
        ON_TRACK = "on_track", "On track"
        AT_RISK = "at_risk", "At risk"
        WARNED = "warned", "Target passed"
        BREACHED = "breached", "Breached"
        PAUSED = "paused", "Paused"
        MET = "met", "Met"
        EXCLUDED = "excluded", "Excluded from SLA"

    ACTIVE = (Status.NEW, Status.OPEN, Status.WAITING)
    # What the email templates read of a ticket, frozen with each email (portal.core.snapshot). Not the
    # description: only the filing emails show it (read when they are rendered; it does not change).
    EMAIL_FIELDS = ("kind", "priority", "subject", "status", "first_response_due", "resolution_target_at",
                    "resolution_due", "organisation", "contract", "sla_version", "assignee")  # fmt: skip

    organisation = models.ForeignKey("contracts.Organisation", on_delete=models.PROTECT, related_name="tickets")
    contract = models.ForeignKey("contracts.Contract", on_delete=models.PROTECT, related_name="tickets")
    service = models.ForeignKey("contracts.Service", on_delete=models.PROTECT, related_name="tickets")
    sla_version = models.ForeignKey(
        "contracts.SLAVersion", on_delete=models.PROTECT, related_name="tickets", verbose_name="SLA version",
        help_text="The version in force when the ticket was filed: its clocks are judged by it.",
    )  # fmt: skip
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.SUPPORT)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.PORTAL)
    priority = models.CharField(max_length=3, choices=Priority.choices)
    subject = models.CharField(max_length=200)
    description = models.TextField(max_length=20000)
    steps_to_reproduce = models.TextField(max_length=20000, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_tickets",
        limit_choices_to={"is_staff": True},
    )  # fmt: skip
    filed_at = models.DateTimeField()
    first_response_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True, help_text="The latest resolution (cleared on reopen).")
    closed_at = models.DateTimeField(null=True, blank=True)
    excluded_cause = models.CharField(max_length=40, choices=Cause.choices, blank=True)
    excluded_reason = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The Message-ID of the customer's own email that filed it: the ticket's emails thread from it
    # (tickets.mail_thread). Empty when it came another way.
    email_origin = models.CharField(max_length=255, blank=True, editable=False)
    # The incident staff linked it to (tickets.incident_links); the customer sees it on the ticket.
    incident = models.ForeignKey(
        "contracts.Incident", null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets"
    )

    # --- Clock columns: derived by tickets.deadlines.ticket_deadlines alone (on every change and
    # after an edit that moves deadlines); everything else reads them and never derives again.
    first_response_due = models.DateTimeField(null=True, blank=True)
    resolution_target_at = models.DateTimeField(null=True, blank=True)
    resolution_due = models.DateTimeField(null=True, blank=True)
    # From when only the at-risk share (settings.SLA_AT_RISK_SHARE) of the nearest clock is left.
    at_risk_at = models.DateTimeField(null=True, blank=True)
    # When the first response's and the resolution limit's clocks warn before they breach: the same
    # share of each one's allowance left (tickets.deadlines.warn_moments).
    first_response_warn_at = models.DateTimeField(null=True, blank=True)
    resolution_warn_at = models.DateTimeField(null=True, blank=True)
    paused = models.BooleanField(default=False)
    escalation_level = models.PositiveSmallIntegerField(default=1)
    top_alert_sent = models.BooleanField(default=False)
    # When each level's dwell passes (ISO moments, null: paused with no end in sight): the escalation
    # sweep takes a ticket to the level it should be at from these.
    escalation_dues = models.JSONField(default=list, blank=True)
    next_escalation_due = models.DateTimeField(null=True, blank=True)
    next_sla_check_at = models.DateTimeField(null=True, blank=True, verbose_name="next SLA check")
    # Set in the transaction that records any breach crossing (an escalation acknowledgement's too):
    # the clock views read it rather than the crossings.
    breached = models.BooleanField(default=False)
    warned = models.BooleanField(default=False)
    # The nearest pending deadline: the staff queue sorts by it.
    next_deadline = models.DateTimeField(null=True, blank=True)

    # --- Search documents (PostgreSQL), written by tickets.search.documents_refresh alone: everything
    # staff see, and (only for a ticket with internal notes) what its customers see.
    search_document = SearchVectorField(null=True, editable=False)
    search_public = SearchVectorField(null=True, editable=False)

    class Meta:
        ordering = ["-filed_at"]
        # Beyond add/change/delete/view (docs/decisions.md, "Who may do what").
        permissions = [
            ("exclude_ticket", "Can exclude a ticket from the SLA"),
            ("change_priority", "Can change a ticket's priority"),
            ("handle_escalation", "Can escalate a ticket and acknowledge escalation requests"),
            ("view_security_report", "Can see vulnerability reports"),
            ("file_for_customer", "Can file a ticket for a customer who called or emailed a person"),
        ]
        indexes = [
            # The sweeps: only rows with a due time are in these indexes.
            models.Index(fields=["next_escalation_due"], name="ticket_escalation_due", condition=Q(next_escalation_due__isnull=False)),
            models.Index(fields=["next_sla_check_at"], name="ticket_sla_check_due", condition=Q(next_sla_check_at__isnull=False)),
            models.Index(fields=["organisation", "status", "-filed_at"], name="ticket_org_status"),
            # The staff queue: active tickets in deadline order (the admin adds -pk), read from the
            # index a page at a time instead of sorting a million rows; one status, or all of them
            # (the status filter's other choices), in the same order.
            models.Index(fields=["next_deadline", "-id"], name="ticket_queue_active", condition=Q(status__in=["new", "open", "waiting"])),  # Ticket.ACTIVE
            models.Index(fields=["status", "next_deadline", "-id"], name="ticket_queue_status"),
            models.Index(fields=["next_deadline", "-id"], name="ticket_queue_all"),
            # The staff dashboard's tickets at risk: active, counting, neither breached nor warned, not
            # paused (tickets.deadlines.at_risk_q), from their at-risk moment.
            models.Index(fields=["at_risk_at"], name="ticket_at_risk", condition=Q(status__in=["new", "open", "waiting"], excluded_cause="", breached=False, warned=False, paused=False, at_risk_at__isnull=False)),
            # A customer's ticket list: newest first within the organisation.
            models.Index(fields=["organisation", "kind", "-filed_at", "-id"], name="ticket_org_filed"),
        ]  # fmt: skip

    def __str__(self):
        return f"#{self.pk} {self.subject_line}"

    @property
    def number(self) -> str:
        return f"#{self.pk}"

    @property
    def subject_line(self) -> str:
        """The subject as emails' subjects and the audit log name the ticket: a vulnerability
        report's own words never (a subject is shown in inboxes, logs and phones' notifications)."""
        return "Vulnerability report" if self.kind == self.Kind.SECURITY else self.subject

    @property
    def priority_name(self) -> str:
        """P1, or Standard (never STD): the priority in a line of text (contracts.choices.priority_name)."""
        return priority_name(self.priority)

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def is_excluded(self) -> bool:
        return bool(self.excluded_cause)


class TicketPause(models.Model):
    """A stretch in which the SLA clocks stop: waiting on the customer, or resolved (until reopened)."""

    class Reason(models.TextChoices):
        WAITING = "waiting", "Waiting on customer"
        RESOLVED = "resolved", "Resolved"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="pauses")
    reason = models.CharField(max_length=10, choices=Reason.choices)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["started_at"]
        constraints = [
            # At most one open pause of each kind per ticket.
            models.UniqueConstraint(
                fields=["ticket", "reason"], condition=Q(ended_at__isnull=True), name="one_open_pause"
            )
        ]

    def __str__(self):
        return f"{self.get_reason_display()} {self.started_at:%Y-%m-%d %H:%M}-{self.ended_at or '…'}"


class TicketMessage(models.Model):
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField(max_length=20000)
    internal = models.BooleanField(
        default=False, help_text="An internal note: staff only, never shown to the customer."
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"{'Note' if self.internal else 'Reply'} on {self.ticket_id} by {self.author_id}"

    @property
    def from_staff(self) -> bool:
        return self.author.is_staff


def attachment_path(instance, filename):
    # A random name: the original is kept in the row, never used on disk.
    ext = os.path.splitext(filename)[1].lower()[:10]
    return f"attachments/{uuid.uuid4().hex}{ext}"


class Attachment(models.Model):
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="attachments")
    message = models.ForeignKey(
        TicketMessage, null=True, blank=True, on_delete=models.CASCADE, related_name="attachments"
    )
    file = models.FileField(upload_to=attachment_path)
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField()

    class Meta:
        ordering = ["uploaded_at", "id"]

    def __str__(self):
        return self.original_name


class TicketEvent(models.Model):
    """The ticket's audit trail: every change, with who, when and what."""

    class Kind(models.TextChoices):
        FILED = "filed", "Filed"
        STATUS = "status", "Status changed"
        PRIORITY = "priority", "Priority changed"
        ASSIGNED = "assigned", "Assigned"
        EXCLUDED = "excluded", "Excluded from the SLA"
        ESCALATED = "escalated", "Escalated"
        TOP_ALERT = "top_alert", "Unresolved at the top level"
        ESCALATION_REQUESTED = "escalation_requested", "Customer asked to escalate"
        ESCALATION_ACKNOWLEDGED = "escalation_acknowledged", "Escalation request acknowledged"
        CROSSING = "crossing", "SLA deadline crossed"
        CALL = "call", "Call logged"
        AUTOMATIC_MAIL = "automatic_mail", "Automatic email received (not a reply)"
        RATED = "rated", "Rated by the customer"
        # Shown to the customer: a recompute (an edit of the calendar or terms) moved a deadline they
        # were given. data: {"reason": why, "moved": [{"deadline": DEADLINE_WORDS key, "from": ISO,
        # "to": ISO}, ...]}.
        DEADLINE_MOVED = "deadline_moved", "Deadline moved"

    # The deadlines a customer is given, in the words their ticket page uses.
    DEADLINE_WORDS = {
        "first_response_due": "First response",
        "resolution_target_at": "Resolution target",
        "resolution_due": "Resolution limit",
    }

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self):
        return f"{self.get_kind_display()} at {self.at:%Y-%m-%d %H:%M}"

    def deadline_moves(self) -> list[tuple[str, datetime, datetime]]:
        """A DEADLINE_MOVED event's moves: (the deadline's words, from, to)."""
        return [
            (self.DEADLINE_WORDS.get(m["deadline"], m["deadline"]), datetime.fromisoformat(m["from"]),
             datetime.fromisoformat(m["to"]))
            for m in (self.data or {}).get("moved", [])
        ]  # fmt: skip


class TicketCall(models.Model):
    """A phone call about a ticket, logged by staff. A public one shows on the customer's page; an
    outbound one that answered the customer is the ticket's first response at `started_at`
    (tickets.channels.ticket_call_log)."""

    class Direction(models.TextChoices):
        INBOUND = "inbound", "Inbound (the customer called us)"
        OUTBOUND = "outbound", "Outbound (we called the customer)"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="calls")
    direction = models.CharField(max_length=10, choices=Direction.choices)
    # With whom: one of the organisation's people, or a name and number as given on the phone.
    contact = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    contact_name = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField()
    duration = models.DurationField()
    notes = models.TextField(max_length=20000, blank=True)
    internal = models.BooleanField(default=False, help_text="Staff only: not shown to the customer.")
    answered = models.BooleanField(default=False, help_text="An outbound call that answered the customer.")
    logged_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    logged_at = models.DateTimeField()

    class Meta:
        ordering = ["started_at", "id"]

    def __str__(self):
        return f"{self.get_direction_display()} call on {self.ticket_id} at {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def with_whom(self) -> str:
        return self.contact.get_full_name() if self.contact_id else self.contact_name


class SLACrossing(models.Model):
    """A clock crossing a moment (only the at-risk share of its allowance left, its target or its
    limit passed): recorded once per ticket, clock and kind (an at-risk warning once per priority
    too), with the moment it crossed."""

    class Kind(models.TextChoices):
        AT_RISK = "at_risk", "At risk (the at-risk share of its allowance left)"
        WARNING = "warning", "Warning (target passed)"
        BREACH = "breach", "Breach"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="crossings")
    clock = models.CharField(max_length=40, help_text="first_response, resolution, or ack:<request id>")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    at = models.DateTimeField(
        help_text="The moment crossed: the deadline for a warning or a breach, the start of the at-risk share for "
        "an at-risk warning.",
        verbose_name="crossed at",
    )
    recorded_at = models.DateTimeField()
    # The ticket's priority when it was recorded, and the deadline it named (its clock's due moment):
    # an at-risk warning stands while it is about the deadline the clock has (tickets.deadlines.standing).
    priority = models.CharField(max_length=3, blank=True)
    deadline = models.DateTimeField(null=True, blank=True, verbose_name="deadline named")

    class Meta:
        ordering = ["at"]
        verbose_name = "SLA crossing"
        constraints = [
            # A breach or a target's warning once per ticket and clock; an at-risk warning once per
            # priority too (a priority change that moved the deadline warns of the new one).
            models.UniqueConstraint(
                fields=["ticket", "clock", "kind"], name="crossing_once", condition=~Q(kind="at_risk")
            ),
            models.UniqueConstraint(
                fields=["ticket", "clock", "kind", "priority"],
                name="warning_once_per_priority",
                condition=Q(kind="at_risk"),
            ),
        ]

    def __str__(self):
        return f"{self.clock} {self.kind} at {self.at:%Y-%m-%d %H:%M}"

    @property
    def clock_words(self) -> str:
        return clock_words(self.clock)


class EscalationRequest(models.Model):
    """A customer asked to escalate: staff must acknowledge it within the contract's time."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="escalation_requests")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField()
    reason = models.TextField(max_length=5000)
    ack_due = models.DateTimeField(null=True, blank=True)
    # When only the at-risk share of the acknowledgement's allowance is left: staff are warned then.
    ack_warn_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["requested_at"]

    def __str__(self):
        return f"Escalation request on {self.ticket_id} at {self.requested_at:%Y-%m-%d %H:%M}"


class SecurityReport(models.Model):
    """Who reported a vulnerability: an address, not an account. The ticket's filer is the reports'
    own account, which never logs in (tickets.security), so a report sent with a customer's address
    is not theirs. The conversation with the reporter is email: `thread` holds the Message-IDs of
    the report's emails to and from the reporter, in order (tickets.security_mail threads them)."""

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="security_report")
    reporter_email = models.EmailField(max_length=254)
    reporter_name = models.CharField(max_length=150, blank=True)
    submitted_at = models.DateTimeField()
    # What the public form's limits count (tickets.security): the address lowercased without its
    # +tag (one mailbox), and a keyed hash of the submitter's IP address (never the address itself).
    address_key = models.CharField(max_length=254)
    source_key = models.CharField(max_length=64, blank=True)
    # [{"id": "<Message-ID>", "at": ISO time, "in": true when the reporter wrote it, "from": ...}]
    thread = models.JSONField(default=list, blank=True)

    # What the email templates read of a report (portal.core.snapshot).
    EMAIL_FIELDS = ("ticket", "reporter_email", "reporter_name")

    class Meta:
        indexes = [
            models.Index(fields=["address_key", "submitted_at"], name="security_report_address"),
            models.Index(fields=["source_key", "submitted_at"], name="security_report_source"),
        ]

    def __str__(self):
        return f"Vulnerability report #{self.ticket_id}"


class InboundMessage(models.Model):
    """One email that reached us (tickets.inbound): its raw bytes, stored once, and what became of
    it, written in the transaction of its effect. The unique keys (the hash of its bytes; its
    sender and Message-ID) make the same message, ingested twice, by two callers at once or after
    a crash, one ticket or one reply. A held message waits in the staff triage list."""

    class Outcome(models.TextChoices):
        FILED = "filed", "Filed as a new ticket"
        REPLIED = "replied", "Added to a ticket as a reply"
        HELD = "held", "Held for staff"
        AUTOMATIC = "automatic", "Automatic message (not answered)"
        REFUSED = "refused", "Refused"
        DISCARDED = "discarded", "Discarded by staff"

    class Source(models.TextChoices):
        PIPE = "pipe", "MTA pipe (ingest_email)"
        IMAP = "imap", "IMAP mailbox"
        WEBHOOK = "webhook", "Provider webhook"

    sha256 = models.CharField(max_length=64, unique=True, editable=False)
    sender = models.CharField(max_length=254, blank=True, help_text="The From address, lower case.")
    message_id = models.CharField(max_length=255, blank=True, verbose_name="Message-ID")
    return_path = models.CharField(max_length=254, blank=True)
    recipients = models.TextField(blank=True, help_text="The addresses it was sent to (envelope first).")
    subject = models.CharField(max_length=300, blank=True)
    received_at = models.DateTimeField(help_text="When our side first received it: the ticket's clock starts here.")
    source = models.CharField(max_length=10, choices=Source.choices)
    source_ref = models.CharField(max_length=300, blank=True)
    # Sent to the security address: only security staff see it (tickets.security takes it).
    security = models.BooleanField(default=False)
    size = models.PositiveIntegerField()
    # The message as it came (only its header when it was refused for its size).
    raw = models.BinaryField(editable=False)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    reason = models.CharField(max_length=300, blank=True, help_text="Why it was held, refused or taken as automatic.")
    organisation = models.ForeignKey(
        "contracts.Organisation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ticket = models.ForeignKey(Ticket, null=True, blank=True, on_delete=models.SET_NULL, related_name="inbound")
    ticket_message = models.ForeignKey(
        TicketMessage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    handled_at = models.DateTimeField(null=True, blank=True)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        permissions = [("triage_inboundmessage", "Can triage held email: attach, file or discard")]
        constraints = [
            models.UniqueConstraint(
                fields=["sender", "message_id"], condition=~Q(message_id=""), name="inbound_sender_message_id_once"
            )
        ]
        indexes = [
            models.Index(fields=["received_at"], name="inbound_held", condition=Q(outcome="held")),
            models.Index(fields=["sender", "received_at"], name="inbound_sender_recent"),
        ]

    def __str__(self):
        if self.security:  # its subject tells the report: never in an audit entry or a list staff read
            return f"{self.sender or '(no sender)'}: mail to the security address"
        return f"{self.sender or '(no sender)'}: {self.subject[:80]}"


class TicketRating(models.Model):
    """The filer's satisfaction with a resolved ticket (tickets.satisfaction): one per ticket,
    changed in place when the rating link is used again."""

    class Rating(models.TextChoices):
        GOOD = "good", "Good"
        BAD = "bad", "Bad"

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="rating")
    rating = models.CharField(max_length=4, choices=Rating.choices)
    comment = models.TextField(max_length=2000, blank=True)
    rated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    rated_at = models.DateTimeField(help_text="The first rating.")
    updated_at = models.DateTimeField(help_text="The latest change (the first rating's moment if none).")

    class Meta:
        verbose_name = "satisfaction rating"

    def __str__(self):
        return f"{self.get_rating_display()} on #{self.ticket_id}"


class CannedReply(models.Model):
    """A named reply staff insert in a ticket's reply form, its placeholders filled for that ticket
    (tickets.canned). Personal (an `owner`, who alone sees and edits it) or a team's (a staff role's
    group: its members use it; those with `manage_team_replies` keep it)."""

    name = models.CharField(max_length=100)
    body = models.TextField(max_length=20000)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="canned_replies"
    )
    team = models.ForeignKey(
        "auth.Group", null=True, blank=True, on_delete=models.PROTECT, related_name="canned_replies",
        limit_choices_to={"name__in": [role_group_name(role) for role in StaffRole]},
    )  # fmt: skip
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["name", "id"]
        verbose_name_plural = "canned replies"
        permissions = [("manage_team_replies", "Can keep the canned replies of any staff team")]
        constraints = [
            models.CheckConstraint(
                condition=Q(owner__isnull=False, team__isnull=True) | Q(owner__isnull=True, team__isnull=False),
                name="canned_reply_personal_or_team",
            ),
            models.UniqueConstraint(
                fields=["owner", "name"], condition=Q(owner__isnull=False), name="canned_owner_name"
            ),
            models.UniqueConstraint(fields=["team", "name"], condition=Q(team__isnull=False), name="canned_team_name"),
        ]

    def __str__(self):
        return self.name

    @property
    def scope(self) -> str:
        return f"Team: {self.team.name}" if self.team_id else "Personal"


class DeadlineRecompute(models.Model):
    """An edit of calendars or SLA terms whose open tickets' deadlines are still to be recomputed:
    written in the edit's transaction, deleted once they are (tickets.recompute.recompute_run, the
    task the edit enqueues). One still here at `due_at` (its task lost with a killed worker, or
    never queued while the broker was down) is taken by the minute's SLA sweep."""

    calendar_ids = models.JSONField(default=list)
    version_ids = models.JSONField(default=list)
    due_at = models.DateTimeField(db_index=True)
    # Why, as the customers whose deadlines it moves are told (TicketEvent.Kind.DEADLINE_MOVED).
    reason = models.TextField(blank=True, default="")

    def __str__(self):
        return (
            f"Deadlines of calendars {self.calendar_ids}, versions {self.version_ids}, due {self.due_at:%Y-%m-%d %H:%M}"
        )
