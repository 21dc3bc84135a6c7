"""The Ticket admin: the changelist is the staff queue, sorted by the nearest (or most overdue)
deadline, with an SLA badge and a live countdown; the ticket page is read-only, its clocks and
history, with one small form per operation (tickets.admin.operations). Vulnerability reports
(kind=security) exist here only for staff whose role is "security"; superuser status alone does
not show them."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ORDER_VAR, SEARCH_VAR
from django.http import HttpResponseNotAllowed
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from contracts import terms_revision
from contracts.choices import Cause, Priority
from portal.core.paging import CappedPaginator
from portal.core.roles import sees_security
from portal.domain.formats import duration, in_tz

from .. import search, services
from ..canned import CannedReplyError, canned_fill, canned_for
from ..incident_links import incident_suggested, tickets_link_incident
from ..models import Ticket
from ..selectors import ClockView, ticket_clock_views
from ..services import TicketError
from .display import TicketPageMedia, cause_label, countdown, cut, event_summary, sla_badge
from .filters import AssigneeFilter, ChannelFilter, LevelFilter, SatisfactionFilter, SLAFilter, StatusFilter
from .forms import (
    AssignForm,
    CallForm,
    ExcludeForm,
    IncidentChoiceForm,
    IncidentLinkForm,
    PriorityForm,
    ReplyForm,
    StatusForm,
)
from .operations import OPERATIONS, PERMISSIONS, TicketOperations
from .queue import NEXT_DEADLINE, QUEUE_ORDER, TicketChangeList


def wall_now(tz: str) -> datetime:
    """Now as the wall clock of `tz` reads it (a form's initial value, typed in that zone)."""
    return timezone.now().astimezone(ZoneInfo(tz)).replace(tzinfo=None, second=0, microsecond=0)


@admin.register(Ticket)
class TicketAdmin(TicketOperations, admin.ModelAdmin):
    # The columns that matter first (what, how late, who has it), each on one line; the subject takes
    # what is left of the width and is cut, its full text on hover (static/admin-extra/tickets.css).
    list_display = [
        "number", "subject_line", "sla", "deadline", "level", "assignee_name", "priority_code", "status", "organisation_name",
    ]  # fmt: skip
    list_display_links = ["number", "subject_line"]
    # No organisation filter: a thousand organisations make a sidebar nobody scrolls; the search
    # box finds an organisation by name.
    list_filter = [
        StatusFilter, SLAFilter, "priority", ChannelFilter, LevelFilter, AssigneeFilter, SatisfactionFilter, "kind",
    ]  # fmt: skip
    list_select_related = ["organisation", "assignee"]
    list_per_page = 25  # a screen of work, as the peer's queue (bench/RESULTS.md); each row carries its live clocks
    paginator = CappedPaginator
    show_full_result_count = False  # "N of M": M would count every ticket ever filed
    search_fields = ["subject"]  # shows the search box; tickets.search does the searching (get_search_results)
    search_help_text = (
        "Words from the subject, description or messages (internal notes too), an organisation, the filer's "
        'email, or a ticket number (42 or #42). "A phrase", -word to leave out, or for either. Best matches first.'
    )
    linked_lookups = frozenset({"organisation__id__exact", "incident__id__exact"})  # compliance page; an incident
    ordering = [NEXT_DEADLINE]
    actions = ["take", "resolve", "escalate_now", "exclude_from_sla", "link_to_incident"]
    change_form_template = "admin/tickets/ticket/change_form.html"
    fieldsets = [
        (None, {"fields": ["number", "subject", "organisation", "contract", "service", "kind", "channel", "created_by", "filed"]}),
        ("Request", {"fields": ["description", "steps_to_reproduce"]}),
        ("Handling", {"fields": ["status", "priority", "assignee", "escalation_level", "sla_version", "exclusion", "satisfaction"]}),
    ]  # fmt: skip
    Media = TicketPageMedia

    # --- Who sees what; nothing is added, deleted or edited as raw fields ------------------------
    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if sees_security(request.user) else qs.exclude(kind=Ticket.Kind.SECURITY)

    def get_list_filter(self, request):
        # The kind filter only means something to those who see vulnerability reports.
        return [f for f in self.list_filter if f != "kind" or sees_security(request.user)]

    def get_fieldsets(self, request, obj=None):
        if obj is None or obj.kind != Ticket.Kind.SECURITY:
            return self.fieldsets
        # A report is from an address, not from the account that files every report.
        (name, first), *rest = self.fieldsets
        fields = ["reporter" if f == "created_by" else f for f in first["fields"]]
        return [(name, {**first, "fields": fields}), *rest]

    def get_readonly_fields(self, request, obj=None):
        return [f for _, opts in self.get_fieldsets(request, obj) for f in opts["fields"]]

    def has_add_permission(self, request):
        return False  # customers file tickets (tickets.services.ticket_open)

    def has_delete_permission(self, request, obj=None):
        return False  # the audit trail stays

    # The actions' permissions beyond change (docs/decisions.md, "Who may do what").
    def has_handle_escalation_permission(self, request):
        return request.user.has_perm(PERMISSIONS["escalate"])

    def has_exclude_permission(self, request):
        return request.user.has_perm(PERMISSIONS["exclude"])

    def changelist_view(self, request, extra_context=None):
        can_file = request.user.has_perm(PERMISSIONS["file"])
        file_url = reverse("admin:tickets_ticket_file") if can_file else None
        extra = {"title": "Ticket queue", **(extra_context or {}), "file_url": file_url}
        with terms_revision.held():  # read once for the level filter and the rows' clocks
            return super().changelist_view(request, extra)

    def get_changelist(self, request, **kwargs):
        return TicketChangeList

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        paginator = super().get_paginator(request, queryset, per_page, orphans, allow_empty_first_page)
        if queryset.model is not Ticket:
            return paginator  # a ticket's history (its admin log entries) pages with Django's own order
        searching = request.GET.get(SEARCH_VAR, "").strip()  # then the search's index finds the rows
        active = request.GET.get(StatusFilter.parameter_name, StatusFilter.ACTIVE) in (
            StatusFilter.ACTIVE,
            *Ticket.ACTIVE,
        )
        if active and not searching:
            paginator.count_order = QUEUE_ORDER  # counted in the partial index's order (CappedPaginator)
        if getattr(request, "search_count", None) is not None:
            paginator.count = request.search_count  # counted as CappedPaginator counts (get_search_results)
        return paginator

    def get_search_results(self, request, queryset, search_term):
        """tickets.search over the queue as filtered; a query it cannot search shows no tickets and
        says why. Best match first, then the queue's order, unless a column is chosen."""
        try:
            found = search.parse(search_term)
        except search.SearchError as exc:
            self.message_user(request, str(exc), messages.WARNING)
            return search.no_results(queryset), False
        if found is None:
            return queryset, False
        results = search.tickets_search(queryset, found, staff=True)
        if ORDER_VAR in request.GET:  # a column chosen: the changelist orders
            return results, False
        results, request.search_count = search.best_first(results, *QUEUE_ORDER, cap=CappedPaginator.CAP)
        if request.search_count > CappedPaginator.CAP:
            self.message_user(
                request, f"More than {CappedPaginator.CAP:,} tickets found: in the queue's order. Add words to "
                "see the best matches first.", messages.INFO,
            )  # fmt: skip
        return results, False

    # --- Columns ----------------------------------------------------------------------------------
    def clock(self, obj: Ticket) -> ClockView:
        if getattr(obj, "sla_clock", None) is None:
            obj.sla_clock = ticket_clock_views([obj])[obj.pk]
        return obj.sla_clock

    @admin.display(description="Number", ordering="pk")
    def number(self, obj):
        return obj.number

    @admin.display(description="Subject", ordering="subject")
    def subject_line(self, obj):
        return cut(obj.subject)

    @admin.display(description="Organisation", ordering="organisation__name")
    def organisation_name(self, obj):
        return cut(str(obj.organisation))

    @admin.display(description="Priority", ordering="priority")
    def priority_code(self, obj):
        return format_html('<span title="{}">{}</span>', Priority(obj.priority).label, obj.priority_name)

    @admin.display(description="SLA")
    def sla(self, obj):
        return sla_badge(self.clock(obj).state)

    @admin.display(description="Next deadline", ordering=NEXT_DEADLINE)
    def deadline(self, obj):
        cv = self.clock(obj)
        if cv.state in (Ticket.SLAState.MET, Ticket.SLAState.EXCLUDED):
            return "—"
        if cv.paused:
            return "Paused"
        due = cv.next_deadline or cv.overdue_since
        if due is None:
            return "—"
        note = f"{duration(cv.time_left)} of working time left" if cv.time_left is not None else ""
        return countdown(due, cv.timezone, timezone.now(), note)

    @admin.display(description="Level", ordering="escalation_level")
    def level(self, obj):
        return obj.escalation_level

    @admin.display(description="Assignee", ordering="assignee__name")
    def assignee_name(self, obj):
        return obj.assignee.get_full_name() if obj.assignee_id else "—"

    @admin.display(description="Reporter")
    def reporter(self, obj):
        report = getattr(obj, "security_report", None)
        if report is None:
            return "—"
        who = f"{report.reporter_name} <{report.reporter_email}>" if report.reporter_name else report.reporter_email
        return f"{who} (an address, not an account; public replies are emailed there)"

    @admin.display(description="Filed")
    def filed(self, obj):
        return in_tz(obj.filed_at, obj.sla_version.timezone)

    @admin.display(description="Excluded from the SLA")
    def exclusion(self, obj):
        return f"{cause_label(obj.excluded_cause)}: {obj.excluded_reason}" if obj.is_excluded else "No"

    @admin.display(description="Customer satisfaction")
    def satisfaction(self, obj):
        rating = getattr(obj, "rating", None)  # one row a ticket (tickets.satisfaction)
        if rating is None:
            return "Not rated" if obj.kind == Ticket.Kind.SUPPORT else "—"
        when = in_tz(rating.updated_at, obj.sla_version.timezone)
        rater = obj.created_by if rating.rated_by_id == obj.created_by_id else rating.rated_by  # the filer, shown above
        by = rater.get_full_name() or rater.email
        comment = format_html("<br>“{}”", rating.comment) if rating.comment else ""
        return format_html(
            '<strong class="rating rating-{}">{}</strong> by {}, {}{}',
            rating.rating,
            rating.get_rating_display(),
            by,
            when,
            comment,
        )

    # --- Changelist actions -------------------------------------------------------------------
    def _each(self, request, tickets, done: str, call) -> None:
        ok = 0
        for ticket in tickets:
            try:
                call(ticket)
            except TicketError as exc:
                self.message_user(request, f"{ticket.number}: {exc}", messages.ERROR)
            else:
                ok += 1
        if ok:
            self.message_user(request, f"{ok} ticket(s) {done}.", messages.SUCCESS)

    @admin.action(description="Take (assign to me)", permissions=["change"])
    def take(self, request, queryset):
        user = request.user
        self._each(
            request, queryset, "assigned to you", lambda t: services.ticket_assign(ticket=t, actor=user, assignee=user)
        )

    @admin.action(description="Link to an incident…", permissions=["change"])
    def link_to_incident(self, request, queryset):
        tickets = list(queryset.select_related("organisation"))
        form = IncidentChoiceForm(request.POST if "incident" in request.POST else None)
        if not form.is_valid():
            intro = "Each ticket is linked if the incident affects its contract's services."
            return self.ask_for_selected(
                request,
                action="link_to_incident",
                title="Link to the incident",
                intro=intro,
                selected=tickets,
                form=form,
            )
        incident = form.cleaned_data["incident"]
        linked, refused = tickets_link_incident(tickets=tickets, incident=incident, actor=request.user)
        self.message_user(request, f"{linked} ticket(s) linked to “{incident}”.", messages.SUCCESS)
        for reason in refused[:10]:
            self.message_user(request, reason, messages.WARNING)
        return None

    @admin.action(description="Resolve", permissions=["change"])
    def resolve(self, request, queryset):
        user, resolved = request.user, Ticket.Status.RESOLVED
        self._each(
            request, queryset, "resolved", lambda t: services.ticket_set_status(ticket=t, actor=user, status=resolved)
        )

    @admin.action(description="Escalate now (one level up)", permissions=["handle_escalation"])
    def escalate_now(self, request, queryset):
        user = request.user
        self._each(
            request, queryset, "escalated one level", lambda t: services.ticket_escalate_now(ticket=t, actor=user)
        )

    @admin.action(description="Exclude from the SLA…", permissions=["exclude"])
    def exclude_from_sla(self, request, queryset):
        tickets = list(queryset.select_related("organisation", "sla_version"))
        # Only the causes every selected ticket's SLA version allows (the service checks again).
        allowed = set.intersection(*(set(t.sla_version.exclusion_causes or []) for t in tickets))
        causes = [c for c in Cause.values if c in allowed]
        if not causes:
            self.message_user(request, "These tickets' SLAs share no exclusion cause.", messages.ERROR)
            return None
        form = ExcludeForm(request.POST if "apply" in request.POST else None, causes=causes)
        if form.is_valid():
            cause, reason, user = form.cleaned_data["cause"], form.cleaned_data["reason"], request.user
            self._each(
                request, tickets, "excluded from the SLA",
                lambda t: services.ticket_exclude(ticket=t, actor=user, cause=cause, reason=reason),
            )  # fmt: skip
            return None
        intro = (
            "These tickets will no longer count for the SLA: their clocks and escalation stop, and the "
            "exclusion is kept in each ticket's audit trail."
        )
        return self.ask_for_selected(
            request, action="exclude_from_sla", title="Exclude from the SLA", intro=intro, selected=tickets, form=form
        )

    # --- The ticket page: read-only, with the operations' forms -------------------------------
    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "POST":
            return HttpResponseNotAllowed(["GET"])  # no raw editing: every change is an operation below
        extra = dict(extra_context or {})
        bound = extra.pop("bound_forms", {})
        ticket = self.get_object(request, unquote(object_id))
        if ticket is not None:
            extra.update(self.page_context(request, ticket, bound))
        return super().change_view(request, object_id, form_url, extra)

    def canned_replies(self, request, ticket: Ticket) -> tuple[list, str]:
        """The canned replies this user may insert, grouped (theirs first, then each team's), and the
        text of the one chosen by `?canned=` filled for the ticket (the reply form without script)."""
        replies = list(canned_for(request.user)) if self.has_change_permission(request, ticket) else []
        groups: dict[str, list] = {}
        for reply in sorted(replies, key=lambda r: (r.team_id is not None, r.team.name if r.team_id else "")):
            groups.setdefault(f"Team: {reply.team.name}" if reply.team_id else "Yours", []).append(reply)
        chosen = next((r for r in replies if str(r.pk) == request.GET.get("canned")), None)
        body = ""
        if chosen is not None:
            try:
                body = canned_fill(reply=chosen, ticket=ticket, user=request.user)
            except CannedReplyError as exc:
                self.message_user(request, str(exc), messages.ERROR)
        return list(groups.items()), body

    def page_context(self, request, ticket: Ticket, bound: dict) -> dict:
        cv = self.clock(ticket)
        suggestion = incident_suggested(ticket)
        suggested = suggestion.pk if suggestion else None
        canned, filled = self.canned_replies(request, ticket)
        op_forms = {
            "reply": ReplyForm(initial={"body": filled} if filled else None),
            "call": CallForm(ticket=ticket, tz=cv.timezone, initial={"started_at": wall_now(cv.timezone)}),
            "status": StatusForm(initial={"status": ticket.status}),
            "priority": PriorityForm(ticket=ticket, initial={"priority": ticket.priority}),
            "assign": AssignForm(
                initial={"assignee": ticket.assignee_id}, security=ticket.kind == Ticket.Kind.SECURITY
            ),
            "exclude": ExcludeForm(causes=ticket.sla_version.exclusion_causes or []),
            "incident": IncidentLinkForm(
                initial={"incident": ticket.incident_id or suggested}, keep=(ticket.incident_id, suggested)
            ),
            **bound,
        }
        url = self.op_url
        requests = ticket.escalation_requests.select_related("requested_by", "acknowledged_by")
        return {
            "ticket": ticket,
            "clock": cv,
            "badge": sla_badge(cv.state),
            "open_pause": next((p for p in ticket.pauses.all() if p.ended_at is None), None),
            "conversation": ticket.messages.select_related("author").prefetch_related("attachments"),
            "calls": ticket.calls.select_related("contact", "logged_by"),
            "attachments": [
                (a, url("attachment", ticket, a.pk)) for a in ticket.attachments.select_related("uploaded_by")
            ],
            "events": [(e, event_summary(e, cv.timezone)) for e in ticket.events.select_related("actor")],
            "crossings": ticket.crossings.all(),
            "pauses": ticket.pauses.all(),
            "escalation_requests": [(r, url("acknowledge", ticket, r.pk)) for r in requests],
            "op_forms": op_forms,
            "incident_suggestion": suggestion,
            "op_urls": {name: url(name, ticket) for name in [*OPERATIONS, "canned"]},
            "canned": canned,
            "can_operate": self.has_change_permission(request, ticket),
            # What this user may do beyond working the ticket: each form is shown only to them.
            "can": {name: request.user.has_perm(perm) for name, perm in PERMISSIONS.items()},
        }
