"""The customer uptime and claim API (/api/v1/contracts/{id}/uptime/, /api/v1/claims/...). Each view
validates, calls one selector or service, and serialises the result; the rules live in
credits.services (ClaimError becomes a 400 on its field, with the same message as the portal's
form). The plumbing (authentication, strict input, error shapes) is the ticket API's."""

from __future__ import annotations

from datetime import date

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.settings import api_settings

from contracts.choices import CreditKind
from contracts.models import Contract
from contracts.selectors import contracts_for_user
from portal.core.api import (
    FILE_DOWNLOAD,
    VALIDATION_ERROR,
    CustomerApi,
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
)
from portal.domain.dates import MONTH_FORMAT, MONTH_PATTERN, month_from_text
from portal.domain.formats import amount
from tickets.api.base import FileUploadInput
from tickets.api.outputs import AttachmentOutputSerializer
from tickets.attachments import STORED_TYPES, attachment_response
from tickets.models import Ticket
from tickets.selectors import tickets_for_user

from .figures import MonthFigures, MonthUnavailable, contract_month_figures
from .forms import OWN_CONTRACTS, OWN_TICKETS
from .models import Claim
from .selectors import ClaimFigures, claim_attachments_for_user, claims_figures, claims_for_user
from .services import ClaimError, claim_attach, claim_submit

TAGS = ["credits"]
CONTRACT_NOT_FOUND = not_found("contract")
CLAIM_NOT_FOUND = not_found("claim")
# The choice sets of figures that are not model fields (named components: settings.ENUM_NAME_OVERRIDES).
MONTH_STATES = [
    (MonthFigures.CLOSED, "Closed by the month-end run"),
    (MonthFigures.SO_FAR, "The current month, up to as_of"),
    (MonthFigures.NOT_CLOSED, "Ended, not closed yet: computed as the month-end run will close it"),
]
BREAKDOWN_KINDS = [("outage", "Outage"), ("maintenance", "Maintenance window")]


def claim_error(exc: ClaimError) -> serializers.ValidationError:
    """A rule the service refused, as a 400 on the field it names (or the whole request)."""
    return serializers.ValidationError({exc.field or api_settings.NON_FIELD_ERRORS_KEY: [str(exc)]})


@extend_schema_field({"type": "string", "pattern": MONTH_PATTERN, "example": "2026-10"})
class MonthField(serializers.Field):
    """YYYY-MM in, a first-of-month date for the services."""

    default_error_messages = {"invalid_month": MONTH_FORMAT}

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", "The month as YYYY-MM, e.g. 2026-10.")
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> date:
        try:
            return month_from_text(data if isinstance(data, str) else "")
        except ValueError:
            self.fail("invalid_month")

    def to_representation(self, value: date) -> str:
        return f"{value:%Y-%m}"


# --- Output -------------------------------------------------------------------------------------
@extend_schema_serializer(component_name="UptimeBreakdownLine")
class BreakdownLineOutputSerializer(serializers.Serializer):
    """One line of a month's breakdown (credits.figures.BreakdownLine): its minutes as the month
    counted them; its title, cause and times as the outage or window stands now."""

    kind = serializers.ChoiceField(choices=BREAKDOWN_KINDS)
    title = serializers.CharField()
    cause = serializers.CharField(help_text="The outage's cause code; empty for maintenance.")
    cause_label = serializers.CharField()
    start = serializers.DateTimeField(allow_null=True, help_text="Null: the outage or window was deleted since.")
    end = serializers.DateTimeField(allow_null=True, help_text="Null: not ended yet.")
    ongoing = serializers.BooleanField(
        help_text="Still going on: at as_of for live figures; for a closed month, an outage that has not ended yet."
    )
    down_minutes = serializers.IntegerField(help_text="Minutes of the month it made down.")
    excluded_minutes = serializers.IntegerField(help_text="Minutes of the month it touched that are excluded.")
    reason = serializers.CharField(help_text="Why its minutes count, or are excluded.")


