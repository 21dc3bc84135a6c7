"""The customer ticket API (/api/v1/tickets/...). Each view validates, calls one service or selector,
and serialises the result; rules live in tickets.services. One class per URL, with a nested input
serializer per operation that takes one."""

from __future__ import annotations

from django.db.models import Q
from django.urls import resolve, reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotFound, PermissionDenied, ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from contracts.choices import Priority
from contracts.models import Contract, Service
from contracts.people.support import NotASupportContact
from contracts.selectors import contracts_for_user, services_for_user
from portal.core.api import (
    FILE_DOWNLOAD,
    VALIDATION_ERROR,
    CustomerApi,
    ErrorSerializer,
    FileDownloadApi,
    ListQuery,
    PaginatedApi,
    StrictInputSerializer,
    id_filter,
    multi_line,
    not_found,
    one_or_404,
    ordered,
    ordering_field,
    single_line,
)
from portal.core.once import api_key, kept, submit_once
from portal.core.paging import CappedPaginator

from .. import search
from ..attachments import STORED_TYPES, attachment_response
from ..models import Ticket
from ..selectors import attachments_for_user, messages_for_customer, tickets_for_user, with_escalation_request
from ..services import (
    TicketError,
    ticket_attach,
    ticket_open,
    ticket_reply,
    ticket_request_escalation,
    ticket_set_status,
)
from .base import NOT_FOUND, NOT_SUPPORT_CONTACT, FileUploadInput, own_ticket, shown_ticket, ticket_error
from .outputs import (
    AttachmentOutputSerializer,
    EscalationRequestOutputSerializer,
    ReplyOutputSerializer,
    TicketOutputSerializer,
    ticket_rows,
)

TAGS = ["tickets"]


class OwnContractField(serializers.PrimaryKeyRelatedField):
    """A contract of the user's organisation. Anyone else's is "does not exist", exactly like an id
    that was never used: the answer confirms nothing."""

    def get_queryset(self):
        return contracts_for_user(user=self.context["request"].user)


class OwnServiceField(serializers.PrimaryKeyRelatedField):
    """A service of the user's organisation's contracts: another organisation's is "does not exist",
    like an id never used (a contract of one's own that does not cover it is the service's 400)."""

    def get_queryset(self):
        return services_for_user(user=self.context["request"].user)


# --- /tickets/ ----------------------------------------------------------------------------------
class KeyUsed(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This Idempotency-Key filed a ticket you can no longer see: send another key."
    default_code = "idempotency_key_used"


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", {"type": "string", "minLength": 1, "maxLength": 255}, OpenApiParameter.HEADER, required=False,
    description="Your own one-time key (1-255 characters) for this ticket: the same key sent again (a retry "
    "after a timeout) files nothing more and answers with the ticket the first request filed (header "
    "`Idempotent-Replayed: true`). Kept a day.",
)  # fmt: skip
FILED_HEADERS = [
    OpenApiParameter("Location", str, OpenApiParameter.HEADER, response=[201], description="The ticket's address (a path on this host)."),
    OpenApiParameter(
        "Idempotent-Replayed", str, OpenApiParameter.HEADER, response=[201],
        description="`true` when the answer is the ticket an earlier request with the same Idempotency-Key filed "
        "(nothing was filed now); absent otherwise.",
    ),
]  # fmt: skip


