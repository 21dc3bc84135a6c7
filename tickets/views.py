"""The customer's ticket pages. Reads go through tickets.selectors (scoped to the user's
organisation: another organisation's ticket is a 404, never a 403); writes go through
tickets.services, whose TicketError becomes a message or a field error with status 400."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from contracts import terms_revision
from contracts.people.selectors import admins_of
from contracts.people.support import NotASupportContact, openable_contracts
from contracts.selectors import contracts_for_user
from portal.core.once import submit_once
from portal.core.paging import CappedPaginator
from tickets.terms_cache import TermsCache

from . import search, services
from .attachments import attachment_response
from .forms import EscalateForm, ReplyForm, StatusForm, TicketFilterForm, TicketForm
from .models import Ticket
from .selectors import (
    SHOWN_PERSON,
    at_risk_or_breached,
    attachments_for_user,
    conversation_for_customer,
    rating_of,
    ticket_clock_views,
    tickets_for_user,
    with_presence,
)

PAGE_SIZE = 25


def _tickets(request):
    return tickets_for_user(user=request.user).select_related("contract", "service", "sla_version")


def _row(ticket: Ticket, clock) -> dict:
    return {"ticket": ticket, "clock": clock, "state_label": Ticket.SLAState(clock.state).label}


def _refused(request, form, exc: services.TicketError, what: str) -> None:
    """A refusal from the services: on its field when the form has that field, else a message
    at the top of the page (the form may not even be shown, e.g. on a closed ticket)."""
    if exc.field in form.fields:
        form.add_error(exc.field, str(exc))
        messages.error(request, f"{what}: see the form below.")
    else:
        messages.error(request, f"{what}: {exc}")


# --- The list -----------------------------------------------------------------------------------
@login_required
@require_GET
def ticket_list(request):
    now = timezone.now()
    filter_form = TicketFilterForm(request.GET)
    filters = filter_form.filters()
    tickets = _tickets(request).order_by("-filed_at", "-pk")
    if "q" in filter_form.errors:  # a search that cannot run finds nothing, and says why
        tickets = search.no_results(tickets)
    elif "q" in filters:
        tickets = search.tickets_search(tickets, filters["q"], staff=False)
    if "status" in filters:
        tickets = tickets.filter(status=filters["status"])
    if "priority" in filters:
        tickets = tickets.filter(priority=filters["priority"])
    if filters.get("sla") == TicketFilterForm.AT_RISK:
        tickets = at_risk_or_breached(tickets, now=now)
    ranked = None
    if "q" in filters and "q" not in filter_form.errors:  # best match first, then the newest
        tickets, counted = search.best_first(tickets, "-filed_at", "-pk", cap=CappedPaginator.CAP)
        ranked = counted <= CappedPaginator.CAP
        # Counted up to the cap, as the staff queue counts: a common word in a large organisation's
        # tickets matches thousands, and nobody pages through them (more words narrow them).
        paginator = CappedPaginator(tickets, PAGE_SIZE)
        paginator.count = counted  # no second count
    else:
        paginator = Paginator(tickets, PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    clocks = ticket_clock_views(page.object_list, now=now)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "tickets/ticket_list.html",
        {
            "filter_form": filter_form,
            "filtered": bool(filters.keys() - {"q"}),
            "page": page,
            "rows": [_row(t, clocks[t.pk]) for t in page.object_list],
            "now": now,
            "query": query.urlencode(),
            "contracts": contracts_for_user(user=request.user).order_by("name", "pk"),
            "searched": filters.get("q") or "q" in filter_form.errors,
            "ranked": ranked,
        },
        status=400 if "q" in filter_form.errors else 200,
    )


# --- Filing -------------------------------------------------------------------------------------
@login_required
@require_http_methods(["GET", "POST"])
def ticket_new(request):
    now = timezone.now()
    if request.method == "POST" and request.POST.get("action") == "refresh":
        # "Show this contract's choices": the same page for another contract, keeping what was typed.
        initial = {k: v for k, v in request.POST.items() if k in TicketForm.base_fields}
        return _render_new(request, TicketForm(initial=initial, user=request.user, now=now))
    if request.method == "POST":
        form = TicketForm(request.POST, request.FILES, user=request.user, now=now)
        if form.is_valid():

            def file() -> str:
                ticket = services.ticket_open(user=request.user, **form.service_kwargs())
                messages.success(
                    request, f"Ticket {ticket.number} is filed. We have emailed you a receipt with its deadlines."
                )
                return reverse("ticket-detail", args=[ticket.pk])

            try:
                url, first = submit_once(user=request.user, key=form.cleaned_data["submission"], make=file)
            except (services.TicketError, NotASupportContact) as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc))
            else:
                if not first:
                    messages.info(request, "The form was sent twice: the ticket is filed once.")
                return redirect(url)
        return _render_new(request, form, status=400)
    # GET: ?contract=<id> picks the contract (an unknown or foreign id is simply not picked); with
    # a single contract there is nothing to pick; of several, the organisation's default is proposed.
    contract_id = request.GET.get("contract")
    if contract_id is None:
        contracts = list(openable_contracts(user=request.user)[:2])
        if len(contracts) == 1:
            contract_id = contracts[0].pk
        elif contracts:
            contract_id = request.user.organisation.default_contract_id
    return _render_new(request, TicketForm(initial={"contract": contract_id}, user=request.user, now=now))


def _render_new(request, form: TicketForm, status: int = 200):
    """The form, offering the contracts the user may open tickets on (contracts.people.support);
    instead, the page that says why not and whom to ask, for someone who may open none."""
    openable = list(form.fields["contract"].queryset)
    if not openable and (refused := _may_not_open(request)):
        return refused
    # The organisation's other contracts: named with whom to ask, not offered.
    others = list(contracts_for_user(user=request.user).exclude(pk__in=[c.pk for c in openable]))
    context = {
        "form": form,
        "several_contracts": len(openable) > 1,
        "not_openable": others,
        "admins": admins_of(organisation_id=request.user.organisation_id) if others else [],
    }
    return render(request, "tickets/ticket_new.html", context, status=status)


def _may_not_open(request):
    """The page instead of the form for a customer who is a support contact of none of their
    organisation's contracts: why, and whom to ask (a 403). None for someone with no contract at all."""
    contracts = list(contracts_for_user(user=request.user).order_by("name", "pk"))
    if not contracts:
        return None
    context = {"contracts": contracts, "admins": admins_of(organisation_id=request.user.organisation_id)}
    return render(request, "tickets/may_not_open.html", context, status=403)


