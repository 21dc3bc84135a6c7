from datetime import UTC
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.widgets import AdminDateWidget
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from portal.core.admin_audit import AuditedAdmin
from portal.core.audit import row_state
from portal.core.timezones import AdminTimezoneInput
from portal.domain.dates import EVIDENCE_YEARS, local_midnight
from portal.domain.formats import in_tz
from portal.domain.lint import PriorityTargets, lint_terms
from portal.domain.terms_changes import by_section

from ..calendars import calendars_edited
from ..choices import Cause
from ..evidence import contract_reframing_refused
from ..models import (
    SLA,
    ClosedDate,
    Contract,
    CreditTier,
    EscalationDwell,
    EscalationLevel,
    PriorityTerm,
    SLAVersion,
    WorkingCalendar,
    WorkingHours,
    validate_timezone,
)
from ..selectors import version_preview
from ..services import (
    DraftError,
    PublishError,
    StaleDraftError,
    calendar_closed_dates,
    calendar_closed_dates_audit,
    effective_problem,
    sla_terms_edit,
    sla_version_draft,
    sla_version_publish,
    version_terms_fingerprint,
)


def calendar_frozen(calendar) -> bool:
    """A calendar a published version uses: its hours and timezone are part of those terms (asked
    once per calendar object: the admin asks for every field and inline of the page)."""
    if calendar is None or calendar.pk is None:
        return False
    if not hasattr(calendar, "_in_published_terms"):
        calendar._in_published_terms = WorkingCalendar.objects.filter(pk=calendar.pk).in_published_terms().exists()
    return calendar._in_published_terms


def clock_locked(request, calendar) -> bool:
    """A calendar's clock (hours, timezone, holidays) this staff member may not change: one of
    published terms (for anyone), or any for staff who keep only its closed dates (support leads:
    shaping a calendar, like adding one, is the managers' work)."""
    return calendar_frozen(calendar) or not request.user.has_perm("contracts.add_workingcalendar")


