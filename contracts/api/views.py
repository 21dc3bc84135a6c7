"""The customer API of what an organisation has: its contracts with their terms in force, its
services, the maintenance windows and outages that touch them (/api/v1/contracts/, services/,
maintenance-windows/, outages/). Read only; scoped by contracts.selectors (another organisation's
object is a 404). Every list is paginated, filtered and ordered the same way (portal.core.api)."""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response

from portal.core.api import (
    VALIDATION_ERROR,
    CustomerApi,
    ListQuery,
    PaginatedApi,
    id_filter,
    not_found,
    one_or_404,
    ordered,
    ordering_field,
)

from ..choices import Cause
from ..models import MaintenanceWindow
from ..outage_reach import contract_services_for_user, outages_reaching, scopes_of
from ..selectors import (
    contracts_for_user,
    outages_for_user,
    services_for_user,
    staff_by_role_once,
    terms_in_force,
    windows_for_user,
)
from .outputs import ContractOutputSerializer, OutageOutputSerializer, ServiceOutputSerializer, WindowOutputSerializer

TAGS = ["contracts"]


def _contracts(user):
    return (
        contracts_for_user(user=user)
        .select_related("organisation__account_manager", "organisation__solutions_manager")
        .prefetch_related("services")
    )


def _contract_context(contracts, request) -> dict:
    return {
        "request": request,
        "terms": terms_in_force(sla_ids=[c.sla_id for c in contracts], at=timezone.now()),
        "staff_by_role": staff_by_role_once(),
    }


def _touching_context(request, outages=()) -> dict:
    """Which services each of the organisation's contracts covers (one query): a window or an outage
    names only the organisation's services and contracts; an outage only those it affects, read with
    the scope of `outages` where it matters (contracts.outage_reach: a query only then)."""
    contract_services = contract_services_for_user(user=request.user)
    return {
        "contract_services": contract_services,
        "service_ids": set().union(*contract_services.values()),
        "scopes": scopes_of(outages),
    }


class _ContractFilter(ListQuery):
    contract = id_filter("Only those of this contract.")
    service = id_filter("Only those of this service.")


def _by_contract_and_service(queryset, query: dict, request):
    """A window list narrowed to a contract's services and/or a service of the organisation's (another
    organisation's contract or service finds nothing, as an id never used does)."""
    if "contract" in query:
        sids = contracts_for_user(user=request.user).filter(pk=query["contract"]).values("services")
        queryset = queryset.filter(services__in=sids)
    if "service" in query:
        queryset = queryset.filter(services__in=services_for_user(user=request.user).filter(pk=query["service"]))
    return queryset.distinct() if {"contract", "service"} & query.keys() else queryset


# --- /contracts/ ----------------------------------------------------------------------------------
class ContractListApi(PaginatedApi):
    @extend_schema_serializer(component_name="ContractQuery")
    class QuerySerializer(ListQuery):
        service = id_filter("Only contracts covering it.")
        ordering = ordering_field(
            ["reference", "-reference", "starts_on", "-starts_on"], default="reference", name="ContractOrdering"
        )

    query_serializer = QuerySerializer

    @extend_schema(
        operation_id="contracts_list",
        tags=TAGS,
        summary="Your organisation's contracts, each with the terms of its SLA version in force",
        parameters=[QuerySerializer],
        responses={200: ContractOutputSerializer(many=True), 400: VALIDATION_ERROR},
    )
    def get(self, request):
        query = self.list_query()
        contracts = _contracts(request.user)
        if "service" in query:
            contracts = contracts.filter(services=query["service"])
        paginator, page = self.paginate(ordered(contracts, query["ordering"]))
        data = ContractOutputSerializer(page, many=True, context=_contract_context(page, request)).data
        return paginator.get_paginated_response(data)


class ContractDetailApi(CustomerApi):
    @extend_schema(
        operation_id="contracts_retrieve",
        tags=TAGS,
        summary="A contract with the terms of its SLA version in force",
        responses={200: ContractOutputSerializer, 404: not_found("contract")},
    )
    def get(self, request, pk: int):
        contract = one_or_404(_contracts(request.user).filter(pk=pk))
        return Response(ContractOutputSerializer(contract, context=_contract_context([contract], request)).data)


# --- /services/ -----------------------------------------------------------------------------------
class ServiceListApi(PaginatedApi):
    @extend_schema_serializer(component_name="ServiceQuery")
    class QuerySerializer(ListQuery):
        contract = id_filter("Only those this contract covers.")
        ordering = ordering_field(["name", "-name"], default="name", name="ServiceOrdering")

    query_serializer = QuerySerializer

    @extend_schema(
        operation_id="services_list",
        tags=TAGS,
        summary="The services your organisation's contracts cover",
        parameters=[QuerySerializer],
        responses={200: ServiceOutputSerializer(many=True), 400: VALIDATION_ERROR},
    )
    def get(self, request):
        query = self.list_query()
        services = services_for_user(user=request.user)
        if "contract" in query:
            services = services.filter(contracts__in=contracts_for_user(user=request.user).filter(pk=query["contract"]))
        paginator, page = self.paginate(ordered(services, query["ordering"]))
        return paginator.get_paginated_response(
            ServiceOutputSerializer(page, many=True, context=_touching_context(request)).data
        )


