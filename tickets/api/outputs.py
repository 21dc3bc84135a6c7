"""What the ticket API returns. A ticket is always shown with its clock (tickets.selectors.ClockView),
computed for a whole page at once."""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from contracts.choices import Priority

from ..models import Attachment, Ticket, TicketRating
from ..selectors import ClockView, EscalationRequestView, escalation_requests_of, ratings_of, ticket_clock_views


@dataclass(frozen=True)
class TicketRow:
    ticket: Ticket
    clock: ClockView
    rating: TicketRating | None = None
    escalation_request: EscalationRequestView | None = None


def ticket_rows(tickets) -> list[TicketRow]:
    tickets = list(tickets)
    clocks = ticket_clock_views(tickets)
    ratings = ratings_of(tickets)
    escalations = escalation_requests_of(tickets)
    return [
        TicketRow(ticket=t, clock=clocks[t.pk], rating=ratings.get(t.pk), escalation_request=escalations[t.pk])
        for t in tickets
    ]


@extend_schema_serializer(component_name="Satisfaction")
class SatisfactionOutputSerializer(serializers.Serializer):
    rating = serializers.ChoiceField(choices=TicketRating.Rating.choices)
    comment = serializers.CharField()
    rated_at = serializers.DateTimeField(help_text="The first rating.")
    updated_at = serializers.DateTimeField(help_text="The latest change (the rating link used again).")


@extend_schema_serializer(component_name="TicketEscalationRequest")
class TicketEscalationRequestOutputSerializer(serializers.Serializer):
    requested_at = serializers.DateTimeField()
    ack_due = serializers.DateTimeField(allow_null=True, help_text="Staff acknowledge the request by then.")
    acknowledged_at = serializers.DateTimeField(allow_null=True, help_text="Null: still waiting for acknowledgement.")


@extend_schema_serializer(component_name="Ticket")
class TicketOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="ticket.pk")
    number = serializers.CharField(source="ticket.number")
    status = serializers.ChoiceField(source="ticket.status", choices=Ticket.Status.choices)
    priority = serializers.ChoiceField(source="ticket.priority", choices=Priority.choices)
    subject = serializers.CharField(source="ticket.subject")
    description = serializers.CharField(source="ticket.description")
    steps_to_reproduce = serializers.CharField(source="ticket.steps_to_reproduce")
    contract = serializers.IntegerField(source="ticket.contract_id")
    service = serializers.IntegerField(source="ticket.service_id")
    created_at = serializers.DateTimeField(
        source="ticket.filed_at", help_text="When the customer reached us: the clocks start then."
    )
    channel = serializers.ChoiceField(
        source="ticket.channel", choices=Ticket.Channel.choices, help_text="How the ticket reached support."
    )
    # The clock, as of this response.
    sla_state = serializers.ChoiceField(source="clock.state", choices=Ticket.SLAState.choices)
    time_left_seconds = serializers.SerializerMethodField(
        help_text="Working time left to the nearest pending deadline, on that deadline's clock."
    )
    first_response_due = serializers.DateTimeField(source="clock.first_response_due", allow_null=True)
    first_response_at = serializers.DateTimeField(source="clock.first_response_at", allow_null=True)
    resolution_target = serializers.DateTimeField(
        source="clock.resolution_target_at", allow_null=True, help_text="Passing it warns."
    )
    resolution_due = serializers.DateTimeField(
        source="clock.resolution_due", allow_null=True, help_text="Passing it breaches."
    )
    paused = serializers.BooleanField(source="clock.paused")
    breached = serializers.BooleanField(source="clock.breached")
    escalation_level = serializers.IntegerField(source="clock.escalation_level")
    next_escalation_due = serializers.DateTimeField(source="clock.next_escalation_due", allow_null=True)
    escalation_channel = serializers.SerializerMethodField(help_text="What to do now to escalate.")
    escalation_contact = serializers.SerializerMethodField(help_text="Whom to reach at the current level.")
    timezone = serializers.CharField(source="clock.timezone", help_text="The SLA's timezone.")
    satisfaction = SatisfactionOutputSerializer(
        source="rating", allow_null=True, help_text="The filer's rating once the ticket was resolved, else null."
    )
    escalation_request = TicketEscalationRequestOutputSerializer(
        allow_null=True,
        help_text="The latest request to escalate (POST .../escalate/): the open one while it waits for "
        "acknowledgement by `ack_due`; null: never asked.",
    )

    def get_time_left_seconds(self, row: TicketRow) -> int | None:
        left = row.clock.time_left
        return None if left is None else int(left.total_seconds())

    def get_escalation_channel(self, row: TicketRow) -> str | None:
        return row.clock.level_instruction or None

    def get_escalation_contact(self, row: TicketRow) -> str | None:
        return row.clock.level_contact or None


@extend_schema_serializer(component_name="Attachment")
class AttachmentOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(source="original_name")
    size = serializers.IntegerField(help_text="Bytes.")
    content_type = serializers.CharField(help_text="Decided on the content, not on the name.")
    uploaded_at = serializers.DateTimeField()
    download_url = serializers.SerializerMethodField(help_text="Where to fetch the file, with the same credentials.")

    # The API's own download (token or session), not the portal's page view (session only).
    download_route, owner_id = "api-ticket-attachment-download", "ticket_id"  # a claim's files: credits.api

    def get_download_url(self, attachment: Attachment) -> str:
        url = reverse(self.download_route, args=[getattr(attachment, self.owner_id), attachment.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url


@extend_schema_serializer(component_name="Reply")
class ReplyOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    body = serializers.CharField()
    author = serializers.CharField(source="author.get_full_name")
    from_staff = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    attachments = AttachmentOutputSerializer(many=True, source="attachments.all")


@extend_schema_serializer(component_name="EscalationRequest")
class EscalationRequestOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    ticket = serializers.IntegerField(source="ticket_id")
    reason = serializers.CharField()
    requested_at = serializers.DateTimeField()
    ack_due = serializers.DateTimeField(allow_null=True, help_text="Staff acknowledge the request by then.")
    acknowledged_at = serializers.DateTimeField(allow_null=True)