class WorkingHoursInline(admin.TabularInline):
    """Read-only on a calendar of published terms (a change of hours is a new calendar on a new draft)
    and for staff who keep only closed dates."""

    model = WorkingHours
    extra = 0

    def has_add_permission(self, request, obj=None):
        return not clock_locked(request, obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return not clock_locked(request, obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not clock_locked(request, obj) and super().has_delete_permission(request, obj)


class ClosedDateInline(admin.TabularInline):
    model = ClosedDate
    extra = 0


@admin.register(WorkingCalendar)
class WorkingCalendarAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ["name", "timezone", "always_open", "holiday_country", "holiday_subdivision"]
    list_filter = ["always_open", "holiday_country", "timezone"]
    search_fields = ["name"]
    inlines = [WorkingHoursInline, ClosedDateInline]
    audit_action = "calendar"

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "timezone":
            kwargs["widget"] = AdminTimezoneInput
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def audit_state(self, obj):
        """Its fields and working hours (its closed dates: calendar.closed_dates_edited)."""
        hours = [str(h) for h in obj.hours.all()] if obj.pk else []  # by weekday
        return {**row_state(obj), "working_hours": hours}

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if calendar_frozen(obj):
            fields += ["published_terms", *WorkingCalendar.FROZEN_FIELDS]
        elif clock_locked(request, obj):
            fields += list(WorkingCalendar.CLOCK_FIELDS)
        return fields

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if not calendar_frozen(obj):
            return fields
        first = ["name", "published_terms", *WorkingCalendar.CLOCK_FIELDS]
        return [*first, *(f for f in fields if f not in first)]

    @admin.display(description="Published terms")
    def published_terms(self, obj):
        return (
            "Published SLA versions use this calendar: its name (the support hours customers read), "
            "timezone, holidays and working hours are frozen "
            "(a change is a new calendar, used by a new draft version). Its closed dates can be edited: "
            "each edit is audited and the open tickets on the calendar get their deadlines again."
        )

    def save_model(self, request, obj, form, change):
        # The closed dates as they were, for the audit log's before (the inlines are saved after this).
        request._closed_dates_before = calendar_closed_dates(obj) if change else {}
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        reason = calendar_closed_dates_audit(
            calendar=form.instance, before=getattr(request, "_closed_dates_before", {}), actor=request.user
        )
        if change:
            calendars_edited([form.instance.pk], reason)  # the open tickets on it get their deadlines again


PUBLISH = "contracts.publish_slaversion"


def may_edit_version(request, version) -> bool:
    """A published version is read-only for everyone, superusers and publishers included (and
    refused by the models too: contracts.models.PublishedTermsError): changes are a new draft."""
    return version is None or not version.is_published


class TermsInline(admin.TabularInline):
    """A version's rows of terms: their own permissions, and read-only in a published version."""

    extra = 0

    def has_add_permission(self, request, obj=None):
        return may_edit_version(request, obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return may_edit_version(request, obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return may_edit_version(request, obj) and super().has_delete_permission(request, obj)


class PriorityTermInline(TermsInline):
    model = PriorityTerm


class EscalationLevelInline(TermsInline):
    model = EscalationLevel


class EscalationDwellInline(TermsInline):
    model = EscalationDwell


class CreditTierInline(TermsInline):
    model = CreditTier


EFFECTIVE_HELP = (
    "The version takes effect at 00:00 of this date in its timezone: a date that has not begun there, "
    "after every published version's."
)


def effective_date_error(*, sla, day, tz: str, draft_pk=None) -> str | None:
    """Why a version of `sla` cannot take effect at 00:00 of `day` in `tz`, or None."""
    if day.year not in EVIDENCE_YEARS:  # year 1's midnight in Nairobi overflowed datetime (a 500)
        return f"Enter a date in the years {EVIDENCE_YEARS.start} to {EVIDENCE_YEARS.stop - 1}."
    return effective_problem(
        sla_id=sla.pk, effective_from=local_midnight(day, tz), tz=tz, now=timezone.now(), draft_pk=draft_pk
    )


class SLAVersionForm(forms.ModelForm):
    """A draft's terms. Its effective moment is chosen as a date (00:00 in the version's timezone)."""

    effective_on = forms.DateField(label="Effective date", widget=AdminDateWidget, help_text=EFFECTIVE_HELP)
    exclusion_causes = forms.MultipleChoiceField(
        choices=[c for c in Cause.choices if c[0] != Cause.UNPLANNED],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Causes of downtime this contract excludes from uptime and the SLA.",
    )

    class Meta:
        model = SLAVersion
        fields = [
            "sla", "number", "change_summary", "uptime_guarantee", "timezone", "credit_kind", "claim_window_days",
            "exclusion_causes", "business_calendar", "escalation_ack_time", "escalation_ack_calendar",
            "maintenance_notice", "offpeak_start", "offpeak_end", "maintenance_annual_cap",
        ]  # fmt: skip
        widgets = {"timezone": AdminTimezoneInput}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        version = self.instance
        if version.pk and version.effective_from and "effective_on" in self.fields:
            self.initial.setdefault(
                "effective_on", version.effective_from.astimezone(ZoneInfo(version.timezone)).date()
            )

    def clean(self):
        cleaned = super().clean()
        day = cleaned.get("effective_on")
        tz = cleaned.get("timezone", self.instance.timezone)
        sla = cleaned.get("sla") or (self.instance.sla if self.instance.sla_id else None)
        try:
            validate_timezone(tz)
        except ValidationError:
            return cleaned  # the timezone field says why
        if day is not None and sla is not None:
            problem = effective_date_error(sla=sla, day=day, tz=tz, draft_pk=self.instance.pk)
            if problem:
                self.add_error("effective_on", problem)
            else:
                self.instance.effective_from = local_midnight(day, tz)
        return cleaned


class DraftForm(forms.Form):
    """The "New draft version" action: when the copy takes effect."""

    effective_on = forms.DateField(label="Effective date", widget=AdminDateWidget, help_text=EFFECTIVE_HELP)

    def __init__(self, *args, sla, tz: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.sla, self.tz = sla, tz

    def clean_effective_on(self):
        day = self.cleaned_data["effective_on"]
        problem = effective_date_error(sla=self.sla, day=day, tz=self.tz)
        if problem:
            raise ValidationError(problem)
        return day


def version_warnings(version: SLAVersion) -> list[str]:
    """Contract lint of a saved version (reads its inlines)."""
    return lint_terms(
        guarantee=version.uptime_guarantee,
        tiers=[t.as_tier() for t in version.credit_tiers.all()],
        priorities=[
            PriorityTargets(p.priority, p.first_response, p.resolution_target, p.resolution_limit)
            for p in version.priorities.all()
        ],
        dwells=[(d.level, d.priority, d.dwell) for d in version.escalation_dwells.all()],
        levels=[lv.level for lv in version.escalation_levels.all()],
    )


@admin.register(SLAVersion)
class SLAVersionAdmin(admin.ModelAdmin):
    form = SLAVersionForm
    list_display = ["__str__", "effective", "published_at", "uptime_guarantee", "timezone", "credit_kind"]
    list_filter = ["sla", "credit_kind", "timezone"]
    list_select_related = ["sla"]  # its name is each row's __str__
    search_fields = ["sla__name"]
    readonly_fields = ["effective", "published_at", "contract_lint"]
    inlines = [PriorityTermInline, EscalationLevelInline, EscalationDwellInline, CreditTierInline]
    actions = ["publish", "new_draft"]
    fieldsets = [
        (None, {"fields": ["sla", "number", "effective_on", "published_at", "change_summary", "contract_lint"]}),
        (
            "Uptime and credits",
            {"fields": ["uptime_guarantee", "timezone", "credit_kind", "claim_window_days", "exclusion_causes"]},
        ),
        ("Clocks", {"fields": ["business_calendar", "escalation_ack_time", "escalation_ack_calendar"]}),
        (
            "Maintenance rules",
            {"fields": ["maintenance_notice", "offpeak_start", "offpeak_end", "maintenance_annual_cap"]},
        ),
    ]

    def has_change_permission(self, request, obj=None):
        return may_edit_version(request, obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return may_edit_version(request, obj) and super().has_delete_permission(request, obj)

    def has_publish_permission(self, request):
        return request.user.has_perm(PUBLISH)

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None and obj.is_published:
            # Read-only: the moment itself, in the SLA's own time (the date field is for drafts).
            first = [f if f != "effective_on" else "effective" for f in fieldsets[0][1]["fields"]]
            fieldsets = [(None, {**fieldsets[0][1], "fields": first}), *fieldsets[1:]]
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "sla", "number"] if obj is not None else fields  # a draft stays the copy it was made as

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context.update(
            {
                "may_publish": obj is not None and not obj.is_published and self.has_publish_permission(request),
                "may_draft": obj is not None and self.has_add_permission(request),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            }
        )
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description="Effective from", ordering="effective_from")
    def effective(self, obj):
        """The moment in the SLA's own timezone, where its midnight falls, with UTC beside it."""
        if obj is None or obj.effective_from is None:
            return "—"
        return f"{in_tz(obj.effective_from, obj.timezone)}, {obj.effective_from.astimezone(UTC):%Y-%m-%d %H:%M} UTC"

    @admin.display(description="Contract lint")
    def contract_lint(self, obj):
        if obj is None or obj.pk is None:
            return "Save to check the terms."
        found = version_warnings(obj)
        if not found:
            return "No warnings."
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((w,) for w in found)))

    def save_model(self, request, obj, form, change):
        pass  # saved with its inlines in save_related, inside contracts.services.sla_terms_edit (the audit)

    def save_related(self, request, form, formsets, change):
        with sla_terms_edit(version=form.instance, actor=request.user, created=not change):
            super().save_model(request, form.instance, form, change)
            super().save_related(request, form, formsets, change)
        for warning in version_warnings(form.instance):
            self.message_user(request, warning, messages.WARNING)

    def _page(self, request, template: str, title: str, status: int = 200, **context):
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
            **context,
        }
        return TemplateResponse(request, f"admin/contracts/slaversion/{template}", context, status=status)

    @admin.action(description="Publish… (confirm, then the contacts of every contract on the SLA are emailed)", permissions=["publish"])  # fmt: skip
    def publish(self, request, queryset):
        """First a confirmation page: what each version changes against the one before it and who is
        told, with the fingerprint of each draft's terms as shown. Only its POST (apply=yes)
        publishes, and only a draft whose terms are still those (else the page is shown again)."""
        versions = list(queryset.select_related("sla").order_by("sla__name", "number"))
        if request.POST.get("apply") == "yes":
            stale = []
            for version in versions:
                seen = request.POST.get(f"terms-{version.pk}", "")
                try:
                    sent = sla_version_publish(version=version, actor=request.user, seen=seen)
                except StaleDraftError as exc:
                    self.message_user(request, str(exc), messages.ERROR)
                    stale.append(version)
                except PublishError as exc:
                    self.message_user(request, str(exc), messages.ERROR)
                else:
                    self.message_user(request, f"{version} published; {sent} contact(s) notified.", messages.SUCCESS)
            if not stale:
                return None
            versions = stale  # their terms as they are now, to review again
        previews = []
        for version in versions:
            if version.is_published:
                self.message_user(request, f"{version} is already published.", messages.ERROR)
                continue
            problem = effective_problem(
                sla_id=version.sla_id, effective_from=version.effective_from, tz=version.timezone,
                now=timezone.now(), draft_pk=version.pk,
            )  # fmt: skip
            preview = version_preview(version=version)
            previews.append(
                {
                    "preview": preview,
                    "sections": by_section(preview.changes),
                    "problem": problem,
                    "warnings": version_warnings(preview.version),
                    "fingerprint": version_terms_fingerprint(preview.version),
                }
            )
        if not previews:
            return None
        return self._page(
            request, "publish_confirm.html", "Publish SLA terms", previews=previews,
            publishable=all(p["problem"] is None for p in previews),
        )  # fmt: skip

    @admin.action(description="New draft version… (a copy, from a date you choose)", permissions=["add"])
    def new_draft(self, request, queryset):
        """A copy of the SLA's latest version, taking effect at 00:00 (its timezone) of a chosen date."""
        slas = {v.sla for v in queryset.select_related("sla")}
        if len(slas) != 1:
            self.message_user(request, "Choose versions of one SLA: a draft copies its latest version.", messages.ERROR)
            return None
        (sla,) = slas
        latest = sla.versions.order_by("-number").first()
        form = DraftForm(request.POST if "apply" in request.POST else None, sla=sla, tz=latest.timezone)
        if form.is_valid():
            try:
                draft = sla_version_draft(sla=sla, effective_on=form.cleaned_data["effective_on"], actor=request.user)
            except DraftError as exc:
                form.add_error("effective_on", str(exc))
            else:
                self.message_user(
                    request,
                    f"Draft {draft} created, effective {draft.effective_from.astimezone(ZoneInfo(draft.timezone)):%Y-%m-%d %H:%M} "
                    f"({draft.timezone}). Edit its terms, then publish it.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:contracts_slaversion_change", args=[draft.pk]))
        return self._page(
            request, "new_draft.html", "New draft version", status=400 if form.is_bound else 200,
            sla=sla, latest=latest, selected=list(queryset), form=form, action="new_draft", submit="Make the draft",
        )  # fmt: skip


