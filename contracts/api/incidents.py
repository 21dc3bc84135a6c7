"""/api/v1/incidents/: the published incidents that touch the organisation's services (a
customer-scoped one only for the organisation it is scoped to), with their published timelines.
Scoped by contracts.incidents.selectors: another organisation's incident is a 404."""

from __future__ import annotations

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response

from portal.core.api import (
    VALIDATION_ERROR,
    CustomerApi,
    ListQuery,
    PaginatedApi,
    not_found,
    one_or_404,
    ordered,
    ordering_field,
)

from ..choices import Impact
from ..incidents.selectors import incidents_for_user
from ..models import IncidentStatus, IncidentUpdate
from ..selectors import contracts_for_user

TAGS = ["contracts"]


@extend_schema_serializer(component_name="IncidentUpdate")
class IncidentUpdateOutputSerializer(serializers.Serializer):
    number = serializers.IntegerField(help_text="1, 2, ... in the incident's timeline.")
    status = serializers.ChoiceField(choices=IncidentStatus.choices)
    body = serializers.CharField()
    published_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="Incident")
class IncidentOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    status = serializers.ChoiceField(choices=IncidentStatus.choices, help_text="Its latest update's.")
    impact = serializers.SerializerMethodField(
        help_text="The worst of its impacts on your services (Outage.impact_on), as your pages and emails say."
    )
    outage = serializers.IntegerField(source="outage_id", help_text="The outage it publishes (/api/v1/outages/).")
    started_at = serializers.DateTimeField(source="outage.starts_at")
    ended_at = serializers.DateTimeField(source="outage.ends_at", allow_null=True)
    published_at = serializers.DateTimeField()
    resolved_at = serializers.DateTimeField(allow_null=True)
    services = serializers.SerializerMethodField(help_text="Ids of your services it touches.")
    updates = IncidentUpdateOutputSerializer(many=True, source="published_updates")

    @extend_schema_field(serializers.ChoiceField(choices=Impact.choices))
    def get_impact(self, incident) -> str:
        return incident.outage.impact_on(self.context["service_ids"]).value

    def get_services(self, incident) -> list[int]:
        return sorted({s.pk for s in incident.outage.services.all()} & self.context["service_ids"])


def _loaded(qs):
    published = IncidentUpdate.objects.filter(published_at__isnull=False).order_by("number")
    return qs.select_related("outage").prefetch_related(
        "outage__services", Prefetch("updates", queryset=published, to_attr="published_updates")
    )


def _context(request) -> dict:
    return {"service_ids": set(contracts_for_user(user=request.user).values_list("services", flat=True)) - {None}}


class IncidentListApi(PaginatedApi):
    @extend_schema_serializer(component_name="IncidentQuery")
    class QuerySerializer(ListQuery):
        status = serializers.ChoiceField(choices=IncidentStatus.choices, required=False)
        open = serializers.BooleanField(required=False, help_text="true: only those not resolved; false: resolved.")
        ordering = ordering_field(["published_at", "-published_at"], default="-published_at", name="IncidentOrdering")

    query_serializer = QuerySerializer

    @extend_schema(
        operation_id="incidents_list",
        tags=TAGS,
        summary="Incidents that touch your services, with their published updates (latest first)",
        parameters=[QuerySerializer],
        responses={200: IncidentOutputSerializer(many=True), 400: VALIDATION_ERROR},
    )
    def get(self, request):
        query = self.list_query()
        incidents = incidents_for_user(user=request.user)
        if "status" in query:
            incidents = incidents.filter(status=query["status"])
        if "open" in query:
            incidents = incidents.filter(resolved_at__isnull=query["open"])
        paginator, page = self.paginate(ordered(_loaded(incidents), query["ordering"]))
        return paginator.get_paginated_response(
            IncidentOutputSerializer(page, many=True, context=_context(request)).data
        )


class IncidentDetailApi(CustomerApi):
    @extend_schema(
        operation_id="incidents_retrieve",
        tags=TAGS,
        summary="An incident that touches your services, with its published updates",
        responses={200: IncidentOutputSerializer, 404: not_found("incident")},
    )
    def get(self, request, pk: int):
        incident = one_or_404(_loaded(incidents_for_user(user=request.user)).filter(pk=pk))
        return Response(IncidentOutputSerializer(incident, context=_context(request)).data)
