"""The staff side of credits, in the Django admin.

- The Claim changelist is the review queue: awaiting review by default, oldest first; a month that
  fell in a gap of the credit table carries a red "gap: review" badge (and its row stands out).
- The claim page and the month page are read-only: the month's figures and breakdown, the audit,
  and one small POST form per staff operation (approve, adjust, reject, settle; reopen a month),
  each calling one service in credits.services. Nothing here changes a claim or a month by itself.
- Claims and monthly uptime export as CSV (credits.exports): the selected rows (an action) or the
  changelist as filtered (a link beside the list).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Case, Value, When
from django.http import FileResponse, Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from portal.core.admin_operations import OperationsMixin
from portal.core.roles import sees_security
from portal.domain import formats
from portal.domain.formats import in_tz, money, percent
from tickets.models import Ticket

from . import exports, services
from .models import Claim, ClaimAttachment, ClaimEvent, MonthlyUptime
from .selectors import breakdown_lines
from .services import ClaimError

# Awaiting review first, then approved (to be credited), credited, rejected.
STATUS_ORDER = Case(
    When(status=Claim.Status.SUBMITTED, then=Value(0)),
    When(status=Claim.Status.APPROVED, then=Value(1)),
    When(status=Claim.Status.SETTLED, then=Value(2)),
    default=Value(3),
)


# --- Small pieces of HTML and text shared by both admins ----------------------------------------
def badge(kind: str, value: str, label: str, title: str = ""):
    return format_html('<span class="credit-badge {}-{}" title="{}">{}</span>', kind, value, title, label)


def gap_badge(flagged: bool):
    if not flagged:
        return ""
    return badge("credit", "gap", "gap: review", "Below the guarantee, in a gap of the credit table: no tier applies")


def uptime_text(value: Decimal | None) -> str:
    """98.880%: three decimals, as the customer's email shows it (the exact figure is a tooltip)."""
    return formats.percent(value, places=3)


def uptime_html(value: Decimal):
    return format_html('<span title="{}">{}</span>', formats.percent(value), uptime_text(value))


def contract_html(contract):
    return format_html(
        '<strong title="{}">{}</strong><br><span class="credit-quiet">{}</span>',
        contract.name,
        contract.reference,
        contract.organisation.name,
    )


def amount_of(text, currency: str) -> str:
    """An amount stored as text in an audit row ("None" where there was none)."""
    return "—" if text in (None, "", "None") else money(Decimal(text), currency)


def admin_link(name: str, pk, text: str):
    try:
        return format_html('<a href="{}">{}</a>', reverse(f"admin:{name}", args=[pk]), text)
    except NoReverseMatch:
        return text


def breakdown_rows(month: MonthlyUptime) -> list[dict]:
    """The month's breakdown (credits.selectors.breakdown_lines: the minutes as closed, titles and
    times read now) in the page's terms: what, when (contract time), why, and its minutes counted
    as downtime or excluded."""
    tz, rows = month.sla_version.timezone, []
    for line in breakdown_lines(row=month):
        outage = line.kind == "outage"
        change = "contracts_outage_change" if outage else "contracts_maintenancewindow_change"
        end = "ongoing" if line.ongoing else in_tz(line.end, tz)
        rows.append({
            "kind": "Outage" if outage else "Maintenance", "link": admin_link(change, line.id, line.title),
            "when": f"{in_tz(line.start, tz)} – {end}" if line.start else "—", "cause": line.cause_label,
            "counted": line.down_minutes, "excluded": line.excluded_minutes, "reason": line.reason,
        })  # fmt: skip
    return rows


def event_summary(event: ClaimEvent, currency: str) -> str:
    data = event.data or {}
    if event.kind == ClaimEvent.Kind.ADJUSTED:
        change = f"{amount_of(data.get('from'), currency)} → {amount_of(data.get('to'), currency)}"
        return f"{change}: {data.get('reason', '')}"
    if event.kind == ClaimEvent.Kind.APPROVED:
        return amount_of(data.get("amount"), currency)
    if event.kind == ClaimEvent.Kind.REJECTED:
        return data.get("reason", "")
    return ", ".join(f"{k}: {v}" for k, v in data.items())


