"""The staff side of tickets, in the Django admin.

- The Ticket changelist is the staff queue: sorted by the nearest (or most overdue) deadline, with
  an SLA badge and a live countdown; the badges of a page come from one ticket_clock_views batch.
- The ticket page is read-only: its clocks and history, and one small POST form per staff
  operation (reply, status, priority, assign, exclude, escalate, acknowledge), each calling one
  service in tickets.services. Nothing here changes a ticket by itself.
- Vulnerability reports (kind=security) exist here only for staff whose role is "security";
  superuser status alone does not show them.
"""

from __future__ import annotations

from datetime import datetime

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.templatetags.admin_list import ResultList, items_for_result
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.utils import display_for_value, unquote
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db.models import F, Max
from django.http import FileResponse, Http404, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import conditional_escape, escape, format_html
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from contracts.choices import Cause
from contracts.models import EscalationLevel
from portal.core.admin_operations import OperationsMixin
from portal.core.roles import sees_security
from portal.domain.formats import duration, in_tz, wall_left

from . import services
from .attachments import validate_uploads
from .models import Attachment, EscalationRequest, SLACrossing, Ticket, TicketEvent
from .selectors import ClockView, ticket_clock_views
from .services import TicketError

NEXT_DEADLINE = F("next_deadline").asc(nulls_last=True)  # nearest or most overdue first, none last
QUEUE_ORDER = (NEXT_DEADLINE, "-id")  # the order of the partial index ticket_queue_active


def cause_label(cause: str) -> str:
    return dict(Cause.choices).get(cause, cause)


def sla_badge(state: str):
    return format_html('<span class="sla-badge sla-{}">{}</span>', state, Ticket.SLAState(state).label)


def countdown(due: datetime, tz: str, now: datetime, note: str = ""):
    return format_html(
        '<time datetime="{}" data-countdown title="{}">{}</time><br><small class="sla-due">{}</small>',
        due.isoformat(),
        note,
        wall_left(due - now),
        in_tz(due, tz),
    )


# --- Forms of the staff operations: they shape input; the services decide -----------------------
class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class AttachmentsField(forms.FileField):
    """Several files in one input, each checked on its content by tickets.attachments; the checked
    type rides on the upload as `checked_type`, which the services store."""

    widget = MultipleFileInput

    def __init__(self, **kwargs):
        super().__init__(required=False, **kwargs)

    def clean(self, data, initial=None):
        uploads = [u for u in (data if isinstance(data, list | tuple) else [data]) if u]
        for upload, checked in validate_uploads(uploads):
            upload.checked_type = checked
        return uploads


class ReplyForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}), max_length=20000)
    internal = forms.BooleanField(required=False, label="Internal note (staff only: the customer is not told)")
    attachments = AttachmentsField()


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=Ticket.Status.choices)


class PriorityForm(forms.Form):
    priority = forms.ChoiceField(help_text="The clocks are recomputed from filing under the new priority.")

    def __init__(self, *args, ticket: Ticket, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["priority"].choices = [
            (p.priority, p.get_priority_display()) for p in ticket.sla_version.priorities.all()
        ]


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(is_staff=True, is_active=True).order_by("name", "email"),
        required=False,
        empty_label="— unassigned —",
    )


