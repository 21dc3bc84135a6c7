"""Claims: the review queue (awaiting review by default, oldest first; a month that fell in a gap
of the credit table carries a red "gap: review" badge) and the read-only claim page with its
operations (approve, adjust, reject, settle), each calling one service in credits.services."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import Case, Value, When
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from portal.core.roles import sees_security
from portal.domain.formats import in_tz, money, percent
from tickets.attachments import attachment_response
from tickets.models import Ticket

from .. import exports, services
from ..models import Claim, ClaimAttachment, MonthlyUptime
from .base import OperationsAdmin
from .display import admin_link, badge, contract_html, event_summary, gap_badge, month_context, uptime_html
from .filters import ClaimStatusFilter, MonthFilter
from .forms import AdjustForm, BulkRejectForm, RejectForm

# Awaiting review first, then approved (to be credited), credited, rejected.
STATUS_ORDER = Case(
    When(status=Claim.Status.SUBMITTED, then=Value(0)),
    When(status=Claim.Status.APPROVED, then=Value(1)),
    When(status=Claim.Status.SETTLED, then=Value(2)),
    default=Value(3),
)


@admin.register(Claim)
class ClaimAdmin(OperationsAdmin):
    list_display = [
        "claim", "contract_column", "month_column", "uptime", "gap", "guarantee", "tier", "eligible", "amount_column",
        "status_badge", "submitted",
    ]  # fmt: skip
    list_display_links = ["claim"]
    list_filter = [
        ClaimStatusFilter, ("monthly_uptime__flagged", admin.BooleanFieldListFilter),
        ("contract__organisation", admin.RelatedOnlyFieldListFilter), MonthFilter, "credit_kind",
    ]  # fmt: skip
    list_select_related = ["contract__organisation", "monthly_uptime__sla_version"]
    linked_lookups = frozenset({"submitted_at__gte"})  # the staff dashboard: this month's claims
    search_fields = ["contract__reference", "contract__name", "contract__organisation__name"]
    search_help_text = "Contract reference or name, or organisation."
    ordering = [STATUS_ORDER.asc(), "submitted_at"]  # awaiting review first, oldest first
    actions = ["approve_eligible", "settle", "reject_selected", "export_csv"]
    change_form_template = "admin/credits/claim/change_form.html"
    operations = ["approve", "adjust", "reject", "settle"]
    permissions = {
        "approve": "credits.decide_claim",
        "adjust": "credits.decide_claim",
        "reject": "credits.decide_claim",
        "settle": "credits.settle_claim",
    }
    list_title = "Service-credit claims: the review queue"
    fieldsets = [
        (None, {"fields": ["contract_link", "month_column", "status_badge", "submitted_by_at"]}),
        ("Credit", {"fields": ["eligible", "amount_column", "credit_kind", "decision", "settled"]}),
    ]

    def get_queryset(self, request):
        related = ["contract__organisation", "monthly_uptime__sla_version", "submitted_by", "decided_by"]
        return super().get_queryset(request).select_related(*related)

    def csv_response(self, queryset):
        return exports.claims_csv_response(queryset)

    def label(self, obj) -> str:
        return f"Claim #{obj.pk} ({obj.contract.reference}, {obj.month:%Y-%m})"

    # --- Columns ------------------------------------------------------------------------------
    @admin.display(description="Claim", ordering="pk")
    def claim(self, obj):
        return f"#{obj.pk}"

    @admin.display(description="Contract", ordering="contract__reference")
    def contract_column(self, obj):
        return contract_html(obj.contract)

    @admin.display(description="Contract")
    def contract_link(self, obj):
        url = reverse("admin:contracts_contract_change", args=[obj.contract_id])
        c = obj.contract
        return format_html('<a href="{}">{} – {}</a> ({})', url, c.reference, c.name, c.organisation.name)

    @admin.display(description="Month", ordering="month")
    def month_column(self, obj):
        return f"{obj.month:%Y-%m}"

    @admin.display(description="Monthly uptime", ordering="monthly_uptime__uptime_percent")
    def uptime(self, obj):
        return uptime_html(obj.monthly_uptime.uptime_percent)

    @admin.display(description="Guarantee", ordering="monthly_uptime__guarantee")
    def guarantee(self, obj):
        return percent(obj.monthly_uptime.guarantee)

    @admin.display(description="Tier", ordering="monthly_uptime__tier_percent")
    def tier(self, obj):
        return percent(obj.monthly_uptime.tier_percent)

    @admin.display(description="Eligible", ordering="eligible_amount")
    def eligible(self, obj):
        return money(obj.eligible_amount, obj.currency)

    @admin.display(description="Amount", ordering="amount")
    def amount_column(self, obj):
        text = money(obj.amount, obj.currency)
        if obj.amount is not None and obj.amount != obj.eligible_amount:
            return format_html('{} <span class="credit-quiet">(adjusted)</span>', text)
        return text

    @admin.display(description="Status", ordering=STATUS_ORDER)
    def status_badge(self, obj):
        return badge("claim", obj.status, obj.get_status_display())

    @admin.display(description="Gap", ordering="monthly_uptime__flagged")
    def gap(self, obj):
        return gap_badge(obj.monthly_uptime.flagged)

    @admin.display(description="Submitted", ordering="submitted_at")
    def submitted(self, obj):
        return in_tz(obj.submitted_at, obj.monthly_uptime.sla_version.timezone)

    @admin.display(description="Submitted")
    def submitted_by_at(self, obj):
        return f"{self.submitted(obj)} by {obj.submitted_by.get_full_name()} ({obj.submitted_by.email})"

    @admin.display(description="Decision")
    def decision(self, obj):
        if obj.decided_at is None:
            return "—"
        who = obj.decided_by.get_full_name() if obj.decided_by_id else "—"
        when = in_tz(obj.decided_at, obj.monthly_uptime.sla_version.timezone)
        reason = f": {obj.decision_reason}" if obj.decision_reason else ""
        return f"{obj.get_status_display()} {when} by {who}{reason}"

    @admin.display(description="Credited / refunded")
    def settled(self, obj):
        return in_tz(obj.settled_at, obj.monthly_uptime.sla_version.timezone) if obj.settled_at else "—"

    # --- The page -----------------------------------------------------------------------------
    def page_context(self, request, claim: Claim, bound: dict) -> dict:
        month = claim.monthly_uptime
        tickets = [
            (t, admin_link("tickets_ticket_change", t.pk, f"{t.number} {t.subject}"))
            if t.kind != Ticket.Kind.SECURITY or sees_security(request.user)
            else (t, f"{t.number} (vulnerability report)")
            for t in claim.tickets.select_related("organisation")
        ]  # fmt: skip
        return {
            **month_context(month),
            "title": f"Claim #{claim.pk}",
            "subtitle": format_html(
                "{}, {} {} {}",
                claim.contract.reference,
                f"{claim.month:%B %Y}",
                badge("claim", claim.status, claim.get_status_display()),
                gap_badge(month.flagged),
            ),
            "claim": claim,
            "month_link": reverse("admin:credits_monthlyuptime_change", args=[month.pk]),
            "stale": claim.status == Claim.Status.SUBMITTED
            and (month.status == MonthlyUptime.Status.REOPENED or month.credit_amount != claim.eligible_amount),
            "eligible": money(claim.eligible_amount, claim.currency),
            "attachments": [
                (a, self.op_url("attachment", claim, a.pk)) for a in claim.attachments.select_related("uploaded_by")
            ],
            "tickets": tickets,
            "events": [(e, event_summary(e, claim.currency)) for e in claim.events.select_related("actor")],
            "op_forms": {"adjust": AdjustForm(), "reject": RejectForm(), **bound},
        }

    def extra_urls(self):
        return [
            path(
                "<int:object_id>/attachments/<int:attachment_id>/",
                self.admin_site.admin_view(self.attachment_view),
                name=self.url_name("attachment"),
            )
        ]

    def attachment_view(self, request, object_id, attachment_id):
        claim = self.get_object(request, str(object_id))
        if claim is None or not self.has_view_permission(request, claim):
            raise Http404("No such claim.")
        return attachment_response(get_object_or_404(ClaimAttachment, pk=attachment_id, claim=claim))

    # --- The operations: POST only, CSRF-checked and staff-only (admin_view), change permission ---
    def approve_view(self, request, object_id):
        claim, user = self.operation_object(request, object_id, "approve"), request.user

        def call(data):
            services.claim_approve(claim=claim, actor=user)

        return self.run(request, claim, "approve", forms.Form({}), call, "Approved at the eligible amount.")

    def adjust_view(self, request, object_id):
        claim, user = self.operation_object(request, object_id, "adjust"), request.user

        def call(data):
            services.claim_approve(claim=claim, actor=user, amount=data["amount"], reason=data["reason"])

        return self.run(request, claim, "adjust", AdjustForm(request.POST), call, "Approved at the adjusted amount.")

    def reject_view(self, request, object_id):
        claim, user = self.operation_object(request, object_id, "reject"), request.user

        def call(data):
            services.claim_reject(claim=claim, actor=user, reason=data["reason"])

        return self.run(request, claim, "reject", RejectForm(request.POST), call, "Rejected; the customer is told why.")

    def settle_view(self, request, object_id):
        claim, user = self.operation_object(request, object_id, "settle"), request.user

        def call(data):
            services.claim_settle(claim=claim, actor=user)

        return self.run(request, claim, "settle", forms.Form({}), call, "Marked as credited / refunded.")

    # --- Changelist actions -------------------------------------------------------------------
    def has_decide_permission(self, request):
        return request.user.has_perm(self.permissions["approve"])

    def has_settle_permission(self, request):
        return request.user.has_perm(self.permissions["settle"])

    @admin.action(description="Approve at the eligible amount", permissions=["decide"])
    def approve_eligible(self, request, queryset):
        user = request.user
        self.each(request, queryset, "claim(s) approved", lambda c: services.claim_approve(claim=c, actor=user))

    @admin.action(description="Mark as credited/refunded", permissions=["settle"])
    def settle(self, request, queryset):
        user = request.user
        self.each(
            request,
            queryset,
            "claim(s) marked as credited / refunded",
            lambda c: services.claim_settle(claim=c, actor=user),
        )

    @admin.action(description="Reject with a reason…", permissions=["decide"])
    def reject_selected(self, request, queryset):
        claims = list(queryset)
        form = BulkRejectForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            reason, user = form.cleaned_data["reason"], request.user
            self.each(
                request,
                claims,
                "claim(s) rejected",
                lambda c: services.claim_reject(claim=c, actor=user, reason=reason),
            )
            return None
        intro = (
            "These claims will be rejected; each customer is emailed the reason, and it is kept in the claim's audit "
            "trail. Only claims awaiting review can be rejected."
        )
        return self.ask_for_selected(
            request, action="reject_selected", title="Reject claims", submit="Reject", intro=intro, selected=claims,
            form=form,
        )  # fmt: skip
