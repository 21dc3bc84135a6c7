"""Plumbing shared by the ticket API views: authentication, JSON parsing that fails cleanly, strict input
serializers, text checks, the mapping of TicketError to a 400, and the documented error shapes."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import APIException, NotFound, ParseError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from portal.core.api_tokens import CustomerTokenAuthentication

from ..models import Ticket
from ..selectors import tickets_for_user
from ..services import TicketError


class RequestBodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


class NestingSafeJSONParser(JSONParser):
    """DRF's JSONParser catches ValueError only: the RecursionError of a deeply nested body
    (`[[[[...]]]]`, well inside the upload limit) would be a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply.") from None


class CustomerApi(APIView):
    """Base of every customer API view. Token authentication (hashed, customers only:
    portal.core.api_tokens) comes first so that an anonymous request gets 401 with
    `WWW-Authenticate: Token` (DRF answers with the first class's header; session first would give
    a bare 403). Session requests still pass DRF's CSRF check."""

    authentication_classes = [CustomerTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]
    parser_classes = [NestingSafeJSONParser]

    def handle_exception(self, exc):
        # Django refuses a body over DATA_UPLOAD_MAX_MEMORY_SIZE with an HTML 400; answer in JSON.
        if isinstance(exc, RequestDataTooBig):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            exc = RequestBodyTooLarge(f"The request body is larger than {limit} bytes.")
        return super().handle_exception(exc)

    def get_ticket(self, pk: int) -> Ticket:
        """The user's organisation's ticket, else 404: another organisation's ticket and one that
        does not exist are indistinguishable. Staff belong to no organisation: always 404."""
        ticket = tickets_for_user(user=self.request.user).filter(pk=pk).first()
        if ticket is None:
            raise NotFound()
        return ticket


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """At most `max_limit` rows a page: a larger `limit` is cut to it. Unbounded, a `limit` beyond
    2**63 - 1 reached the database's LIMIT and failed there with a 500."""

    max_limit = 500


class PaginatedApi(CustomerApi):
    pagination_class = BoundedLimitOffsetPagination

    def paginate(self, queryset) -> tuple[LimitOffsetPagination, list]:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, self.request, view=self)
        return paginator, page


# --- Input --------------------------------------------------------------------------------------
class StrictInputSerializer(serializers.Serializer):
    """Refuses fields it does not know: a client that sends `priority` to an endpoint that cannot
    change it hears so, instead of a silent 200."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):  # anything else is refused by DRF: "Expected a dictionary"
            unknown = sorted(str(k) for k in data if k not in self.fields)
            if unknown:
                accepted = ", ".join(self.fields)
                raise serializers.ValidationError(
                    {k: [f"Unknown field; this request accepts: {accepted}."] for k in unknown}
                )
            # DRF takes any iterable as a list of ids, a JSON object too (its keys became the ids).
            lists = (serializers.ManyRelatedField, serializers.ListField)
            objects = [k for k, f in self.fields.items() if isinstance(f, lists) and isinstance(data.get(k), Mapping)]
            if objects:
                raise serializers.ValidationError(
                    {k: [self.fields[k].error_messages["not_a_list"].format(input_type="dict")] for k in objects}
                )
        return super().to_internal_value(data)


# NUL is refused by DRF's CharField itself ("Null characters are not allowed."); these refuse the
# other control characters (C0, DEL, C1), which have no business in a ticket and break emails.
def single_line(value: str) -> None:
    if any(unicodedata.category(ch) == "Cc" and ch != "\x00" for ch in value):
        raise serializers.ValidationError("Control characters (including line breaks) are not allowed here.")


def multi_line(value: str) -> None:
    if any(unicodedata.category(ch) == "Cc" and ch not in "\x00\t\n\r" for ch in value):
        raise serializers.ValidationError("Control characters are not allowed (only tabs and line breaks).")


def ticket_error(exc: TicketError) -> serializers.ValidationError:
    """A rule the service refused, as a 400 on the field it names (or the whole request)."""
    return serializers.ValidationError({exc.field or api_settings.NON_FIELD_ERRORS_KEY: [str(exc)]})


# --- Documented error responses -----------------------------------------------------------------
@extend_schema_serializer(component_name="Error")
class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


VALIDATION_ERROR = OpenApiResponse(
    response=OpenApiTypes.OBJECT,
    description="Validation failed: `{field: [messages]}`, `non_field_errors` for the request as a whole, "
    "or `{detail}` for a body that is not valid JSON.",
)
NOT_FOUND = OpenApiResponse(
    response=ErrorSerializer,
    description="No such ticket in your organisation (another organisation's ticket looks the same).",
)
NOT_SUPPORT_CONTACT = OpenApiResponse(
    response=ErrorSerializer,
    description="You are not a designated support contact of this contract: `detail` says whom to ask.",
)
UNAUTHENTICATED = OpenApiResponse(response=ErrorSerializer, description="No or invalid credentials.")
UNSUPPORTED_MEDIA_TYPE = OpenApiResponse(
    response=ErrorSerializer, description="The body is not of the documented media type (or has none)."
)
ERRORS = {400: VALIDATION_ERROR, 401: UNAUTHENTICATED}
TICKET_ERRORS = {**ERRORS, 404: NOT_FOUND}