class TicketListCreateApi(PaginatedApi):
    """Your organisation's tickets (paginated, filterable by status and priority, searchable); filing a ticket."""

    @extend_schema_serializer(component_name="TicketQuery")
    class QuerySerializer(ListQuery):
        q = serializers.CharField(
            required=False, allow_blank=True, max_length=search.MAX_LENGTH,
            help_text="Search as the portal's ticket list does: words of the subject, description and public "
            'replies, "a phrase", -word to leave out, a ticket number. Best matches first (up to 1,000 of them; '
            "beyond, newest first) unless `ordering` is given.",
        )  # fmt: skip
        status = serializers.ChoiceField(choices=Ticket.Status.choices, required=False)
        priority = serializers.ChoiceField(choices=Priority.choices, required=False)
        contract = id_filter("A contract's id.")
        service = id_filter("A service's id.")
        ordering = ordering_field(
            ["created_at", "-created_at", "priority", "-priority"], default="-created_at", name="TicketOrdering"
        )

        def validate_q(self, value):
            try:
                return search.parse(value)  # None: nothing to search (blank)
            except search.SearchError as exc:
                raise serializers.ValidationError(str(exc)) from None

    query_serializer = QuerySerializer

    @extend_schema_serializer(component_name="TicketCreate")
    class InputSerializer(StrictInputSerializer):
        contract = OwnContractField(queryset=Contract.objects.none())
        service = OwnServiceField(queryset=Service.objects.none())
        priority = serializers.ChoiceField(
            choices=Priority.choices, required=False, allow_null=True, allow_blank=True,
            help_text="Optional where the contract's SLA has a single priority (Klart: STD).",
        )  # fmt: skip
        subject = serializers.CharField(max_length=200, validators=[single_line])
        description = serializers.CharField(max_length=20000, validators=[multi_line])
        steps_to_reproduce = serializers.CharField(
            max_length=20000, required=False, allow_blank=True, default="", validators=[multi_line]
        )

    @extend_schema(
        operation_id="tickets_list",
        tags=TAGS,
        summary="Your organisation's tickets (newest first unless `ordering` says otherwise)",
        parameters=[QuerySerializer],
        responses={200: TicketOutputSerializer(many=True), 400: VALIDATION_ERROR},
    )
    def get(self, request):
        query = self.list_query()
        ordering, found = query.pop("ordering"), query.pop("q", None)
        filters = {{"contract": "contract_id", "service": "service_id"}.get(k, k): v for k, v in query.items()}
        tickets = tickets_for_user(user=request.user).filter(**filters).select_related("rating")
        count = None
        if found is not None:  # the customer's search, as on the portal's list (tickets.search)
            tickets = search.tickets_search(tickets, found, staff=False)
        if found is not None and not request.query_params.get("ordering"):
            count = tickets.order_by().values("pk").count()  # the page's count; it also decides whether to rank
            tickets, _ = search.best_first(tickets, "-filed_at", "-pk", cap=CappedPaginator.CAP, count=count)
        else:
            tickets = ordered(tickets, ordering, fields={"created_at": "filed_at"})
        paginator, page = self.paginate(with_escalation_request(tickets), count=count)
        return paginator.get_paginated_response(TicketOutputSerializer(ticket_rows(page), many=True).data)

    @extend_schema(
        operation_id="tickets_create",
        tags=TAGS,
        summary="File a ticket",
        description="Only a designated support contact of the contract may file one (403 otherwise, saying whom to ask).",
        request=InputSerializer,
        parameters=[IDEMPOTENCY_KEY, *FILED_HEADERS],
        responses={
            201: TicketOutputSerializer,
            400: VALIDATION_ERROR,
            403: NOT_SUPPORT_CONTACT,
            409: OpenApiResponse(response=ErrorSerializer, description=KeyUsed.default_detail),
        },  # fmt: skip
    )
    def post(self, request):
        try:
            key = api_key(request.headers.get("Idempotency-Key"))
        except ValueError as exc:
            raise ValidationError({"Idempotency-Key": [str(exc)]}) from exc
        # A retry is answered first, with the first's ticket (or 409): its body is not judged again.
        url = kept(user=request.user, key=key)
        if url is not None:
            return self._filed(request, url, first=False)
        serializer = self.InputSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data

        def file() -> str:
            ticket = ticket_open(
                user=request.user, contract=data["contract"], service=data["service"],
                priority=data.get("priority") or None, subject=data["subject"], description=data["description"],
                steps_to_reproduce=data["steps_to_reproduce"], channel=Ticket.Channel.API,
            )  # fmt: skip
            return reverse("api-ticket-detail", args=[ticket.pk])

        try:
            url, first = submit_once(user=request.user, key=key, make=file)
        except TicketError as exc:
            raise ticket_error(exc) from exc
        except NotASupportContact as exc:
            raise PermissionDenied(str(exc)) from exc
        return self._filed(request, url, first=first)

    def _filed(self, request, url: str, *, first: bool) -> Response:
        try:
            ticket = shown_ticket(request, resolve(url).kwargs["pk"])
        except NotFound:  # replayed, but no longer yours to see (moved to another organisation)
            raise KeyUsed() from None
        headers = {"Location": url, **({} if first else {"Idempotent-Replayed": "true"})}
        return Response(
            TicketOutputSerializer(ticket_rows([ticket])[0]).data, status=status.HTTP_201_CREATED, headers=headers
        )