def month_context(month: MonthlyUptime) -> dict:
    return {
        "month": month,
        "tz": month.sla_version.timezone,
        "uptime": uptime_text(month.uptime_percent),
        "uptime_exact": formats.percent(month.uptime_percent),
        "gap": gap_badge(month.flagged),
        "month_status": badge("month", month.status, month.get_status_display()),
        "breakdown": breakdown_rows(month),
        "reopenings": month.reopenings.select_related("actor"),
    }


# --- Filters ------------------------------------------------------------------------------------
class MonthFilter(admin.SimpleListFilter):
    """The months present (one query), newest first."""

    title = "month"
    parameter_name = "month"

    def lookups(self, request, model_admin):
        months = model_admin.get_queryset(request).order_by().dates("month", "month", order="DESC")
        return [(f"{m:%Y-%m}", f"{m:%B %Y}") for m in months]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            year, month = (int(part) for part in self.value().split("-"))
            return queryset.filter(month=date(year, month, 1))
        except ValueError as exc:
            raise IncorrectLookupParameters(exc) from exc


class ClaimStatusFilter(admin.SimpleListFilter):
    """Awaiting review unless asked otherwise: the queue."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [*Claim.Status.choices, ("all", "All")]

    def choices(self, changelist):
        for value, label in self.lookup_choices:
            yield {
                "selected": (self.value() or Claim.Status.SUBMITTED) == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }

    def queryset(self, request, queryset):
        value = self.value() or Claim.Status.SUBMITTED
        return queryset if value == "all" else queryset.filter(status=value)


# --- Forms of the staff operations: they shape input; the services decide -----------------------
def reason_field(help_text: str):
    # Not required here: the service says why a reason is needed, in its own words.
    return forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, help_text=help_text)


class AdjustForm(forms.Form):
    amount = forms.DecimalField(max_digits=14, decimal_places=4, help_text="In the claim's currency.")
    reason = reason_field("Why the amount differs from the eligible credit: kept in the audit trail.")


class RejectForm(forms.Form):
    reason = reason_field("The customer is emailed this reason.")


class BulkRejectForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Each customer is emailed this reason.",
        error_messages={"required": "Say why the claims are rejected: each customer is told."},
    )


class ReopenForm(forms.Form):
    reason = reason_field("Why the month is reopened (e.g. an outage's cause was corrected): kept with the month.")


class AdminMedia:
    css = {"all": ["admin-extra/credits.css"]}


# --- What both read-only admins share: POST-only operations, CSV export -------------------------
class OperationsAdmin(OperationsMixin, admin.ModelAdmin):
    refusal = ClaimError
    """A read-only change page with one POST form per operation (`<name>_view`), and CSV export."""

    operations: list[str] = []
    list_title = ""
    Media = AdminMedia

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"title": self.list_title, **(extra_context or {})})

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the audit stays

    def get_readonly_fields(self, request, obj=None):
        return [f for _, opts in self.get_fieldsets(request, obj) for f in opts["fields"]]

    def url_name(self, name: str) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_{name}"

    def op_url(self, name: str, obj, *args) -> str:
        return reverse(f"admin:{self.url_name(name)}", args=[obj.pk, *args])

    def get_urls(self):
        def post(view):
            return self.admin_site.admin_view(require_POST(view))

        ops = [path(f"<int:object_id>/{name}/", post(getattr(self, f"{name}_view")), name=self.url_name(name)) for name in self.operations]  # fmt: skip
        export = path("export/", self.admin_site.admin_view(self.export_view), name=self.url_name("export"))
        return [*ops, export, *self.extra_urls(), *super().get_urls()]

    def extra_urls(self):
        return []

    # --- The page -----------------------------------------------------------------------------
    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "POST":
            return HttpResponseNotAllowed(["GET"])  # no raw editing: every change is an operation
        extra = dict(extra_context or {})
        bound = extra.pop("bound_forms", {})
        obj = self.get_object(request, unquote(object_id))
        if obj is not None:
            extra.update(self.page_context(request, obj, bound))
            extra["can_operate"] = self.has_change_permission(request, obj)
            extra["op_urls"] = {name: self.op_url(name, obj) for name in self.operations}
        return super().change_view(request, object_id, form_url, extra)

    def page_context(self, request, obj, bound: dict) -> dict:
        raise NotImplementedError

    # --- The operations -----------------------------------------------------------------------
    def label(self, obj) -> str:
        return str(obj)

    def each(self, request, objects, done: str, call) -> None:
        ok = 0
        for obj in objects:
            try:
                call(obj)
            except ClaimError as exc:
                self.message_user(request, f"{self.label(obj)}: {exc}", messages.ERROR)
            else:
                ok += 1
        if ok:
            self.message_user(request, f"{ok} {done}.", messages.SUCCESS)

    # --- CSV ----------------------------------------------------------------------------------
    def csv_response(self, queryset):
        raise NotImplementedError

    def export_view(self, request):
        """The changelist as filtered, searched and ordered on screen, as CSV (reads only: GET)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            cl = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseRedirect(reverse(f"admin:{self.url_name('changelist')}") + "?e=1")
        return self.csv_response(cl.queryset)

    @admin.action(description="Export selected as CSV", permissions=["view"])
    def export_csv(self, request, queryset):
        return self.csv_response(queryset)


