"""What every customer API view shares (tickets.api, credits.api, contracts.api): authentication,
JSON parsing that fails cleanly, strict input serializers, text checks, the one pagination class
and the list query (filters and `ordering`), and the error shapes. The errors every operation can
answer (401, 403, 404, 413, 415, 429) are documented once, by portal.core.api_schema's hook."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema_field, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import APIException, NotFound, ParseError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from portal.core.api_tokens import CustomerTokenAuthentication
from portal.core.ids import ID_RANGE


class RequestBodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


class NestingSafeJSONParser(JSONParser):
    """DRF's JSONParser catches ValueError only: the RecursionError of a deeply nested body
    (`[[[[...]]]]`, well inside the upload limit) would be a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply.") from None
        _readable(data)
        return data


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _readable(data) -> None:
    """A body JSON allows but nothing here can hold: a lone surrogate ("\\ud800", which no answer
    quoting it can encode) or a number beyond a float (1e400, which no id field can convert).
    Both were 500s; they are a 400 saying so."""
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str) and _SURROGATE.search(value):
            raise ParseError("JSON parse error - the body has a character that cannot be read (a lone surrogate).")
        elif isinstance(value, float) and not math.isfinite(value):
            raise ParseError("JSON parse error - a number is too large.")


class CustomerApi(APIView):
    """Base of every customer API view. Token authentication (hashed, customers only:
    portal.core.api_tokens) comes first so that an anonymous request gets 401 with
    `WWW-Authenticate: Token` (DRF answers with the first class's header; session first would give
    a bare 403). Session requests still pass DRF's CSRF check."""

    authentication_classes = [CustomerTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]
    parser_classes = [NestingSafeJSONParser]

    def handle_exception(self, exc):
        # Django refuses a body over DATA_UPLOAD_MAX_MEMORY_SIZE, and too many fields, query parameters
        # or files, with an HTML 400; answer in JSON.
        if isinstance(exc, RequestDataTooBig):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            exc = RequestBodyTooLarge(f"The request body is larger than {limit} bytes.")
        elif isinstance(exc, TooManyFieldsSent):
            limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
            exc = ParseError(f"The request has more than {limit} fields or query parameters.")
        elif isinstance(exc, TooManyFilesSent):
            exc = ParseError(f"The request has more than {settings.DATA_UPLOAD_MAX_NUMBER_FILES} files.")
        return super().handle_exception(exc)


class FileDownloadApi(CustomerApi):
    """Base of a view that answers with a stored file (tickets.attachments.attachment_response), not
    JSON: a client's `Accept: application/pdf` is no reason for a 406, and its errors are still JSON."""

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # A path id past the database's integer names nothing (a foreign key's `=` is not guarded by
        # Django: SQLite raised OverflowError, a 500).
        if any(isinstance(v, int) and v not in ID_RANGE for v in kwargs.values()):
            raise NotFound()


FILE_DOWNLOAD = OpenApiResponse(
    response=OpenApiTypes.BINARY,
    description="The file's bytes, as a download (`Content-Disposition: attachment`, its stored name), its "
    "`Content-Type` the type decided on its content when it was uploaded (one of those listed).",
)


def one_or_404(queryset):
    """The queryset's one row (already scoped to the user's organisation), else 404: another
    organisation's object and one that does not exist are indistinguishable."""
    found = queryset.first()
    if found is None:
        raise NotFound()
    return found


# --- Lists: one pagination, one query shape ---------------------------------------------------------
class Pagination(LimitOffsetPagination):
    """Every list: `limit` (default 50, at most `max_limit`: a larger one is cut to it) and
    `offset`; the answer is `{count, next, previous, results}`. Unbounded, a `limit` beyond
    2**63 - 1 reached the database's LIMIT and failed there with a 500."""

    default_limit = 50
    max_limit = 500
    known_count: int | None = None  # set before paginating when the view has counted the list already

    def get_count(self, queryset) -> int:
        return self.known_count if self.known_count is not None else super().get_count(queryset)


def ordering_field(choices: list[str], *, default: str, name: str) -> serializers.ChoiceField:
    """The `ordering` query parameter of a list: a field name, `-` first for descending. Its enum is
    a named schema component (`name`), as every enum of the schema is."""

    @extend_schema_field({"type": "string", "enum": choices, "default": default, "x-enum-name": name})
    class OrderingField(serializers.ChoiceField):
        pass

    return OrderingField(
        choices=choices,
        required=False,
        default=default,
        help_text=f"Sort by this field; `-` first for descending. Default `{default}`; ties by id.",
    )


def id_filter(help_text: str) -> serializers.IntegerField:
    """A filter by an object's id. Bounded: an id past the database's integer (2**63 - 1) failed
    there with a 500."""
    return serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1, help_text=help_text)


class ListQuery(serializers.Serializer):
    """Base of a list's query serializer: its filters (each optional; a blank value is no filter)
    and `ordering`. A subclass declares `ordering = ordering_field(...)`."""

    def to_internal_value(self, data):
        # `?status=` means "no filter", as it always did for the ticket list.
        if hasattr(data, "dict"):
            data = {k: v for k, v in data.dict().items() if v != ""}
        return super().to_internal_value(data)


class PaginatedApi(CustomerApi):
    pagination_class = Pagination
    query_serializer: type[ListQuery] | None = None

    def list_query(self) -> dict:
        """The validated filters and ordering of this request (400 with field messages otherwise)."""
        query = self.query_serializer(data=self.request.query_params, context={"request": self.request})
        query.is_valid(raise_exception=True)
        return dict(query.validated_data)

    def paginate(self, queryset, *, count: int | None = None) -> tuple[LimitOffsetPagination, list]:
        """A page of `queryset`; `count`, when the view counted it already, is not asked again."""
        paginator = self.pagination_class()
        paginator.known_count = count
        page = paginator.paginate_queryset(queryset, self.request, view=self)
        return paginator, page


def ordered(queryset, ordering: str, *, fields: dict[str, str] | None = None):
    """`ordering` applied (a public name mapped to a model path by `fields`), ties broken by id in
    the same direction, so that pages never overlap."""
    descending = ordering.startswith("-")
    name = ordering.lstrip("-")
    path = (fields or {}).get(name, name)
    sign = "-" if descending else ""
    return queryset.order_by(f"{sign}{path}", f"{sign}id")


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


# --- Documented error responses -----------------------------------------------------------------
@extend_schema_serializer(component_name="Error")
class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


VALIDATION_ERROR = OpenApiResponse(
    response=OpenApiTypes.OBJECT,
    description="Validation failed: `{field: [messages]}`, `non_field_errors` for the request as a whole, "
    "or `{detail}` for a body that is not valid JSON.",
)


def not_found(what: str) -> OpenApiResponse:
    return OpenApiResponse(
        response=ErrorSerializer,
        description=f"No such {what} in your organisation (another organisation's {what} looks the same).",
    )
