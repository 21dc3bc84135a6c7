from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_GET

from .models import AuditEntry, OutboxAttempt, OutboxMessage, SweepHeartbeat, User
from .outbox import outbox_render, outbox_retry_now


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "name", "organisation", "customer_role", "staff_role", "is_staff", "is_active"]
    list_filter = ["is_staff", "is_active", "staff_role", "customer_role", "organisation"]
    search_fields = ["email", "name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Person", {"fields": ["name", "phone"]}),
        ("Customer", {"fields": ["organisation", "customer_role"]}),
        ("Vendor staff", {"fields": ["is_staff", "staff_role", "is_superuser", "groups", "user_permissions"]}),
        ("Status", {"fields": ["is_active", "last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "name", "password1", "password2"]})]


class OutboxAttemptInline(admin.TabularInline):
    model = OutboxAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["started_at", "finished_at", "ok", "error", "worker"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    """Staff see every notification, its attempts, and can put a failed one back in the queue."""

    list_display = ["key", "to", "subject_shown", "status", "attempts", "created_at", "sent_at", "next_attempt_at"]
    list_filter = ["status", "template"]
    search_fields = ["key", "to", "subject", "message_id"]
    date_hierarchy = "created_at"
    inlines = [OutboxAttemptInline]
    actions = ["retry_now"]
    readonly_fields = [f.name for f in OutboxMessage._meta.fields] + ["preview"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="Subject", ordering="subject")
    def subject_shown(self, obj):
        # A row is rendered by the worker that first sends it (portal.outbox): until then, its template.
        return obj.subject or f"({obj.template}: rendered when sent)"

    @admin.display(description="Preview (text part)")
    def preview(self, obj):
        """The text part as sent, or as it will be sent: rendered from the frozen context."""
        try:
            subject, text, _ = outbox_render(obj)
        except Exception as exc:  # noqa: BLE001 - shown to staff, as the sender would record it
            return f"Cannot be rendered: {type(exc).__name__}: {exc}"
        return format_html("<strong>{}</strong><pre>{}</pre>", subject, text)

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Retry failed messages now")
    def retry_now(self, request, queryset):
        count = outbox_retry_now(ids=list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"{count} message(s) queued again.", messages.SUCCESS)


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: staff read the audit log here; nobody edits or deletes it."""

    list_display = ["at", "actor_email", "ip", "action", "target_repr"]
    list_filter = ["action", "target_type"]
    search_fields = ["actor_email", "target_repr", "target_id", "action"]
    date_hierarchy = "at"
    readonly_fields = [f.name for f in AuditEntry._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SweepHeartbeat)
class SweepHeartbeatAdmin(admin.ModelAdmin):
    """When each beat sweep last ran (the staff view of /healthz)."""

    list_display = ["name", "last_started_at", "last_finished_at", "healthy", "last_result", "runs"]
    readonly_fields = [f.name for f in SweepHeartbeat._meta.fields]

    @admin.display(boolean=True)
    def healthy(self, obj):
        from .heartbeat import health

        return health()["sweeps"].get(obj.name, {}).get("healthy", False)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# --- Staff pages of their own: the dashboard and the SLA compliance report ----------------------
# Reads come from portal.staff_dashboard and credits.compliance; these views only shape them for the
# templates. They are added to the admin site's URLs (below), so admin_view makes them staff-only
# exactly as every admin page is: anyone else is sent to the admin's login.
def _staff_page(request, template: str, title: str, status: int = 200, **context):
    return TemplateResponse(
        request, template, {**admin.site.each_context(request), "title": title, **context}, status=status
    )


@require_GET
def staff_dashboard_view(request):
    from tickets.admin import sees_security, wall_left

    from .staff_dashboard import staff_dashboard

    now = timezone.now()
    board = staff_dashboard(now=now, include_security=sees_security(request.user))
    changelist = {
        name: reverse(f"admin:{name}_changelist")
        for name in ("tickets_slacrossing", "tickets_ticket", "contracts_maintenancewindow", "credits_monthlyuptime",
                     "credits_claim", "portal_sweepheartbeat")
    }  # fmt: skip
    links = {
        "breaches": changelist["tickets_slacrossing"]
        + "?"
        + urlencode({"kind__exact": "breach", "at__gte": board.week_start.isoformat()}),
        "tickets": changelist["tickets_ticket"],  # the queue: nearest deadline first
        "windows": changelist["contracts_maintenancewindow"] + "?" + urlencode({"status__exact": "scheduled", "impact__exact": "downtime"}),
        "flagged": changelist["credits_monthlyuptime"] + "?" + urlencode({"flagged__exact": "1"}),
        "reopened": changelist["credits_monthlyuptime"] + "?" + urlencode({"status__exact": "reopened"}),
        "claims": changelist["credits_claim"],
        "sweeps": changelist["portal_sweepheartbeat"],
    }  # fmt: skip
    return _staff_page(
        request, "admin/staff_dashboard.html", "Staff dashboard",
        board=board, links=links, at_risk=[(r, wall_left(r.due - now)) for r in board.at_risk.rows],
    )  # fmt: skip


def _compliance_form(request, now):
    from credits.compliance import ComplianceForm, default_month

    data = request.GET.copy()
    if not data.get("month"):
        data["month"] = f"{default_month(now):%Y-%m}"  # shown in the month picker
    return ComplianceForm(data, now=now)


@require_GET
def compliance_view(request):
    from credits.compliance import compliance_report

    now = timezone.now()
    form = _compliance_form(request, now)
    if not form.is_valid():
        return _staff_page(request, "admin/compliance/report.html", "SLA compliance report", status=400, form=form)
    data = form.cleaned_data
    report = compliance_report(
        month=data["month"], now=now, organisation=data["organisation"], sla=data["sla"], page=request.GET.get("page")
    )
    query = {k: v for k, v in request.GET.items() if k != "page"}
    query["month"] = f"{data['month']:%Y-%m}"
    return _staff_page(
        request, "admin/compliance/report.html", f"SLA compliance report: {data['month']:%B %Y}",
        form=form, report=report, query=urlencode(query),
        export_url=reverse("admin:compliance_export") + "?" + urlencode(query),
    )  # fmt: skip


@require_GET
def compliance_export_view(request):
    from credits.compliance import compliance_csv_response

    now = timezone.now()
    form = _compliance_form(request, now)
    if not form.is_valid():
        return _staff_page(request, "admin/compliance/report.html", "SLA compliance report", status=400, form=form)
    data = form.cleaned_data
    return compliance_csv_response(month=data["month"], now=now, organisation=data["organisation"], sla=data["sla"])


@require_GET
def compliance_contract_view(request, contract_id: int):
    from contracts.models import Contract
    from credits.compliance import contract_compliance

    now = timezone.now()
    contract = get_object_or_404(Contract, pk=contract_id)
    form = _compliance_form(request, now)
    if not form.is_valid():
        return _staff_page(
            request, "admin/compliance/contract.html", f"SLA compliance: {contract.reference}", status=400,
            form=form, month_fields=[form["month"]], contract=contract,
        )  # fmt: skip
    month = form.cleaned_data["month"]
    detail = contract_compliance(contract=contract, month=month, now=now)
    return _staff_page(
        request, "admin/compliance/contract.html", f"SLA compliance: {contract.reference}, {month:%B %Y}",
        form=form, month_fields=[form["month"]], contract=contract, detail=detail, row=detail.row, month=month,
        report_url=reverse("admin:compliance") + "?" + urlencode({"month": f"{month:%Y-%m}"}),
    )  # fmt: skip


def _with_staff_pages(site_urls):
    def get_urls():
        view = admin.site.admin_view
        return [
            path("dashboard/", view(staff_dashboard_view), name="staff_dashboard"),
            path("compliance/", view(compliance_view), name="compliance"),
            path("compliance/export/", view(compliance_export_view), name="compliance_export"),
            path("compliance/<int:contract_id>/", view(compliance_contract_view), name="compliance_contract"),
            *site_urls(),
        ]

    return get_urls


# The default site's own URLs with ours in front (portal/urls.py mounts admin.site.urls, which reads
# get_urls once, after every admin module is loaded).
admin.site.get_urls = _with_staff_pages(admin.site.get_urls)