class SLAVersionInline(admin.TabularInline):
    model = SLAVersion
    fields = ["number", "effective_from", "published_at", "uptime_guarantee", "timezone"]
    readonly_fields = fields
    extra = 0
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(SLA)
class SLAAdmin(AuditedAdmin, admin.ModelAdmin):
    audit_action = "sla"  # its name, vendor and summary, which customers read beside the terms
    list_display = ["name", "vendor", "is_template", "template_key"]
    list_filter = ["is_template", "vendor"]
    search_fields = ["name", "vendor"]
    inlines = [SLAVersionInline]


class ContractForm(forms.ModelForm):  # the admin gives it its model and fields
    def clean(self):
        cleaned = super().clean()
        sla, starts_on = cleaned.get("sla"), cleaned.get("starts_on")
        if self.instance.pk and sla is not None and starts_on is not None:
            stored = Contract.objects.select_related("sla").get(pk=self.instance.pk)
            problem = contract_reframing_refused(
                stored, sla_id=sla.pk, starts_on=starts_on, ends_on=cleaned.get("ends_on")
            )
            if problem:
                raise ValidationError(problem)
        return cleaned


@admin.register(Contract)
class ContractAdmin(AuditedAdmin, admin.ModelAdmin):
    audit_action = "contract"  # its invoice amount, currency, contacts, services, SLA, dates
    form = ContractForm
    list_display = [
        "reference",
        "name",
        "organisation",
        "sla",
        "starts_on",
        "ends_on",
        "monthly_invoice_amount",
        "currency",
    ]
    list_filter = ["organisation", "sla", "currency"]
    search_fields = ["reference", "name", "organisation__name"]
    filter_horizontal = ["services", "contacts", "support_contacts"]
    list_select_related = ["organisation", "sla"]
