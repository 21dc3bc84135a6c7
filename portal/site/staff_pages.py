"""The staff pages of our own: the dashboard and the SLA compliance report. Reads come from
portal.site.staff_dashboard and credits.compliance; these views only shape them for the templates.
They are mounted by the staff site (portal.site.admin_site), so they are staff-only exactly as every
admin page is: anyone else is sent to the admin's login. Each needs its permission besides (a 403
without it): the dashboard portal.view_staff_dashboard, the compliance report credits.view_compliance;
the dashboard's sections of months, claims, maintenance and sweeps are shown to whoever may open
their lists."""

from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.auth.decorators import permission_required
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from contracts.models import Contract
from credits.compliance import (
    ComplianceForm,
    compliance_csv_response,
    compliance_report,
    contract_compliance,
    default_month,
)
from credits.exports import bom_asked, with_bom
from portal.core.roles import sees_security
from portal.domain.formats import wall_left
from portal.site import staff_today
from portal.site.staff_dashboard import staff_dashboard
from tickets import selectors


def _staff_page(request, template: str, title: str, status: int = 200, **context):
    return TemplateResponse(
        request, template, {**admin.site.each_context(request), "title": title, **context}, status=status
    )


DASHBOARD = "portal.view_staff_dashboard"


def own_work(request) -> dict:
    """What the staff site's home page shows its reader in place of Django's "Recent actions" (its
    log of the admin's raw forms, which the ticket and claim pages do not write: "None available"
    after a day of replies): the active tickets assigned to them and the tickets they last wrote
    in, to whoever may see tickets."""
    user = request.user
    if not user.has_perm("tickets.view_ticket"):
        return {}
    security = sees_security(user)
    queue = reverse("admin:tickets_ticket_changelist")
    return {
        "assigned_count": selectors.assigned_active(user, include_security=security).count(),
        "assigned_url": f"{queue}?{urlencode({'assignee__id__exact': user.pk})}",
        "written_in": [
            (t, reverse("admin:tickets_ticket_change", args=[t.pk]))
            for t in selectors.last_written_in(user, include_security=security)
        ],
    }


COMPLIANCE = "credits.view_compliance"


@require_GET
@permission_required(DASHBOARD, raise_exception=True)
def staff_dashboard_view(request):
    now = timezone.now()
    security, triage = sees_security(request.user), request.user.has_perm("tickets.view_inboundmessage")
    board = staff_dashboard(now=now, include_security=security, held_customers=triage)
    links = staff_today.links(now=now, week_start=board.week_start, month_start=board.month_start)
    return _staff_page(
        request, "admin/staff_dashboard.html", "Staff dashboard",
        board=board, links=links, held_visible=security or triage, at_risk=[(r, wall_left(r.due - now)) for r in board.at_risk.rows],
        breached=[(r, wall_left(r.moment - now) if r.moment else "") for r in board.breached.rows],
        escalations=[(r, wall_left(r.ack_due - now) if r.ack_due else "") for r in board.escalations.rows],
    )  # fmt: skip


def _compliance_form(request, now, only=None):
    """The report's form on the query string; `only`: the fields a page shows (the others are not
    read, so that a page never refuses a value it does not show)."""
    data = request.GET.copy()
    for name in set(data) - set(only or data):
        del data[name]
    if not data.get("month"):
        data["month"] = f"{default_month(now):%Y-%m}"  # shown in the month picker
    return ComplianceForm(data, now=now)


@require_GET
@permission_required(COMPLIANCE, raise_exception=True)
def compliance_view(request):
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
@permission_required(COMPLIANCE, raise_exception=True)
def compliance_export_view(request):
    now = timezone.now()
    form = _compliance_form(request, now)
    if not form.is_valid():
        return _staff_page(request, "admin/compliance/report.html", "SLA compliance report", status=400, form=form)
    data = form.cleaned_data
    response = compliance_csv_response(month=data["month"], now=now, organisation=data["organisation"], sla=data["sla"])
    return with_bom(response, bom_asked(request))  # ?bom=1: for Excel (credits.exports)


@require_GET
@permission_required(COMPLIANCE, raise_exception=True)
def compliance_contract_view(request, contract_id: int):
    now = timezone.now()
    contract = get_object_or_404(Contract, pk=contract_id)
    form = _compliance_form(request, now, only=["month"])
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