@extend_schema_serializer(component_name="ContractUptime")
class UptimeOutputSerializer(serializers.Serializer):
    contract = serializers.SerializerMethodField()
    month = MonthField(read_only=True, help_text="YYYY-MM.")  # documented as YYYY-MM, not as a date
    state = serializers.ChoiceField(choices=MONTH_STATES)
    timezone = serializers.CharField(help_text="The contract's timezone: the month runs in it.")
    period_start = serializers.DateTimeField(help_text="The month's first moment, or the contract's start if later.")
    period_end = serializers.DateTimeField(
        help_text="The month's end, or the end of the contract's last day if earlier."
    )
    as_of = serializers.DateTimeField(allow_null=True, help_text="When live figures were computed.")
    closed_at = serializers.DateTimeField(allow_null=True)
    total_minutes = serializers.IntegerField(
        help_text="Minutes in the whole period (the month within the contract's term)."
    )
    elapsed_minutes = serializers.IntegerField(help_text="Minutes of the month that have passed.")
    down_minutes = serializers.IntegerField()
    excluded_minutes = serializers.IntegerField()
    uptime_percent = serializers.DecimalField(
        max_digits=12,
        decimal_places=8,
        help_text="(total - down) / total x 100. The month so far: as if no more downtime came before its end.",
    )
    guarantee = serializers.DecimalField(max_digits=6, decimal_places=3)
    below_guarantee = serializers.BooleanField()
    tier_percent = serializers.DecimalField(max_digits=6, decimal_places=3, allow_null=True)
    credit_amount = serializers.SerializerMethodField(help_text="In the currency's minor unit; null: no tier.")
    currency = serializers.CharField()
    credit_kind = serializers.ChoiceField(choices=CreditKind.choices)
    flagged = serializers.BooleanField(help_text="Below the guarantee, in a gap of the credit table: staff review it.")
    breakdown = BreakdownLineOutputSerializer(many=True, source="lines")

    def get_contract(self, figures) -> int:
        return self.context["contract"].pk

    def get_credit_amount(self, figures: MonthFigures) -> str | None:
        return amount(figures.credit_amount, figures.currency)


@extend_schema_serializer(component_name="ClaimAttachment")
class ClaimAttachmentOutputSerializer(AttachmentOutputSerializer):
    download_route, owner_id = "api-claim-attachment-download", "claim_id"


@extend_schema_serializer(component_name="ClaimMonthJudgedAgain")
class ClaimRejudgedOutputSerializer(serializers.Serializer):
    """The claim's month as it is now, judged again after the claim was decided (credits.rejudging)."""

    judged_at = serializers.DateTimeField(source="rejudged_at", help_text="When its credit moved.")
    uptime_percent = serializers.DecimalField(source="rejudged.uptime_percent", max_digits=12, decimal_places=8)
    tier_percent = serializers.DecimalField(
        source="rejudged.tier_percent", max_digits=6, decimal_places=3, allow_null=True
    )
    flagged = serializers.BooleanField(source="rejudged.flagged")
    credit_amount = serializers.SerializerMethodField(help_text="In the currency's minor unit; null: no tier.")

    def get_credit_amount(self, figures: ClaimFigures) -> str | None:
        return amount(figures.rejudged.credit_amount, figures.rejudged.currency)


@extend_schema_serializer(component_name="Claim")
class ClaimOutputSerializer(serializers.Serializer):
    """A claim. Its uptime, tier and flag are the figures it was decided on (or, awaiting review,
    the month's); `month_judged_again` says what its month is worth now where late evidence moved
    its credit after the decision (the claim is not changed; staff review it). `claim_figures` in
    the context: claims_figures of a page of claims, read in one query."""

    id = serializers.IntegerField()
    contract = serializers.IntegerField(source="contract_id")
    contract_reference = serializers.CharField(source="contract.reference")
    month = MonthField(read_only=True, help_text="YYYY-MM.")  # documented as YYYY-MM, not as a date
    status = serializers.ChoiceField(choices=Claim.Status.choices)
    submitted_at = serializers.DateTimeField()
    submitted_by = serializers.CharField(source="submitted_by.get_full_name")
    note = serializers.CharField()
    uptime_percent = serializers.DecimalField(source="figures.uptime_percent", max_digits=12, decimal_places=8)
    guarantee = serializers.DecimalField(source="figures.guarantee", max_digits=6, decimal_places=3)
    tier_percent = serializers.DecimalField(
        source="figures.tier_percent", max_digits=6, decimal_places=3, allow_null=True
    )
    flagged = serializers.BooleanField(source="figures.flagged")
    month_judged_again = serializers.SerializerMethodField(
        help_text="Null unless the month was judged again to another tier or credit after the claim was decided: "
        "what it is worth now. The claim's figures and amounts are those it was decided on."
    )
    eligible_amount = serializers.SerializerMethodField(help_text="The month's credit by its figures; null: none.")
    amount = serializers.SerializerMethodField(help_text="What is credited once approved (staff may adjust it).")
    currency = serializers.CharField()
    credit_kind = serializers.ChoiceField(choices=CreditKind.choices)
    decision_reason = serializers.CharField()
    decided_at = serializers.DateTimeField(allow_null=True)
    settled_at = serializers.DateTimeField(allow_null=True)
    tickets = serializers.SerializerMethodField(help_text="Ids of the linked tickets.")
    attachments = ClaimAttachmentOutputSerializer(many=True, source="attachments.all")

    def to_representation(self, claim: Claim):
        known = self.context.setdefault("claim_figures", {})
        if claim.pk not in known:
            known.update(claims_figures(claims=[claim]))
        claim.figures = known[claim.pk]
        return super().to_representation(claim)

    @extend_schema_field(ClaimRejudgedOutputSerializer(allow_null=True))
    def get_month_judged_again(self, claim: Claim) -> dict | None:
        return ClaimRejudgedOutputSerializer(claim.figures).data if claim.figures.rejudged else None

    def get_tickets(self, claim: Claim) -> list[int]:
        return [t.pk for t in claim.tickets.all()]

    def get_eligible_amount(self, claim: Claim) -> str | None:
        return amount(claim.eligible_amount, claim.currency)

    def get_amount(self, claim: Claim) -> str | None:
        if claim.status not in (Claim.Status.APPROVED, Claim.Status.SETTLED):
            return None
        return amount(claim.amount, claim.currency)