# --- One ticket ---------------------------------------------------------------------------------
# The ticket page's own read: every column of the ticket, and of its contract, service and filer
# what the page shows (the POST views read them whole: the services use more).
SHOWN_WITH_TICKET = (
    *(f.name for f in Ticket._meta.concrete_fields),
    "contract__name", "contract__reference", "service__name",
    *(f"created_by__{f}" for f in SHOWN_PERSON),
    "rating__rating", "rating__comment", "rating__updated_at",  # the filer's satisfaction, shown to the organisation
)  # fmt: skip


def _own_ticket(request, pk: int, *, to_show: bool = False) -> Ticket:
    qs = with_presence(tickets_for_user(user=request.user)).select_related("contract", "service", "created_by")
    ticket = get_object_or_404(
        (qs.select_related("rating").only(*SHOWN_WITH_TICKET) if to_show else qs).annotate(
            terms_revision=terms_revision.column()
        ),
        pk=pk,
    )  # the terms revision (and the rating) with the ticket: no query of their own
    # Its organisation is the user's, read with the user: joining it again (and its managers)
    # tripled the time PostgreSQL spent planning the query.
    Ticket.organisation.field.set_cached_value(ticket, request.user.organisation)
    return ticket


def _render_detail(request, ticket: Ticket, *, reply_form=None, escalate_form=None, status: int = 200):
    now = timezone.now()
    terms = TermsCache(revision=ticket.terms_revision)
    # The SLA version with its calendars, as the terms cache holds it: no join, no query.
    Ticket.sla_version.field.set_cached_value(ticket, terms.version(ticket.sla_version_id))
    clock = ticket_clock_views([ticket], now=now, terms=terms)[ticket.pk]
    filed_attachments, conversation = conversation_for_customer(ticket)
    requests = (
        list(ticket.escalation_requests.order_by("-requested_at", "-pk")) if ticket.has_escalation_requests else []
    )
    pending = next((r for r in requests if r.acknowledged_at is None), None)
    return render(
        request,
        "tickets/ticket_detail.html",
        {
            "ticket": ticket,
            "tz": ticket.sla_version.timezone,
            "clock": clock,
            "state_label": Ticket.SLAState(clock.state).label,
            "now": now,
            "term": terms.term(ticket.sla_version_id, ticket.priority),
            "conversation": conversation,
            "filed_attachments": filed_attachments,
            "pending_request": pending,
            "last_acknowledged": None if pending else next(iter(requests), None),
            "reply_form": reply_form or ReplyForm(),
            "escalate_form": escalate_form or EscalateForm(),
            "can_close": ticket.status != Ticket.Status.CLOSED,
            "can_reopen": ticket.status in (Ticket.Status.RESOLVED, Ticket.Status.CLOSED),
            "rating": rating_of(ticket),
        },
        status=status,
    )


