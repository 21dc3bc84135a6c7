"""What the contracts API returns. A contract comes with the terms of its SLA version in force
(guarantee, priorities with their meaning and clocks, the escalation ladder with its contacts, the
credit table), loaded for a whole page at once (contracts.selectors.terms_in_force)."""

from __future__ import annotations

from datetime import timedelta

from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from portal.domain.formats import amount

from ..choices import Cause, Channel, CreditKind, Priority
from ..models import Contract, EscalationLevel, MaintenanceWindow, SLAVersion
from ..outage_reach import outage_reach
from ..selectors import level_contact


def seconds(value: timedelta | None) -> int | None:
    return None if value is None else int(value.total_seconds())


@extend_schema_serializer(component_name="PriorityTerms")
class PriorityTermOutputSerializer(serializers.Serializer):
    priority = serializers.ChoiceField(choices=Priority.choices)
    meaning = serializers.CharField(help_text="What the priority means: shown when filing.")
    clock = serializers.CharField(source="calendar.name", help_text="The clock of first response and escalation.")
    clock_always_open = serializers.BooleanField(source="calendar.always_open", help_text="24x7.")
    resolution_clock = serializers.CharField(source="resolution_clock.name")
    first_response_seconds = serializers.SerializerMethodField(help_text="Working time on `clock`.")
    resolution_target_seconds = serializers.SerializerMethodField(help_text="Passing it warns.")
    resolution_limit_seconds = serializers.SerializerMethodField(help_text="Passing it breaches.")

    def get_first_response_seconds(self, term) -> int:
        return seconds(term.first_response)

    def get_resolution_target_seconds(self, term) -> int:
        return seconds(term.resolution_target)

    def get_resolution_limit_seconds(self, term) -> int:
        return seconds(term.resolution_limit)


@extend_schema_serializer(component_name="EscalationDwell")
class DwellOutputSerializer(serializers.Serializer):
    priority = serializers.ChoiceField(choices=Priority.choices)
    dwell_seconds = serializers.IntegerField(help_text="How long a ticket stays at the level, on the priority's clock.")


@extend_schema_serializer(component_name="EscalationLevel")
class EscalationLevelOutputSerializer(serializers.Serializer):
    level = serializers.IntegerField()
    channel = serializers.ChoiceField(choices=Channel.choices)
    instruction = serializers.CharField(help_text="What to do at this level, e.g. “Call your Account Manager”.")
    contact = serializers.SerializerMethodField(help_text="Whom to reach, and how; empty: nobody holds the role yet.")
    dwells = serializers.SerializerMethodField()

    def get_contact(self, level: EscalationLevel) -> str:
        _, contact = level_contact(
            level=level, organisation=self.context["organisation"], staff_by_role=self.context["staff_by_role"]
        )
        return contact

    @extend_schema_field(DwellOutputSerializer(many=True))
    def get_dwells(self, level: EscalationLevel) -> list[dict]:
        version = self.context["version"]
        return [
            {"priority": d.priority, "dwell_seconds": seconds(d.dwell)}
            for d in version.escalation_dwells.all()
            if d.level == level.level
        ]


@extend_schema_serializer(component_name="CreditTier")
class CreditTierOutputSerializer(serializers.Serializer):
    lower = serializers.DecimalField(max_digits=6, decimal_places=3, allow_null=True, help_text="Null: no lower bound.")
    lower_inclusive = serializers.BooleanField()
    upper = serializers.DecimalField(max_digits=6, decimal_places=3, allow_null=True, help_text="Null: no upper bound.")
    upper_inclusive = serializers.BooleanField()
    percent = serializers.DecimalField(max_digits=6, decimal_places=3, help_text="Of the month's invoice.")


@extend_schema_serializer(component_name="SlaTerms")
class TermsOutputSerializer(serializers.Serializer):
    sla = serializers.CharField(source="sla.name")
    vendor = serializers.CharField(source="sla.vendor")
    version = serializers.IntegerField(source="number")
    effective_from = serializers.DateTimeField()
    change_summary = serializers.CharField()
    uptime_guarantee = serializers.DecimalField(max_digits=6, decimal_places=3, help_text="Percent a month.")
    timezone = serializers.CharField(help_text="Months, off-peak hours and the annual cap run in it.")
    business_hours = serializers.CharField(source="business_calendar.name")
    credit_kind = serializers.ChoiceField(choices=CreditKind.choices)
    claim_window_days = serializers.IntegerField(help_text="Claims close this many days after the month's end.")
    maintenance_notice_seconds = serializers.SerializerMethodField()
    offpeak_start = serializers.SerializerMethodField(
        help_text="HH:MM, local time: maintenance is kept inside off-peak hours; may be after offpeak_end (22:00-06:00)."
    )
    offpeak_end = serializers.SerializerMethodField(help_text="HH:MM, local time.")
    maintenance_annual_cap_seconds = serializers.SerializerMethodField()
    escalation_ack_seconds = serializers.SerializerMethodField(
        help_text="An escalation request is acknowledged within it; null: the priority's first response applies."
    )
    exclusion_causes = serializers.ListField(
        child=serializers.ChoiceField(choices=Cause.choices), help_text="Causes whose downtime is excluded."
    )
    priorities = PriorityTermOutputSerializer(many=True, source="priorities.all")
    escalation_ladder = serializers.SerializerMethodField()
    credit_tiers = CreditTierOutputSerializer(many=True, source="credit_tiers.all")

    def get_maintenance_notice_seconds(self, version: SLAVersion) -> int:
        return seconds(version.maintenance_notice)

    def get_offpeak_start(self, version: SLAVersion) -> str:
        return f"{version.offpeak_start:%H:%M}"

    def get_offpeak_end(self, version: SLAVersion) -> str:
        return f"{version.offpeak_end:%H:%M}"

    def get_maintenance_annual_cap_seconds(self, version: SLAVersion) -> int:
        return seconds(version.maintenance_annual_cap)

    def get_escalation_ack_seconds(self, version: SLAVersion) -> int | None:
        return seconds(version.escalation_ack_time)

    @extend_schema_field(EscalationLevelOutputSerializer(many=True))
    def get_escalation_ladder(self, version: SLAVersion) -> list[dict]:
        context = {**self.context, "version": version}
        return EscalationLevelOutputSerializer(version.escalation_levels.all(), many=True, context=context).data