def _claims(user):
    return (
        claims_for_user(user=user)
        .select_related("contract", "monthly_uptime", "submitted_by")
        .prefetch_related("tickets", "attachments")
    )


# --- /contracts/{id}/uptime/ --------------------------------------------------------------------
class ContractUptimeApi(CustomerApi):
    """A contract's month: its closed figures, or the current month so far."""

    @extend_schema_serializer(component_name="UptimeQuery")
    class QuerySerializer(serializers.Serializer):
        month = MonthField(error_messages={"required": "Give the month as ?month=YYYY-MM, e.g. 2026-10."})

    @extend_schema(
        operation_id="contracts_uptime_retrieve",
        tags=TAGS,
        summary="A month's uptime, tier and credit, with what each outage and maintenance window counted",
        parameters=[QuerySerializer],
        responses={
            200: UptimeOutputSerializer,
            400: OpenApiResponse(
                response=VALIDATION_ERROR.response,
                description="`{month: [message]}`: the month is missing or not YYYY-MM, has not started yet, "
                "or the contract did not run in it.",
            ),
            404: CONTRACT_NOT_FOUND,
        },
    )
    def get(self, request, pk: int):
        # Scoping first: another organisation's contract is a 404 whatever the query says.
        contract = one_or_404(contracts_for_user(user=request.user).prefetch_related("services").filter(pk=pk))
        query = self.QuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        try:
            figures = contract_month_figures(contract=contract, month=query.validated_data["month"], now=timezone.now())
        except MonthUnavailable as exc:
            raise serializers.ValidationError({"month": [str(exc)]}) from exc
        return Response(UptimeOutputSerializer(figures, context={"contract": contract}).data)


# --- /claims/ -----------------------------------------------------------------------------------
class OwnContractField(serializers.PrimaryKeyRelatedField):
    """A contract of the user's organisation; anyone else's is refused exactly like an id that was
    never used, with the service's message."""

    default_error_messages = {"does_not_exist": OWN_CONTRACTS}

    def get_queryset(self):
        return contracts_for_user(user=self.context["request"].user)


class OwnTicketField(serializers.PrimaryKeyRelatedField):
    default_error_messages = {"does_not_exist": OWN_TICKETS}

    def get_queryset(self):
        return tickets_for_user(user=self.context["request"].user)


