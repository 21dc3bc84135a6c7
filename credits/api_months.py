"""/api/v1/months/: the organisation's months closed by the month-end run, one row per contract and
month, with their uptime, tier and credit (the figures of credits.models.MonthlyUptime, as the
uptime page shows them). The current month so far, and one month with its breakdown:
/api/v1/contracts/{id}/uptime/?month=YYYY-MM (credits.api)."""

from __future__ import annotations

from django.db.models import F, OuterRef, Subquery
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers

from contracts.choices import CreditKind
from portal.core.api import VALIDATION_ERROR, ListQuery, PaginatedApi, id_filter, ordered, ordering_field
from portal.domain.formats import amount

from .api import TAGS, MonthField
from .models import Claim, MonthlyUptime
from .selectors import months_for_user


@extend_schema_serializer(component_name="Month")
class MonthOutputSerializer(serializers.Serializer):
    contract = serializers.IntegerField(source="contract_id")
    month = MonthField(read_only=True, help_text="YYYY-MM, in the contract's timezone.")
    status = serializers.ChoiceField(
        choices=MonthlyUptime.Status.choices,
        help_text="`reopened`: evidence changed; these are the figures it was last closed with, until it is closed "
        "again.",
    )
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField()
    total_minutes = serializers.IntegerField()
    down_minutes = serializers.IntegerField()
    excluded_minutes = serializers.IntegerField()
    uptime_percent = serializers.DecimalField(max_digits=12, decimal_places=8)
    guarantee = serializers.DecimalField(max_digits=6, decimal_places=3)
    below_guarantee = serializers.BooleanField()
    tier_percent = serializers.DecimalField(max_digits=6, decimal_places=3, allow_null=True)
    credit_amount = serializers.SerializerMethodField(help_text="In the currency's minor unit; null: no tier.")
    currency = serializers.CharField()
    credit_kind = serializers.ChoiceField(choices=CreditKind.choices)
    flagged = serializers.BooleanField(help_text="Below the guarantee, in a gap of the credit table: staff review it.")
    closed_at = serializers.DateTimeField()
    claim = serializers.IntegerField(source="claim_id", allow_null=True, help_text="The claim filed for it, if any.")

    def get_credit_amount(self, row: MonthlyUptime) -> str | None:
        return amount(row.credit_amount, row.currency)


class MonthListApi(PaginatedApi):
    """The months closed so far for your organisation's contracts."""

    @extend_schema_serializer(component_name="MonthQuery")
    class QuerySerializer(ListQuery):
        contract = id_filter("A contract's id.")
        since = MonthField(required=False, help_text="From this month on (YYYY-MM).")
        until = MonthField(required=False, help_text="Up to and including this month (YYYY-MM).")
        below_guarantee = serializers.BooleanField(required=False)
        ordering = ordering_field(
            ["month", "-month", "uptime_percent", "-uptime_percent"], default="-month", name="MonthOrdering"
        )

    query_serializer = QuerySerializer

    @extend_schema(
        operation_id="months_list",
        tags=TAGS,
        summary="Closed months per contract: uptime, tier and credit (latest first unless `ordering` says otherwise)",
        parameters=[QuerySerializer],
        responses={200: MonthOutputSerializer(many=True), 400: VALIDATION_ERROR},
    )
    def get(self, request):
        query = self.list_query()
        rows = months_for_user(user=request.user)
        if "contract" in query:
            rows = rows.filter(contract_id=query["contract"])
        if "since" in query:
            rows = rows.filter(month__gte=query["since"])
        if "until" in query:
            rows = rows.filter(month__lte=query["until"])
        if "below_guarantee" in query:
            below = {"uptime_percent__lt": F("guarantee")}
            rows = rows.filter(**below) if query["below_guarantee"] else rows.exclude(**below)
        claims = Claim.objects.filter(contract_id=OuterRef("contract_id"), month=OuterRef("month"))
        rows = rows.annotate(claim_id=Subquery(claims.values("pk")[:1])).defer("breakdown")
        paginator, page = self.paginate(ordered(rows, query["ordering"]))
        return paginator.get_paginated_response(MonthOutputSerializer(page, many=True).data)
