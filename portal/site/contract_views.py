import re
from datetime import date

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET

from contracts.selectors import contracts_for_user, escalation_ladder, sla_timeline
from credits.statement import MonthUnavailable, contract_statement, render_pdf
from portal.domain.dates import MONTH_FORMAT, add_months, local_month, month_from_text
from portal.domain.terms_changes import by_section
from tickets.charts import attainment_charts, attainment_table
from tickets.selectors import contract_attainment

ATTAINMENT_MONTHS = 12


@login_required
@require_GET
def contract_list(request):
    """The navigation's "Contracts": straight to the contract when there is one, else the list.
    The navigation links here rather than reading the organisation's contracts on every page."""
    contracts = list(contracts_for_user(user=request.user).select_related("sla").order_by("name", "pk"))
    if len(contracts) == 1:
        return redirect("contract-detail", pk=contracts[0].pk)
    return render(request, "contracts/contract_list.html", {"contracts": contracts})


@login_required
@require_GET
def contract_detail(request, pk: int):
    # Scoped to the user's organisation: another organisation's contract is a 404, never a 403.
    contract = get_object_or_404(
        contracts_for_user(user=request.user).select_related("organisation", "sla").prefetch_related("services"), pk=pk
    )
    now = timezone.now()
    # The terms in force, those published to come and the history, from one read of the versions.
    timeline = sla_timeline(sla_id=contract.sla_id, at=now)
    version = timeline.in_force
    if version is None:
        raise Http404("This contract has no SLA version in force yet.")
    return render(
        request,
        "contracts/contract_detail.html",
        {
            "contract": contract,
            "version": version,
            "priorities": version.priorities.all(),
            "ladder": escalation_ladder(version=version, organisation=contract.organisation),
            "tiers": version.credit_tiers.all(),
            "upcoming": [{"entry": e, "sections": by_section(e.changes)} for e in timeline.upcoming],
            "history": [{"entry": e, "sections": by_section(e.changes)} for e in timeline.history],
            **_attainment(contract, version, now),
        },
    )


def _attainment(contract, version, now) -> dict:
    """The "Tickets within SLA" chart and table: the last 12 months (this one included) in the
    contract's timezone, from the contract's first month; and the statement's month picker."""
    current = local_month(now, version.timezone)
    first = max(add_months(current, 1 - ATTAINMENT_MONTHS), contract.starts_on.replace(day=1))
    months = []
    while first <= current and len(months) < ATTAINMENT_MONTHS:
        months.append(first)
        first = add_months(first, 1)
    rows = (
        contract_attainment(contracts=[contract], first=months[0], last=months[-1], now=now)[contract.pk]
        if months
        else {}
    )
    charts = attainment_charts(
        rows, months=months, priorities=[(p.priority, p.get_priority_display()) for p in version.priorities.all()]
    )
    started = contract.starts_on.replace(day=1)
    return {
        "attainment_months": months,
        "attainment_charts": charts,
        "attainment_table": attainment_table(rows, months=months, charts=charts),
        "current_month": current,
        "statement_month": max(add_months(current, -1), started) if started <= current else None,
        "first_month": started,
    }


# --- The SLA statement: a page and a PDF per contract and month --------------------------------
def _own_contract(request, pk: int):
    # Scoped first: another organisation's contract is the same 404 as a missing id, whatever the month.
    return get_object_or_404(
        contracts_for_user(user=request.user).select_related("organisation", "sla").prefetch_related("services"), pk=pk
    )


def _statement_problem(request, contract, message: str, *, status: int, month_text: str = ""):
    return render(
        request,
        "contracts/statement.html",
        {"contract": contract, "problem": message, "month_text": month_text[:20]},
        status=status,
    )


def _statement(request, pk: int, month: str):
    """(contract, statement, None) or (contract, None, an error page: 400 malformed month, 404 a
    month without a statement)."""
    contract = _own_contract(request, pk)
    try:
        first = month_from_text(month)
    except ValueError:
        return contract, None, _statement_problem(request, contract, MONTH_FORMAT, status=400, month_text=month)
    try:
        statement = contract_statement(contract=contract, month=first, now=timezone.now())
    except MonthUnavailable as exc:
        return contract, None, _statement_problem(request, contract, str(exc), status=404, month_text=month)
    return contract, statement, None


def _statement_context(statement) -> dict:
    return {
        "contract": statement.contract,
        "s": statement,
        "f": statement.figures,
        "tz": statement.timezone,
    }


@login_required
@require_GET
def contract_statement_pick(request, pk: int):
    """The contract page's month picker: ?month=YYYY-MM -> that month's statement."""
    contract = _own_contract(request, pk)
    text = request.GET.get("month", "")
    try:
        month = month_from_text(text)
    except ValueError:
        return _statement_problem(request, contract, MONTH_FORMAT, status=400, month_text=text)
    return redirect("contract-statement", pk=contract.pk, month=f"{month:%Y-%m}")


@login_required
@require_GET
def contract_statement_page(request, pk: int, month: str):
    contract, statement, problem = _statement(request, pk, month)
    if problem:
        return problem
    return render(request, "contracts/statement.html", _statement_context(statement))


@login_required
@require_GET
def contract_statement_pdf(request, pk: int, month: str):
    contract, statement, problem = _statement(request, pk, month)
    if problem:
        return problem
    html = render_to_string("contracts/statement.html", {**_statement_context(statement), "pdf": True}, request)
    pdf = render_pdf(html, base_url=request.build_absolute_uri("/"))
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=True, filename=statement_filename(contract.reference, statement.month)
    )
    response["Cache-Control"] = "private, no-store"
    return response


def statement_filename(reference: str, month: date) -> str:
    """sla-statement-KAL-0001-2026-10.pdf (a reference's other characters become '-')."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", reference).strip("-.") or "contract"
    return f"sla-statement-{safe}-{month:%Y-%m}.pdf"