class ClaimListCreateApi(PaginatedApi):
    """Your organisation's claims, newest first; filing a claim."""

    @extend_schema_serializer(component_name="ClaimQuery")
    class QuerySerializer(ListQuery):
        status = serializers.ChoiceField(choices=Claim.Status.choices, required=False)
        contract = id_filter("A contract's id.")
        ordering = ordering_field(
            ["submitted_at", "-submitted_at", "month", "-month"], default="-submitted_at", name="ClaimOrdering"
        )

    query_serializer = QuerySerializer

    @extend_schema_serializer(component_name="ClaimCreate")
    class InputSerializer(StrictInputSerializer):
        contract = OwnContractField(queryset=Contract.objects.none())
        month = MonthField(help_text="The claimed month as YYYY-MM: ended, and within the claim window.")
        note = serializers.CharField(
            max_length=10000, required=False, allow_blank=True, default="", validators=[multi_line]
        )
        tickets = OwnTicketField(
            many=True,
            queryset=Ticket.objects.none(),
            required=False,
            default=list,
            help_text="Ids of your organisation's tickets about the downtime.",
        )

    @extend_schema(
        operation_id="claims_list",
        tags=TAGS,
        summary="Your organisation's claims (newest first unless `ordering` says otherwise)",
        parameters=[QuerySerializer],
        responses={200: ClaimOutputSerializer(many=True), 400: VALIDATION_ERROR},
    )
    def get(self, request):
        query = self.list_query()
        ordering = query.pop("ordering")
        claims = _claims(request.user).filter(**{"contract_id" if k == "contract" else k: v for k, v in query.items()})
        paginator, page = self.paginate(ordered(claims, ordering))
        context = {"request": request, "claim_figures": claims_figures(claims=page)}
        return paginator.get_paginated_response(ClaimOutputSerializer(page, many=True, context=context).data)

    @extend_schema(
        operation_id="claims_create",
        tags=TAGS,
        summary="File a claim for a month (the same checks and messages as the portal)",
        request=InputSerializer,
        responses={
            201: ClaimOutputSerializer,
            400: OpenApiResponse(
                response=VALIDATION_ERROR.response,
                description="`{field: [messages]}`: e.g. `month` has not ended yet, its claims closed (with the "
                "moment), or it was already claimed; `contract` or `tickets` not your organisation's.",
            ),
        },
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            claim = claim_submit(
                contract=data["contract"],
                month=data["month"],
                user=request.user,
                note=data["note"],
                tickets=data["tickets"],
            )
        except ClaimError as exc:
            raise claim_error(exc) from exc
        claim = _claims(request.user).get(pk=claim.pk)
        return Response(ClaimOutputSerializer(claim, context={"request": request}).data, status=status.HTTP_201_CREATED)


# --- /claims/{id}/ ------------------------------------------------------------------------------
class ClaimDetailApi(CustomerApi):
    @extend_schema(
        operation_id="claims_retrieve",
        tags=TAGS,
        summary="A claim with its figures, decision and evidence",
        responses={200: ClaimOutputSerializer, 404: CLAIM_NOT_FOUND},
    )
    def get(self, request, pk: int):
        claim = one_or_404(_claims(request.user).filter(pk=pk))
        return Response(ClaimOutputSerializer(claim, context={"request": request}).data)


# --- /claims/{id}/attachments/ ------------------------------------------------------------------
class ClaimAttachmentsApi(CustomerApi):
    """Evidence added to a claim that awaits review (the portal takes files when the claim is filed;
    the API files the claim first, then its files, one a request)."""

    @extend_schema_serializer(component_name="ClaimAttachmentUpload")
    class InputSerializer(FileUploadInput):
        pass

    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="claim_attachments_create",
        tags=TAGS,
        summary="Add an evidence file to a claim awaiting review (multipart, field `file`)",
        request={"multipart/form-data": InputSerializer},
        responses={201: ClaimAttachmentOutputSerializer, 400: VALIDATION_ERROR, 404: CLAIM_NOT_FOUND},
    )
    def post(self, request, pk: int):
        claim = one_or_404(claims_for_user(user=request.user).filter(pk=pk))
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            [attachment] = claim_attach(claim=claim, user=request.user, files=[serializer.validated_data["file"]])
        except ClaimError as exc:
            raise claim_error(exc) from exc
        return Response(
            ClaimAttachmentOutputSerializer(attachment, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )


# --- /claims/{id}/attachments/{attachment_id}/download/ ---------------------------------------------
class ClaimAttachmentDownloadApi(FileDownloadApi):
    """A claim's evidence file (its `download_url`), with the API's credentials: the portal's link
    takes a login session only. Scoped as the portal's download is (credits.selectors)."""

    @extend_schema(
        operation_id="claim_attachments_download",
        tags=TAGS,
        summary="Download an evidence file of the claim",
        responses={**{(200, kind): FILE_DOWNLOAD for kind in STORED_TYPES}, 404: not_found("file")},
    )
    def get(self, request, pk: int, attachment_id: int):
        scoped = claim_attachments_for_user(user=request.user).filter(pk=attachment_id, claim_id=pk)
        return attachment_response(one_or_404(scoped))