@extend_schema_serializer(component_name="Contract")
class ContractOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reference = serializers.CharField()
    name = serializers.CharField()
    starts_on = serializers.DateField()
    ends_on = serializers.DateField(allow_null=True)
    services = serializers.SerializerMethodField(help_text="Ids of the services it covers.")
    monthly_invoice_amount = serializers.SerializerMethodField(help_text="In the currency's minor unit.")
    currency = serializers.CharField()
    terms = serializers.SerializerMethodField(help_text="The SLA version in force now; null: none published yet.")

    def get_services(self, contract: Contract) -> list[int]:
        return [s.pk for s in contract.services.all()]

    def get_monthly_invoice_amount(self, contract: Contract) -> str:
        return amount(contract.monthly_invoice_amount, contract.currency)

    @extend_schema_field(TermsOutputSerializer(allow_null=True))
    def get_terms(self, contract: Contract) -> dict | None:
        version = self.context["terms"].get(contract.sla_id)
        if version is None:
            return None
        context = {**self.context, "organisation": contract.organisation}
        return TermsOutputSerializer(version, context=context).data


@extend_schema_serializer(component_name="Service")
class ServiceOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()
    description = serializers.CharField()
    contracts = serializers.SerializerMethodField(help_text="Ids of your contracts that cover it.")

    def get_contracts(self, service) -> list[int]:
        return sorted(pk for pk, sids in self.context["contract_services"].items() if service.pk in sids)


class _Touching(serializers.Serializer):
    """A window's or an outage's services and contracts: the organisation's only."""

    services = serializers.SerializerMethodField(help_text="Ids of your services it touches.")
    contracts = serializers.SerializerMethodField(help_text="Ids of your contracts whose services it touches.")

    def _sids(self, obj) -> set[int]:
        return {s.pk for s in obj.services.all()} & self.context["service_ids"]

    def get_services(self, obj) -> list[int]:
        return sorted(self._sids(obj))

    def get_contracts(self, obj) -> list[int]:
        sids = self._sids(obj)
        return sorted(pk for pk, theirs in self.context["contract_services"].items() if sids & theirs)


@extend_schema_serializer(component_name="MaintenanceWindow")
class WindowOutputSerializer(_Touching):
    id = serializers.IntegerField()
    title = serializers.CharField()
    description = serializers.CharField()
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    impact = serializers.ChoiceField(choices=MaintenanceWindow.Impact.choices)
    status = serializers.ChoiceField(choices=MaintenanceWindow.Status.choices)
    revision = serializers.IntegerField(help_text="Each change of time or services is a new revision, with a notice.")
    published_at = serializers.DateTimeField(help_text="When this revision was published.")
    cancelled_at = serializers.DateTimeField(allow_null=True)


@extend_schema_serializer(component_name="OutageUpdate")
class OutageUpdateOutputSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    body = serializers.CharField()


@extend_schema_serializer(component_name="Outage")
class OutageOutputSerializer(_Touching):
    """An outage names only the contracts it affects, and their services (contracts.outage_reach): a
    customer-scoped one, or a partial impact, only the contracts staff scoped it to. The context's
    `scopes` holds the scoped contracts of the outages whose scope matters (outage_reach.scopes_of)."""

    services = serializers.SerializerMethodField(help_text="Ids of your services it affects.")
    contracts = serializers.SerializerMethodField(
        help_text="Ids of your contracts it affects: those on its services, except that a customer-scoped outage "
        "(or a partial outage of a service) affects only the contracts it is scoped to."
    )
    id = serializers.IntegerField()
    title = serializers.CharField()
    description = serializers.CharField()
    cause = serializers.ChoiceField(
        choices=Cause.choices, help_text="A contract excludes the minutes of a cause its terms list."
    )
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField(allow_null=True, help_text="Null: still going on.")
    ongoing = serializers.SerializerMethodField()
    updates = OutageUpdateOutputSerializer(many=True, source="updates.all")

    def get_ongoing(self, outage) -> bool:
        return outage.ends_at is None

    def _reach(self, outage) -> dict[int, set[int]]:
        services = [s.pk for s in outage.services.all()]
        scoped = self.context["scopes"].get(outage.pk, ())
        return outage_reach(outage, services, self.context["contract_services"], scoped)

    def get_services(self, outage) -> list[int]:
        return sorted(set().union(*self._reach(outage).values()))

    def get_contracts(self, outage) -> list[int]:
        return sorted(self._reach(outage))
