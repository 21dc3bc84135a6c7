"""What the ticket API adds to the customer API's plumbing (portal.core.api): the organisation's
ticket or a 404, the mapping of TicketError to a 400, and a file upload checked on its content (the
claims' evidence uses it too)."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.settings import api_settings

from portal.core.api import ErrorSerializer, StrictInputSerializer, not_found, one_or_404

from ..attachments import validate_upload
from ..models import Ticket
from ..selectors import tickets_for_user, with_escalation_request
from ..services import TicketError

NOT_FOUND = not_found("ticket")
NOT_SUPPORT_CONTACT = OpenApiResponse(
    response=ErrorSerializer,
    description="You are not a designated support contact of this contract: `detail` says whom to ask.",
)


def own_ticket(request, pk: int, *related: str) -> Ticket:
    """The user's organisation's ticket (with `related` joined), else 404. Staff belong to no
    organisation: always 404."""
    return one_or_404(tickets_for_user(user=request.user).select_related(*related).filter(pk=pk))


def shown_ticket(request, pk: int) -> Ticket:
    """own_ticket, with what its Ticket answer shows read in the same query (its rating, its latest
    escalation request)."""
    return one_or_404(
        with_escalation_request(tickets_for_user(user=request.user).select_related("rating").filter(pk=pk))
    )


def ticket_error(exc: TicketError) -> serializers.ValidationError:
    """A rule the service refused, as a 400 on the field it names (or the whole request)."""
    return serializers.ValidationError({exc.field or api_settings.NON_FIELD_ERRORS_KEY: [str(exc)]})


class FileUploadInput(StrictInputSerializer):
    """One file (multipart, field `file`), its type decided on its content (tickets.attachments)."""

    file = serializers.FileField(help_text="Images, PDF, ZIP/GZip or text; the type is decided on the content.")

    def validate_file(self, upload):
        try:
            upload.checked_type = validate_upload(upload)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc
        return upload