class ExcludeForm(forms.Form):
    cause = forms.ChoiceField(error_messages={"invalid_choice": "Choose a cause from the contract's exclusion list."})
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="Kept in the ticket's audit trail.")

    def __init__(self, *args, causes, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cause"].choices = [(c, cause_label(c)) for c in causes]


# --- The queue ----------------------------------------------------------------------------------
class SLAFilter(admin.SimpleListFilter):
    title = "SLA"
    parameter_name = "sla"

    def lookups(self, request, model_admin):
        return [("breached", "Breached"), ("warned", "Target passed"), ("unassigned", "Unassigned (active)")]

    def queryset(self, request, queryset):
        if self.value() == "breached":
            return queryset.filter(breached=True)
        if self.value() == "warned":
            return queryset.filter(warned=True)
        if self.value() == "unassigned":
            return queryset.filter(assignee__isnull=True, status__in=Ticket.ACTIVE)
        return queryset


class StatusFilter(admin.SimpleListFilter):
    """The queue opens on the work still to do (new, open, waiting): the partial index
    ticket_queue_active serves it in deadline order however many tickets were ever filed."""

    title = "status"
    parameter_name = "status"
    ACTIVE = "active"
    ALL = "all"

    def lookups(self, request, model_admin):
        return [(self.ACTIVE, "Active (new, open, waiting)"), *Ticket.Status.choices, (self.ALL, "All")]

    def value(self):
        return super().value() or self.ACTIVE

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == str(lookup),
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        value = self.value()
        if value == self.ACTIVE:
            return queryset.filter(status__in=Ticket.ACTIVE)
        if value in Ticket.Status.values:
            return queryset.filter(status=value)
        return queryset


class LevelFilter(admin.SimpleListFilter):
    """Escalation level. Its choices come from the SLA terms' ladders (a few rows), not from a
    SELECT DISTINCT over every ticket (which the plain field filter runs: 0.2 s at a million)."""

    title = "escalation level"
    parameter_name = "level"

    def lookups(self, request, model_admin):
        top = EscalationLevel.objects.aggregate(top=Max("level"))["top"] or 1
        return [(str(n), f"Level {n}") for n in range(1, top + 1)]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(escalation_level=int(value)) if value and value.isdigit() else queryset


class AssigneeFilter(admin.SimpleListFilter):
    """The staff a ticket can be assigned to, from one query of names (Django's related-field
    filter builds a model instance per person on every page of the queue)."""

    title = "assignee"
    parameter_name = "assignee__id__exact"

    def lookups(self, request, model_admin):
        staff = get_user_model().objects.filter(is_staff=True).order_by("name", "email")
        return [(str(pk), name or email) for pk, name, email in staff.values_list("pk", "name", "email")]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(assignee_id=int(value)) if value and value.isdigit() else queryset


class CappedPaginator(Paginator):
    """Counts the matching tickets only up to CAP + 1. The queue's count of every active ticket
    (100,000 at scale) took longer in PostgreSQL than the rest of the page; staff who need a
    ticket beyond the first thousand filter or search for it. The pagination and the actions'
    "select all" say "more than 1,000" then (templates/admin/tickets/ticket/)."""

    CAP = 1000
    # The order in which an index finds the first CAP + 1 rows (TicketAdmin.get_paginator sets the
    # queue's own where the partial index ticket_queue_active serves the filter). Unordered, the
    # count was a sequential scan that stops at the 1,001st active ticket: 0.5 ms when PostgreSQL
    # happened to start it near the newest tickets (synchronised scans), 230 ms from the start of
    # the table at 1,000,000 tickets, where the first active ticket is 900,000 rows in.
    count_order: tuple = ()

    @cached_property
    def count(self) -> int:
        return self.object_list.order_by(*self.count_order)[: self.CAP + 1].count()

    @property
    def capped(self) -> bool:
        return self.count > self.CAP


class TicketChangeList(ChangeList):
    _change_url = None

    def url_for_result(self, result) -> str:
        # One reverse() for the page, not two per row (the number and the subject link).
        if self._change_url is None:
            self._change_url = super().url_for_result(Ticket(pk=0))
        return self._change_url.replace("/0/", f"/{result.pk}/", 1)

    def get_results(self, request):
        super().get_results(request)
        # The page's clocks in one batch (a fixed number of queries, however many rows).
        tickets = list(self.result_list)  # evaluates (and caches) the page the template iterates
        views = ticket_clock_views(tickets, now=timezone.now())
        for ticket in tickets:
            ticket.sla_clock = views[ticket.pk]

    # --- The rows ----------------------------------------------------------------------------------
    # Django's items_for_result decides, for every cell of every row, what kind of column it is
    # (lookup_field, the field's class, its link, its CSS classes) and builds each cell with two
    # format_html calls: a sixth of the queue's time for 25 rows of 10 cells. Here each column's
    # decisions are taken once per page and a row is one string, with the same markup
    # (tests/test_ticket_admin.py compares the two on tickets of every kind).
    COLUMN_VALUES = {
        "action_checkbox": lambda admin_, t: admin_.action_checkbox(t),
        "number": lambda admin_, t: t.number,
        "subject": lambda admin_, t: t.subject,
        "organisation": lambda admin_, t: str(t.organisation),
        "priority_code": lambda admin_, t: admin_.priority_code(t),
        "status": lambda admin_, t: t.get_status_display(),
        "sla": lambda admin_, t: admin_.sla(t),
        "deadline": lambda admin_, t: admin_.deadline(t),
        "level": lambda admin_, t: admin_.level(t),
        "assignee_name": lambda admin_, t: admin_.assignee_name(t),
    }
    COLUMN_CLASSES = {"action_checkbox": "action-checkbox", "organisation": "field-organisation nowrap"}

    def rows(self) -> list[ResultList]:
        """The page's rows for change_list_results.html: each a list of one string, its cells."""
        if self.formset is not None or self.is_popup or self.to_field or not self.fast_columns():
            return [ResultList(None, items_for_result(self, t, None)) for t in self.result_list]
        admin_, empty = self.model_admin, self.model_admin.get_empty_value_display()
        link = escape(
            add_preserved_filters(
                {"preserved_filters": self.preserved_filters, "opts": self.opts}, self.url_for_result(Ticket(pk=0))
            )
        )
        columns = []  # (opening, closing, value, linked) per column
        first_link = True
        for name in self.list_display:
            css = self.COLUMN_CLASSES.get(name, f"field-{name}")
            if name in self.list_display_links:
                tag = "th" if first_link else "td"  # as Django: the first link is the row's header
                first_link = False
                columns.append(
                    (f'<{tag} class="{css}"><a href="{link}">', f"</a></{tag}>", self.COLUMN_VALUES[name], True)
                )
            else:
                columns.append((f'<td class="{css}">', "</td>", self.COLUMN_VALUES[name], False))
        out = []
        for t in self.result_list:
            here = f"/{t.pk}/"
            cells = []
            for opening, closing, value, linked in columns:
                shown = value(admin_, t)
                if isinstance(shown, str):  # SafeString too: escaped only if it is not safe
                    shown = conditional_escape(shown) if shown.strip() else empty
                else:
                    shown = conditional_escape(display_for_value(shown, empty))
                cells.append((opening.replace("/0/", here, 1) if linked else opening) + shown + closing)
            out.append(ResultList(None, [mark_safe("".join(cells))]))  # every value was escaped above
        return out

    def fast_columns(self) -> bool:
        """Whether every column of the page is one rows() knows (else Django renders the rows).
        With no links named (None or empty) Django links none or the first column: its own path."""
        links = self.list_display_links
        return bool(links) and all(name in self.COLUMN_VALUES for name in (*self.list_display, *links))


class AdminMedia:
    css = {"all": ["admin-extra/tickets.css"]}
    js = ["js/admin-countdown.js"]


OPERATIONS = ["reply", "status", "priority", "assign", "take", "exclude", "escalate"]


@admin.register(Ticket)
class TicketAdmin(OperationsMixin, admin.ModelAdmin):
    refusal = TicketError
    list_display = [
        "number", "subject", "organisation", "priority_code", "status", "sla", "deadline", "level", "assignee_name",
    ]  # fmt: skip
    list_display_links = ["number", "subject"]
    # No organisation filter: a thousand organisations make a sidebar nobody scrolls; the search
    # box finds an organisation by name.
    list_filter = [StatusFilter, SLAFilter, "priority", LevelFilter, AssigneeFilter, "kind"]
    list_select_related = ["organisation", "assignee"]
    list_per_page = 25  # a screen of work, as the peer's queue (bench/RESULTS.md); each row carries its live clocks
    paginator = CappedPaginator
    show_full_result_count = False  # "N of M": M would count every ticket ever filed
    search_fields = ["subject", "organisation__name"]
    search_help_text = "Subject, organisation, or ticket number (42 or #42)."
    ordering = [NEXT_DEADLINE]
    actions = ["take", "resolve", "escalate_now", "exclude_from_sla"]
    change_form_template = "admin/tickets/ticket/change_form.html"
    fieldsets = [
        (None, {"fields": ["number", "subject", "organisation", "contract", "service", "kind", "created_by", "filed"]}),
        ("Request", {"fields": ["description", "steps_to_reproduce"]}),
        ("Handling", {"fields": ["status", "priority", "assignee", "escalation_level", "sla_version", "exclusion"]}),
    ]  # fmt: skip
    Media = AdminMedia

    # --- Who sees what; nothing is added, deleted or edited as raw fields ------------------------
    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if sees_security(request.user) else qs.exclude(kind=Ticket.Kind.SECURITY)

    def get_list_filter(self, request):
        # The kind filter only means something to those who see vulnerability reports.
        return [f for f in self.list_filter if f != "kind" or sees_security(request.user)]

    def get_readonly_fields(self, request, obj=None):
        return [f for _, opts in self.fieldsets for f in opts["fields"]]

    def has_add_permission(self, request):
        return False  # customers file tickets (tickets.services.ticket_open)

    def has_delete_permission(self, request, obj=None):
        return False  # the audit trail stays

    def get_changelist(self, request, **kwargs):
        return TicketChangeList

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        paginator = super().get_paginator(request, queryset, per_page, orphans, allow_empty_first_page)
        if request.GET.get(StatusFilter.parameter_name, StatusFilter.ACTIVE) in (StatusFilter.ACTIVE, *Ticket.ACTIVE):
            paginator.count_order = QUEUE_ORDER  # counted in the partial index's order (CappedPaginator)
        return paginator

    def get_search_results(self, request, queryset, search_term):
        qs, duplicates = super().get_search_results(request, queryset, search_term)
        number = search_term.strip().lstrip("#")
        if number.isdigit():
            qs |= queryset.filter(pk=int(number))
        return qs, duplicates

    # --- Columns ----------------------------------------------------------------------------------
    def action_checkbox(self, obj):
        """Django's own checkbox, written out: its widget is rendered through the form templates,
        a tenth of the queue's time for 25 rows. The same markup (tests/test_ticket_admin.py)."""
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            helpers.ACTION_CHECKBOX_NAME, obj.pk, f"Select this object for an action - {obj}",
        )  # fmt: skip

    def clock(self, obj: Ticket) -> ClockView:
        if getattr(obj, "sla_clock", None) is None:
            obj.sla_clock = ticket_clock_views([obj])[obj.pk]
        return obj.sla_clock

    @admin.display(description="Number", ordering="pk")
    def number(self, obj):
        return obj.number

    @admin.display(description="Priority", ordering="priority")
    def priority_code(self, obj):
        return format_html('<span title="{}">{}</span>', obj.get_priority_display(), obj.priority)

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
        due = cv.next_deadline or obj.next_deadline  # the next pending one, else the most overdue
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

    @admin.display(description="Filed")
    def filed(self, obj):
        return in_tz(obj.filed_at, obj.sla_version.timezone)

    @admin.display(description="Excluded from the SLA")
    def exclusion(self, obj):
        return f"{cause_label(obj.excluded_cause)}: {obj.excluded_reason}" if obj.is_excluded else "No"

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

    @admin.action(description="Resolve", permissions=["change"])
    def resolve(self, request, queryset):
        user, resolved = request.user, Ticket.Status.RESOLVED
        self._each(
            request, queryset, "resolved", lambda t: services.ticket_set_status(ticket=t, actor=user, status=resolved)
        )

    @admin.action(description="Escalate now (one level up)", permissions=["change"])
    def escalate_now(self, request, queryset):
        user = request.user
        self._each(
            request, queryset, "escalated one level", lambda t: services.ticket_escalate_now(ticket=t, actor=user)
        )

    @admin.action(description="Exclude from the SLA…", permissions=["change"])
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
        context = {
            **self.admin_site.each_context(request),
            "title": "Exclude from the SLA",
            "opts": self.opts,
            "tickets": tickets,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/tickets/ticket/exclude_selected.html", context)

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

    def page_context(self, request, ticket: Ticket, bound: dict) -> dict:
        cv = self.clock(ticket)
        op_forms = {
            "reply": ReplyForm(),
            "status": StatusForm(initial={"status": ticket.status}),
            "priority": PriorityForm(ticket=ticket, initial={"priority": ticket.priority}),
            "assign": AssignForm(initial={"assignee": ticket.assignee_id}),
            "exclude": ExcludeForm(causes=ticket.sla_version.exclusion_causes or []),
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
            "attachments": [
                (a, url("attachment", ticket, a.pk)) for a in ticket.attachments.select_related("uploaded_by")
            ],
            "events": [(e, event_summary(e)) for e in ticket.events.select_related("actor")],
            "crossings": ticket.crossings.all(),
            "pauses": ticket.pauses.all(),
            "escalation_requests": [(r, url("acknowledge", ticket, r.pk)) for r in requests],
            "op_forms": op_forms,
            "op_urls": {name: url(name, ticket) for name in OPERATIONS},
            "can_operate": self.has_change_permission(request, ticket),
        }

    def op_url(self, name: str, ticket: Ticket, *args) -> str:
        return reverse(f"admin:tickets_ticket_{name}", args=[ticket.pk, *args])

    # --- The operations: POST only, CSRF-checked and staff-only (admin_view), change permission ---
    def get_urls(self):
        def post(view):
            return self.admin_site.admin_view(require_POST(view))

        ops = [path(f"<int:object_id>/{name}/", post(getattr(self, f"{name}_view")), name=f"tickets_ticket_{name}") for name in OPERATIONS]  # fmt: skip
        return [
            *ops,
            path(
                "<int:object_id>/escalations/<int:request_id>/acknowledge/",
                post(self.acknowledge_view),
                name="tickets_ticket_acknowledge",
            ),
            path(
                "<int:object_id>/attachments/<int:attachment_id>/",
                self.admin_site.admin_view(self.attachment_view),
                name="tickets_ticket_attachment",
            ),
            *super().get_urls(),
        ]

    def reply_view(self, request, object_id):
        ticket, user = self.object_to_change(request, object_id), request.user

        def call(data):
            services.ticket_reply(
                ticket=ticket, author=user, body=data["body"], internal=data["internal"], files=data["attachments"]
            )

        def text(data):
            return "Internal note added." if data["internal"] else "Reply sent to the customer."

        return self.run(request, ticket, "reply", ReplyForm(request.POST, request.FILES), call, text, "#conversation")

    def status_view(self, request, object_id):
        ticket, user = self.object_to_change(request, object_id), request.user

        def call(data):
            services.ticket_set_status(ticket=ticket, actor=user, status=data["status"])

        return self.run(request, ticket, "status", StatusForm(request.POST), call, "Status changed.")

    def priority_view(self, request, object_id):
        ticket, user = self.object_to_change(request, object_id), request.user

        def call(data):
            services.ticket_change_priority(ticket=ticket, actor=user, priority=data["priority"])

        form = PriorityForm(request.POST, ticket=ticket)
        return self.run(request, ticket, "priority", form, call, "Priority changed; the clocks were recomputed.")

    def assign_view(self, request, object_id):
        ticket, user = self.object_to_change(request, object_id), request.user

        def call(data):
            services.ticket_assign(ticket=ticket, actor=user, assignee=data["assignee"])

        return self.run(request, ticket, "assign", AssignForm(request.POST), call, "Assignee changed.")

    def take_view(self, request, object_id):
        ticket, user = self.object_to_change(request, object_id), request.user

        def call(data):
            services.ticket_assign(ticket=ticket, actor=user, assignee=user)

        return self.run(request, ticket, "take", forms.Form({}), call, "The ticket is yours.")

    def exclude_view(self, request, object_id):
        ticket, user = self.object_to_change(request, object_id), request.user

        def call(data):
            services.ticket_exclude(ticket=ticket, actor=user, cause=data["cause"], reason=data["reason"])

        form = ExcludeForm(request.POST, causes=ticket.sla_version.exclusion_causes or [])
        return self.run(request, ticket, "exclude", form, call, "The ticket is excluded from the SLA.")

    def escalate_view(self, request, object_id):
        ticket, user = self.object_to_change(request, object_id), request.user

        def call(data):
            services.ticket_escalate_now(ticket=ticket, actor=user)

        return self.run(request, ticket, "escalate", forms.Form({}), call, "Escalated one level up.")

    def acknowledge_view(self, request, object_id, request_id):
        ticket, user = self.object_to_change(request, object_id), request.user
        escalation = get_object_or_404(EscalationRequest, pk=request_id, ticket=ticket)

        def call(data):
            services.escalation_acknowledge(request=escalation, actor=user)

        return self.run(request, ticket, "acknowledge", forms.Form({}), call, "Escalation request acknowledged.")

    def attachment_view(self, request, object_id, attachment_id):
        ticket = self.get_object(request, str(object_id))
        if ticket is None or not self.has_view_permission(request, ticket):
            raise Http404("No such ticket.")
        attachment = get_object_or_404(Attachment, pk=attachment_id, ticket=ticket)
        return FileResponse(
            attachment.file.open("rb"),
            as_attachment=True,
            filename=attachment.original_name,
            content_type=attachment.content_type,
        )


def event_summary(event: TicketEvent) -> str:
    data = dict(event.data or {})
    if "old" in data and "new" in data:
        return f"{data.pop('old')} → {data.pop('new')}"
    if event.kind == TicketEvent.Kind.ASSIGNED:
        return data.get("assignee") or "unassigned"
    if event.kind == TicketEvent.Kind.EXCLUDED:
        return f"{cause_label(data.get('cause', ''))}: {data.get('reason', '')}"
    if event.kind == TicketEvent.Kind.ESCALATED:
        return f"level {data.get('from')} → {data.get('to')}" + ("" if event.actor_id is None else " (by staff)")
    return ", ".join(f"{k}: {v}" for k, v in data.items())


# --- Escalation requests and SLA crossings: read-only lists --------------------------------------
class ReadOnlyAdmin(admin.ModelAdmin):
    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if sees_security(request.user) else qs.exclude(ticket__kind=Ticket.Kind.SECURITY)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Ticket", ordering="ticket")
    def ticket_link(self, obj):
        url = reverse("admin:tickets_ticket_change", args=[obj.ticket_id])
        return format_html('<a href="{}">{} {}</a>', url, obj.ticket.number, obj.ticket.subject)

    @admin.display(description="Organisation", ordering="ticket__organisation__name")
    def organisation(self, obj):
        return obj.ticket.organisation


class PendingFilter(admin.SimpleListFilter):
    """Pending requests unless asked otherwise."""

    title = "acknowledgement"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("pending", "Pending"), ("acknowledged", "Acknowledged"), ("all", "All")]

    def choices(self, changelist):
        for value, label in self.lookup_choices:
            yield {
                "selected": (self.value() or "pending") == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }

    def queryset(self, request, queryset):
        value = self.value() or "pending"
        if value == "pending":
            return queryset.filter(acknowledged_at__isnull=True)
        if value == "acknowledged":
            return queryset.filter(acknowledged_at__isnull=False)
        return queryset