@login_required
@require_GET
def ticket_detail(request, pk: int):
    return _render_detail(request, _own_ticket(request, pk, to_show=True))


@login_required
@require_POST
def ticket_reply(request, pk: int):
    ticket = _own_ticket(request, pk)
    form = ReplyForm(request.POST, request.FILES)
    if form.is_valid():

        def reply() -> str:
            data = form.cleaned_data
            services.ticket_reply(ticket=ticket, author=request.user, body=data["body"], files=data["attachments"])
            messages.success(request, "Your reply is added to the conversation.")
            return reverse("ticket-detail", args=[ticket.pk]) + "#conversation"

        try:
            url, first = submit_once(user=request.user, key=form.cleaned_data["submission"], make=reply)
        except services.TicketError as exc:
            _refused(request, form, exc, "Your reply was not sent")
        else:
            if not first:
                messages.info(request, "Your reply was sent twice: it is added once.")
            return redirect(url)
    else:
        messages.error(request, "Your reply was not sent: see the form below.")
    return _render_detail(request, ticket, reply_form=form, status=400)


@login_required
@require_POST
def ticket_escalate(request, pk: int):
    ticket = _own_ticket(request, pk)
    form = EscalateForm(request.POST)
    if form.is_valid():
        try:
            services.ticket_request_escalation(ticket=ticket, user=request.user, reason=form.cleaned_data["reason"])
        except services.TicketError as exc:
            _refused(request, form, exc, "Your escalation request was not sent")
        else:
            messages.success(request, "Your escalation request is sent; we have emailed you a copy.")
            return redirect(reverse("ticket-detail", args=[ticket.pk]) + "#escalation")
    else:
        messages.error(request, "Your escalation request was not sent: see the form below.")
    return _render_detail(request, ticket, escalate_form=form, status=400)


@login_required
@require_POST
def ticket_status(request, pk: int):
    ticket = _own_ticket(request, pk)
    form = StatusForm(request.POST)
    if form.is_valid():
        try:
            services.ticket_set_status(ticket=ticket, actor=request.user, status=form.cleaned_data["status"])
        except services.TicketError as exc:
            messages.error(request, str(exc))
        else:
            closed = form.cleaned_data["status"] == Ticket.Status.CLOSED
            messages.success(request, f"Ticket {ticket.number} is {'closed' if closed else 'reopened'}.")
            return redirect("ticket-detail", pk=ticket.pk)
    else:
        messages.error(request, " ".join(form.errors.get("status", ["Choose to close or to reopen the ticket."])))
    return _render_detail(request, ticket, status=400)


# --- Attachments --------------------------------------------------------------------------------
@login_required
@require_GET
def attachment_download(request, pk: int, attachment_id: int):
    return attachment_response(
        get_object_or_404(attachments_for_user(user=request.user), pk=attachment_id, ticket_id=pk)
    )