class ServiceDetailApi(CustomerApi):
    @extend_schema(
        operation_id="services_retrieve",
        tags=TAGS,
        summary="A service your organisation has",
        responses={200: ServiceOutputSerializer, 404: not_found("service")},
    )
    def get(self, request, pk: int):
        service = one_or_404(services_for_user(user=request.user).filter(pk=pk))
        return Response(ServiceOutputSerializer(service, context=_touching_context(request)).data)


# --- /maintenance-windows/ --------------------------------------------------------------------------
class WindowListApi(PaginatedApi):
    @extend_schema_serializer(component_name="MaintenanceWindowQuery")
    class QuerySerializer(_ContractFilter):
        status = serializers.ChoiceField(choices=MaintenanceWindow.Status.choices, required=False)
        impact = serializers.ChoiceField(choices=MaintenanceWindow.Impact.choices, required=False)
        ends_after = serializers.DateTimeField(required=False, help_text="Only windows ending after this moment.")
        ordering = ordering_field(["starts_at", "-starts_at"], default="-starts_at", name="MaintenanceWindowOrdering")

    query_serializer = QuerySerializer

    @extend_schema(
        operation_id="maintenance_windows_list",
        tags=TAGS,
        summary="Maintenance windows that touch your services (latest first unless `ordering` says otherwise)",
        parameters=[QuerySerializer],
        responses={200: WindowOutputSerializer(many=True), 400: VALIDATION_ERROR},
    )
    def get(self, request):
        query = self.list_query()
        windows = _by_contract_and_service(windows_for_user(user=request.user), query, request)
        windows = windows.filter(**{k: query[k] for k in ("status", "impact") if k in query})
        if "ends_after" in query:
            windows = windows.filter(ends_at__gt=query["ends_after"])
        windows = ordered(windows.prefetch_related("services"), query["ordering"])
        paginator, page = self.paginate(windows)
        return paginator.get_paginated_response(
            WindowOutputSerializer(page, many=True, context=_touching_context(request)).data
        )


class WindowDetailApi(CustomerApi):
    @extend_schema(
        operation_id="maintenance_windows_retrieve",
        tags=TAGS,
        summary="A maintenance window that touches your services",
        responses={200: WindowOutputSerializer, 404: not_found("maintenance window")},
    )
    def get(self, request, pk: int):
        window = one_or_404(windows_for_user(user=request.user).prefetch_related("services").filter(pk=pk))
        return Response(WindowOutputSerializer(window, context=_touching_context(request)).data)


# --- /outages/ --------------------------------------------------------------------------------------
class OutageListApi(PaginatedApi):
    @extend_schema_serializer(component_name="OutageQuery")
    class QuerySerializer(_ContractFilter):
        cause = serializers.ChoiceField(choices=Cause.choices, required=False)
        ongoing = serializers.BooleanField(required=False, help_text="true: only those not ended; false: only ended.")
        ends_after = serializers.DateTimeField(
            required=False, help_text="Only outages ending after this moment (or still going on)."
        )
        ordering = ordering_field(["starts_at", "-starts_at"], default="-starts_at", name="OutageOrdering")

    query_serializer = QuerySerializer

    @extend_schema(
        operation_id="outages_list",
        tags=TAGS,
        summary="Outages that touch your services, with their public updates (latest first unless `ordering` "
        "says otherwise)",
        parameters=[QuerySerializer],
        responses={200: OutageOutputSerializer(many=True), 400: VALIDATION_ERROR},
    )
    def get(self, request):
        query = self.list_query()
        outages = outages_for_user(user=request.user)
        if {"contract", "service"} & query.keys():  # those it affects (a customer-scoped one: its contracts)
            outages = outages_reaching(outages, user=request.user, contract=query.get("contract"),
                                       service=query.get("service"))  # fmt: skip
        if "cause" in query:
            outages = outages.filter(cause=query["cause"])
        if "ongoing" in query:
            outages = outages.filter(ends_at__isnull=query["ongoing"])
        if "ends_after" in query:
            outages = outages.filter(Q(ends_at__isnull=True) | Q(ends_at__gt=query["ends_after"]))
        outages = ordered(outages.prefetch_related("services", "updates"), query["ordering"])
        paginator, page = self.paginate(outages)
        return paginator.get_paginated_response(
            OutageOutputSerializer(page, many=True, context=_touching_context(request, page)).data
        )


class OutageDetailApi(CustomerApi):
    @extend_schema(
        operation_id="outages_retrieve",
        tags=TAGS,
        summary="An outage that touches your services, with its public updates",
        responses={200: OutageOutputSerializer, 404: not_found("outage")},
    )
    def get(self, request, pk: int):
        outage = one_or_404(outages_for_user(user=request.user).prefetch_related("services", "updates").filter(pk=pk))
        return Response(OutageOutputSerializer(outage, context=_touching_context(request, [outage])).data)