@admin.register(EscalationRequest)
class EscalationRequestAdmin(ReadOnlyAdmin):
    list_display = ["ticket_link", "organisation", "requested_by", "requested_at", "ack", "acknowledged_at", "acknowledged_by"]  # fmt: skip
    list_filter = [PendingFilter, "ticket__organisation"]
    list_select_related = ["ticket__organisation", "ticket__sla_version", "requested_by", "acknowledged_by"]
    search_fields = ["ticket__subject", "ticket__organisation__name", "reason"]
    ordering = [F("ack_due").asc(nulls_last=True)]
    actions = ["acknowledge"]
    Media = AdminMedia

    @admin.display(description="Acknowledge by", ordering="ack_due")
    def ack(self, obj):
        if obj.ack_due is None or obj.acknowledged_at is not None:
            return "—"
        return countdown(obj.ack_due, obj.ticket.sla_version.timezone, timezone.now())

    def has_acknowledge_permission(self, request):
        return request.user.has_perm("tickets.change_ticket")

    @admin.action(description="Acknowledge", permissions=["acknowledge"])
    def acknowledge(self, request, queryset):
        count = 0
        for escalation in queryset.filter(acknowledged_at__isnull=True).select_related("ticket"):
            services.escalation_acknowledge(request=escalation, actor=request.user)
            count += 1
        self.message_user(request, f"{count} escalation request(s) acknowledged.", messages.SUCCESS)


@admin.register(SLACrossing)
class SLACrossingAdmin(ReadOnlyAdmin):
    list_display = ["ticket_link", "organisation", "priority", "clock", "kind", "at", "recorded_at"]
    list_filter = ["kind", "ticket__priority", "ticket__organisation"]
    list_select_related = ["ticket__organisation"]
    search_fields = ["ticket__subject", "ticket__organisation__name"]
    date_hierarchy = "at"
    ordering = ["-at"]

    @admin.display(description="Priority", ordering="ticket__priority")
    def priority(self, obj):
        return obj.ticket.priority