# --- Claims: the review queue -------------------------------------------------------------------
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
    search_fields = ["contract__reference", "contract__name", "contract__organisation__name"]
    search_help_text = "Contract reference or name, or organisation."
    ordering = [STATUS_ORDER.asc(), "submitted_at"]  # awaiting review first, oldest first
    actions = ["approve_eligible", "settle", "reject_selected", "export_csv"]
    change_form_template = "admin/credits/claim/change_form.html"
    operations = ["approve", "adjust", "reject", "settle"]
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
        attachment = get_object_or_404(ClaimAttachment, pk=attachment_id, claim=claim)
        return FileResponse(
            attachment.file.open("rb"),
            as_attachment=True,
            filename=attachment.original_name,
            content_type=attachment.content_type,
        )

    # --- The operations: POST only, CSRF-checked and staff-only (admin_view), change permission ---
    def approve_view(self, request, object_id):
        claim, user = self.object_to_change(request, object_id), request.user

        def call(data):
            services.claim_approve(claim=claim, actor=user)

        return self.run(request, claim, "approve", forms.Form({}), call, "Approved at the eligible amount.")

    def adjust_view(self, request, object_id):
        claim, user = self.object_to_change(request, object_id), request.user

        def call(data):
            services.claim_approve(claim=claim, actor=user, amount=data["amount"], reason=data["reason"])

        return self.run(request, claim, "adjust", AdjustForm(request.POST), call, "Approved at the adjusted amount.")

    def reject_view(self, request, object_id):
        claim, user = self.object_to_change(request, object_id), request.user

        def call(data):
            services.claim_reject(claim=claim, actor=user, reason=data["reason"])

        return self.run(request, claim, "reject", RejectForm(request.POST), call, "Rejected; the customer is told why.")

    def settle_view(self, request, object_id):
        claim, user = self.object_to_change(request, object_id), request.user

        def call(data):
            services.claim_settle(claim=claim, actor=user)

        return self.run(request, claim, "settle", forms.Form({}), call, "Marked as credited / refunded.")

    # --- Changelist actions -------------------------------------------------------------------
    @admin.action(description="Approve at the eligible amount", permissions=["change"])
    def approve_eligible(self, request, queryset):
        user = request.user
        self.each(request, queryset, "claim(s) approved", lambda c: services.claim_approve(claim=c, actor=user))

    @admin.action(description="Mark as credited/refunded", permissions=["change"])
    def settle(self, request, queryset):
        user = request.user
        self.each(
            request,
            queryset,
            "claim(s) marked as credited / refunded",
            lambda c: services.claim_settle(claim=c, actor=user),
        )

    @admin.action(description="Reject with a reason…", permissions=["change"])
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
        context = {
            **self.admin_site.each_context(request),
            "title": "Reject claims",
            "opts": self.opts,
            "claims": claims,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/credits/claim/reject_selected.html", context)


# --- Monthly uptime -----------------------------------------------------------------------------
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
        month, user = self.object_to_change(request, object_id), request.user

        def call(data):
            services.month_reopen(monthly_uptime=month, actor=user, reason=data["reason"])

        text = "Reopened: the next month-end run closes it again with fresh figures."
        return self.run(request, month, "reopen", ReopenForm(request.POST), call, text)
