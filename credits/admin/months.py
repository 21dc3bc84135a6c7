"""Monthly uptime: the closed months per contract, and the read-only month page with its one
operation (reopen), calling credits.services."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html

from portal.domain.formats import in_tz, money, percent

from .. import exports, services
from ..models import MonthlyUptime
from .base import OperationsAdmin
from .display import admin_link, badge, contract_html, gap_badge, month_context, uptime_html, uptime_text
from .filters import MonthFilter
from .forms import ReopenForm


@admin.register(MonthlyUptime)
class MonthlyUptimeAdmin(OperationsAdmin):
    list_display = [
        "contract_column", "month_column", "uptime", "gap", "guarantee_column", "tier", "credit", "status_badge", "closed",
    ]  # fmt: skip
    list_display_links = ["contract_column"]
    list_filter = [
        MonthFilter, "flagged", "status", ("contract__organisation", admin.RelatedOnlyFieldListFilter)
    ]  # fmt: skip
    list_select_related = ["contract__organisation", "sla_version"]
    search_fields = ["contract__reference", "contract__name", "contract__organisation__name"]
    ordering = ["-month", "-flagged", "contract__reference"]
    actions = ["export_csv"]
    change_form_template = "admin/credits/monthlyuptime/change_form.html"
    operations = ["reopen"]
    permissions = {"reopen": "credits.reopen_monthlyuptime"}
    list_title = "Monthly uptime: closed months per contract"
    fieldsets = [(None, {"fields": ["contract_column", "month_column", "status_badge", "sla_version", "closed"]})]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("contract__organisation", "sla_version")

    def csv_response(self, queryset):
        return exports.uptime_csv_response(queryset)

    @admin.display(description="Contract", ordering="contract__reference")
    def contract_column(self, obj):
        return contract_html(obj.contract)

    @admin.display(description="Month", ordering="month")
    def month_column(self, obj):
        return f"{obj.month:%Y-%m}"

    @admin.display(description="Uptime", ordering="uptime_percent")
    def uptime(self, obj):
        return uptime_html(obj.uptime_percent)

    @admin.display(description="Guarantee", ordering="guarantee")
    def guarantee_column(self, obj):
        return percent(obj.guarantee)

    @admin.display(description="Tier", ordering="tier_percent")
    def tier(self, obj):
        return percent(obj.tier_percent)

    @admin.display(description="Credit", ordering="credit_amount")
    def credit(self, obj):
        return money(obj.credit_amount, obj.currency)

    @admin.display(description="Gap", ordering="flagged")
    def gap(self, obj):
        return gap_badge(obj.flagged)

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj):
        return badge("month", obj.status, obj.get_status_display())

    @admin.display(description="Closed", ordering="closed_at")
    def closed(self, obj):
        return in_tz(obj.closed_at, obj.sla_version.timezone)

    def page_context(self, request, month: MonthlyUptime, bound: dict) -> dict:
        claims = month.claims.all()
        return {
            **month_context(month),
            "title": f"{month.contract.reference}, {month.month:%B %Y}",
            "subtitle": format_html(
                "{}: {} {} {}",
                month.contract.name,
                uptime_text(month.uptime_percent),
                badge("month", month.status, month.get_status_display()),
                gap_badge(month.flagged),
            ),
            "claims": [(c, admin_link("credits_claim_change", c.pk, f"#{c.pk}")) for c in claims],
            "op_forms": {"reopen": ReopenForm(), **bound},
        }

    def reopen_view(self, request, object_id):
        month, user = self.operation_object(request, object_id, "reopen"), request.user

        def call(data):
            services.month_reopen(monthly_uptime=month, actor=user, reason=data["reason"])

        text = "Reopened: the next month-end run closes it again with fresh figures."
        return self.run(request, month, "reopen", ReopenForm(request.POST), call, text)
