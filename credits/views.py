"""The customer's uptime and service-credit pages. Reads go through credits.selectors (scoped to the
user's organisation: another organisation's contract or claim is a 404, never a 403); claims are
checked and filed by credits.services, whose ClaimError becomes a field error with status 400."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from contracts.selectors import Versions, contracts_for_user
from portal.core.once import submit_once
from portal.domain import formats
from tickets.attachments import attachment_response

from .forms import ClaimForm, ClaimMonthForm
from .models import Claim
from .selectors import (
    HistoryMonth,
    claim_attachments_for_user,
    claim_incidents,
    claimable_with_figures,
    claims_figures,
    claims_for_user,
    contract_uptime,
)
from .services import ClaimError, claim_check, claim_submit

PAGE_SIZE = 25


# --- The uptime page ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Bar:
    x: str
    y: str
    width: str
    height: str
    label_x: str
    level: str  # met, below, flagged, none
    label: str  # "Oct"
    title: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    tick_x: int
    right: str
    baseline: str
    top: int
    floor: Decimal
    floor_y: str
    guarantee_y: str
    show_top_tick: bool
    label_y: str
    bars: list[Bar]


FLOORS = (Decimal(99), Decimal(98), Decimal(95), Decimal(90), Decimal(80), Decimal(50), Decimal(0))


def _chart(history: list[HistoryMonth], guarantee: Decimal) -> Chart:
    """Bar geometry for the SVG (presentation only). The axis starts at the highest round floor
    below every month and the guarantee, so that 99.5% and 100% do not look alike."""
    width, height, left, right, top, bottom = 720, 230, 52, 12, 12, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [h.figures.uptime_percent for h in history if h.figures]
    lowest = min([*values, guarantee])
    floor = next(f for f in FLOORS if f < lowest or f == 0)

    def y(value: Decimal) -> float:
        return top + float((Decimal(100) - value) / (Decimal(100) - floor)) * plot_h

    slot = plot_w / max(len(history), 1)
    bar_w = slot * 0.6
    base = top + plot_h
    bars = []
    for i, h in enumerate(history):
        x = left + i * slot + (slot - bar_w) / 2
        name = f"{h.month:%B %Y}"
        if h.figures:
            f = h.figures
            top_y = min(y(f.uptime_percent), base - 1)  # a bar at the floor still shows
            level = "met" if not f.below_guarantee else "flagged" if f.flagged else "below"
            title = f"{name}: {formats.percent(f.uptime_percent, 3)} uptime"
            if f.tier_percent is not None:
                title += f", {f.tier_percent.normalize():f}% credit tier"
            elif f.flagged:
                title += ", below the guarantee in a gap of the credit table (staff review it)"
        else:
            top_y, level, title = base - 4, "none", f"{name}: {h.note}"
        bars.append(
            Bar(
                x=f"{x:.1f}",
                y=f"{top_y:.1f}",
                width=f"{bar_w:.1f}",
                height=f"{base - top_y:.1f}",
                label_x=f"{x + bar_w / 2:.1f}",
                level=level,
                label=f"{h.month:%b}",
                title=title,
            )
        )
    return Chart(
        width=width,
        height=height,
        left=left,
        tick_x=left - 6,
        right=f"{width - right}",
        baseline=f"{base:.1f}",
        top=top,
        floor=floor,
        floor_y=f"{base:.1f}",
        guarantee_y=f"{y(guarantee):.1f}",
        show_top_tick=y(guarantee) - top >= 14,
        label_y=f"{base + 18:.1f}",
        bars=bars,
    )


@login_required
@require_GET
def contract_uptime_page(request, pk: int):
    contract = get_object_or_404(
        contracts_for_user(user=request.user).select_related("sla").prefetch_related("services"), pk=pk
    )
    page = contract_uptime(contract=contract, now=timezone.now())
    if page is None:
        raise Http404("This contract has no SLA version in force yet.")
    return render(
        request,
        "credits/contract_uptime.html",
        {
            "contract": contract,
            "page": page,
            "tz": page.timezone,
            "chart": _chart(page.history, page.guarantee),
            "closed_months": [h for h in reversed(page.history) if h.figures],
        },
    )


# --- Claims -------------------------------------------------------------------------------------
@login_required
@require_GET
def claim_list(request):
    if not request.user.is_customer:
        return redirect("admin:index")  # staff review claims in the admin
    now = timezone.now()
    claims = claims_for_user(user=request.user).select_related("contract").order_by("-submitted_at", "-pk")
    page = Paginator(claims, PAGE_SIZE).get_page(request.GET.get("page"))
    contracts = list(contracts_for_user(user=request.user).order_by("name", "pk"))
    claimable = claimable_with_figures(contracts=contracts, now=now, versions=Versions({c.sla_id for c in contracts}))
    return render(
        request,
        "credits/claim_list.html",
        {
            "page": page,
            "contracts": [
                {
                    "contract": c,
                    "claimable": sorted((m for m in claimable if m.contract == c), key=lambda m: m.month, reverse=True),
                }
                for c in contracts
            ],
        },
    )


def _refused(form, exc: ClaimError) -> None:
    form.add_error(exc.field if exc.field in form.fields else None, str(exc))


@login_required
@require_http_methods(["GET", "POST"])
def claim_new(request):
    """Two steps: choose the contract and month and preview the month's figures (claim_check,
    which closes the month on demand), then add a note and evidence and file the claim. Nothing is
    stored until the claim is filed; a refusal is a field error with status 400."""
    now = timezone.now()
    action = request.POST.get("action")
    if request.method == "GET":
        initial = {k: request.GET[k] for k in ("contract", "month") if request.GET.get(k)}
        return _render_new(request, ClaimMonthForm(initial=initial, user=request.user, now=now))
    if action == "refresh":
        # "Show this contract's months": the same step for another contract.
        initial = {k: request.POST[k] for k in ("contract", "month") if request.POST.get(k)}
        return _render_new(request, ClaimMonthForm(initial=initial, user=request.user, now=now))
    if action == "preview":
        form = ClaimMonthForm(request.POST, user=request.user, now=now)
        if form.is_valid():
            contract, month = form.cleaned_data["contract"], form.cleaned_data["month"]
            try:
                uptime = claim_check(contract=contract, month=month, now=now)
            except ClaimError as exc:
                _refused(form, exc)
            else:
                claim_form = ClaimForm(
                    initial={"contract": contract.pk, "month": f"{month:%Y-%m}"}, user=request.user, now=now
                )
                return _render_new(request, claim_form, preview=uptime, contract=contract, month=month)
        return _render_new(request, form, status=400)
    form = ClaimForm(request.POST, request.FILES, user=request.user, now=now)
    if form.is_valid():

        def file() -> str:
            claim = claim_submit(user=request.user, now=now, **form.service_kwargs())
            messages.success(
                request,
                f"Your claim for {claim.month:%B %Y} is filed. We have emailed you and your contract's contacts.",
            )
            return reverse("claim-detail", args=[claim.pk])

        try:
            url, first = submit_once(user=request.user, key=form.cleaned_data["submission"], make=file)
        except ClaimError as exc:
            _refused(form, exc)
        else:
            if not first:
                messages.info(request, "The form was sent twice: the claim is filed once.")
            return redirect(url)
    if form.has_error("contract") or form.has_error("month"):
        return _render_new(request, form, status=400)
    # The month itself is fine: show its figures again beside the errors (the files must be chosen
    # again: a browser never keeps them across pages).
    contract, month = form.cleaned_data["contract"], form.cleaned_data["month"]
    try:
        uptime = claim_check(contract=contract, month=month, now=now)
    except ClaimError as exc:
        _refused(form, exc)
        return _render_new(request, form, status=400)
    return _render_new(request, form, status=400, preview=uptime, contract=contract, month=month)


def _render_new(request, form, *, status: int = 200, preview=None, contract=None, month=None):
    return render(
        request,
        "credits/claim_new.html",
        {
            "form": form,
            "preview": preview,
            "contract": contract,
            "month": month,
            "several_contracts": len(form.contracts) > 1,
        },
        status=status,
    )


def _own_claim(request, pk: int) -> Claim:
    return get_object_or_404(
        claims_for_user(user=request.user).select_related("contract", "monthly_uptime__sla_version", "submitted_by"),
        pk=pk,
    )


@login_required
@require_GET
def claim_detail(request, pk: int):
    claim = _own_claim(request, pk)
    return render(
        request,
        "credits/claim_detail.html",
        {
            "claim": claim,
            # The figures it was decided on; the month's, judged again since, beside them (figures.rejudged).
            "figures": claims_figures(claims=[claim])[claim.pk],
            "tz": claim.monthly_uptime.sla_version.timezone,
            "attachments": claim.attachments.order_by("uploaded_at", "pk"),
            "tickets": claim.tickets.order_by("-filed_at", "-pk"),
            "events": claim.events.order_by("at", "pk"),
            "incidents": claim_incidents(claim=claim),
        },
    )


@login_required
@require_GET
def claim_attachment(request, pk: int, attachment_id: int):
    return attachment_response(
        get_object_or_404(claim_attachments_for_user(user=request.user), pk=attachment_id, claim_id=pk)
    )