# --- /tickets/{id}/ -----------------------------------------------------------------------------
class TicketDetailApi(CustomerApi):
    """One ticket with its SLA clock; customers may close it, or reopen it once resolved or closed."""

    @extend_schema_serializer(component_name="TicketUpdate")
    class InputSerializer(StrictInputSerializer):
        status = serializers.ChoiceField(
            choices=Ticket.Status.choices,
            help_text="Customers may close a ticket, or reopen (`open`) one that is resolved or closed.",
        )

    @extend_schema(
        operation_id="tickets_retrieve",
        tags=TAGS,
        summary="A ticket with its clock",
        responses={200: TicketOutputSerializer, 404: NOT_FOUND},
    )
    def get(self, request, pk: int):
        ticket = shown_ticket(request, pk)
        return Response(TicketOutputSerializer(ticket_rows([ticket])[0]).data)

    @extend_schema(
        operation_id="tickets_partial_update",
        tags=TAGS,
        summary="Close or reopen a ticket",
        request=InputSerializer,
        responses={200: TicketOutputSerializer, 400: VALIDATION_ERROR, 404: NOT_FOUND},
    )
    def patch(self, request, pk: int):
        ticket = own_ticket(request, pk)
        serializer = self.InputSerializer(data=request.data, partial=True)  # PATCH: absent means unchanged
        serializer.is_valid(raise_exception=True)
        if "status" in serializer.validated_data:
            try:
                ticket = ticket_set_status(
                    ticket=ticket, actor=request.user, status=serializer.validated_data["status"]
                )
            except TicketError as exc:
                raise ticket_error(exc) from exc
        return Response(TicketOutputSerializer(ticket_rows([ticket])[0]).data)


# --- /tickets/{id}/replies/ ---------------------------------------------------------------------
class TicketRepliesApi(PaginatedApi):
    """The public conversation on a ticket, and the customer's replies."""

    @extend_schema_serializer(component_name="ReplyCreate")
    class InputSerializer(StrictInputSerializer):
        body = serializers.CharField(max_length=20000, validators=[multi_line])

    @extend_schema_serializer(component_name="ReplyQuery")
    class QuerySerializer(ListQuery):
        ordering = ordering_field(["created_at", "-created_at"], default="created_at", name="ReplyOrdering")

    query_serializer = QuerySerializer

    @extend_schema(
        operation_id="ticket_replies_list",
        tags=TAGS,
        summary="The conversation, oldest first (internal notes never appear)",
        parameters=[QuerySerializer],
        responses={200: ReplyOutputSerializer(many=True), 400: VALIDATION_ERROR, 404: NOT_FOUND},
    )
    def get(self, request, pk: int):
        ticket = own_ticket(request, pk)
        query = self.list_query()
        paginator, page = self.paginate(ordered(messages_for_customer(ticket), query["ordering"]))
        return paginator.get_paginated_response(
            ReplyOutputSerializer(page, many=True, context={"request": request}).data
        )

    @extend_schema(
        operation_id="ticket_replies_create",
        tags=TAGS,
        summary="Reply on a ticket",
        request=InputSerializer,
        responses={201: ReplyOutputSerializer, 400: VALIDATION_ERROR, 404: NOT_FOUND},
    )
    def post(self, request, pk: int):
        ticket = own_ticket(request, pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            message = ticket_reply(ticket=ticket, author=request.user, body=serializer.validated_data["body"])
        except TicketError as exc:
            raise ticket_error(exc) from exc
        return Response(
            ReplyOutputSerializer(message, context={"request": request}).data, status=status.HTTP_201_CREATED
        )


# --- /tickets/{id}/attachments/ -----------------------------------------------------------------
class TicketAttachmentsApi(PaginatedApi):
    """Files on a ticket; uploads are checked on their content and refused with a message."""

    @extend_schema_serializer(component_name="AttachmentUpload")
    class InputSerializer(FileUploadInput):
        pass

    @extend_schema_serializer(component_name="AttachmentQuery")
    class QuerySerializer(ListQuery):
        ordering = ordering_field(["uploaded_at", "-uploaded_at"], default="uploaded_at", name="AttachmentOrdering")

    query_serializer = QuerySerializer
    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="ticket_attachments_list",
        tags=TAGS,
        summary="The ticket's files, oldest first (files on internal notes never appear)",
        parameters=[QuerySerializer],
        responses={200: AttachmentOutputSerializer(many=True), 400: VALIDATION_ERROR, 404: NOT_FOUND},
    )
    def get(self, request, pk: int):
        ticket = own_ticket(request, pk)
        query = self.list_query()
        attachments = ticket.attachments.filter(Q(message__isnull=True) | Q(message__internal=False))
        paginator, page = self.paginate(ordered(attachments, query["ordering"]))
        return paginator.get_paginated_response(
            AttachmentOutputSerializer(page, many=True, context={"request": request}).data
        )

    @extend_schema(
        operation_id="ticket_attachments_create",
        tags=TAGS,
        summary="Upload a file (multipart, field `file`)",
        request={"multipart/form-data": InputSerializer},
        responses={201: AttachmentOutputSerializer, 400: VALIDATION_ERROR, 404: NOT_FOUND},
    )
    def post(self, request, pk: int):
        ticket = own_ticket(request, pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            [attachment] = ticket_attach(ticket=ticket, user=request.user, files=[serializer.validated_data["file"]])
        except TicketError as exc:
            raise ticket_error(exc) from exc
        return Response(
            AttachmentOutputSerializer(attachment, context={"request": request}).data, status=status.HTTP_201_CREATED
        )


# --- /tickets/{id}/attachments/{attachment_id}/download/ -----------------------------------------
class TicketAttachmentDownloadApi(FileDownloadApi):
    """A ticket's file (its `download_url`), with the API's credentials: the portal's link takes a
    login session only. Scoped as the portal's download is (tickets.selectors.attachments_for_user)."""

    @extend_schema(
        operation_id="ticket_attachments_download",
        tags=TAGS,
        summary="Download a file of the ticket",
        responses={**{(200, kind): FILE_DOWNLOAD for kind in STORED_TYPES}, 404: not_found("file")},
    )
    def get(self, request, pk: int, attachment_id: int):
        scoped = attachments_for_user(user=request.user).filter(pk=attachment_id, ticket_id=pk)
        return attachment_response(one_or_404(scoped))


# --- /tickets/{id}/escalate/ --------------------------------------------------------------------
class TicketEscalateApi(CustomerApi):
    """A request to escalate, which staff must acknowledge within the contract's time."""

    @extend_schema_serializer(component_name="EscalationRequestCreate")
    class InputSerializer(StrictInputSerializer):
        reason = serializers.CharField(max_length=5000, validators=[multi_line])

    @extend_schema(
        operation_id="tickets_escalate",
        tags=TAGS,
        summary="Ask to escalate; staff must acknowledge by `ack_due`",
        request=InputSerializer,
        responses={201: EscalationRequestOutputSerializer, 400: VALIDATION_ERROR, 404: NOT_FOUND},
    )
    def post(self, request, pk: int):
        ticket = own_ticket(request, pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            escalation = ticket_request_escalation(
                ticket=ticket, user=request.user, reason=serializer.validated_data["reason"]
            )
        except TicketError as exc:
            raise ticket_error(exc) from exc
        return Response(EscalationRequestOutputSerializer(escalation).data, status=status.HTTP_201_CREATED)
