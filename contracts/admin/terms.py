from django import forms
from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from portal.core.audit import audit, plain
from portal.domain.lint import PriorityTargets, lint_terms

from ..calendars import calendars_edited, terms_edited
from ..choices import Cause
from ..models import (
    SLA,
    ClosedDate,
    Contract,
    CreditTier,
    EscalationDwell,
    EscalationLevel,
    Organisation,
    PriorityTerm,
    SLAVersion,
    WorkingCalendar,
    WorkingHours,
)
from ..services import PublishError, sla_version_draft, sla_version_publish, version_terms_snapshot

# The terms of a version that move its tickets' deadlines.
CLOCK_TERMS = {"priorities", "escalation_levels", "escalation_dwells", "escalation_ack_time", "escalation_ack_calendar"}


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "account_manager", "solutions_manager", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    autocomplete_fields = ["account_manager", "solutions_manager"]


class WorkingHoursInline(admin.TabularInline):
    model = WorkingHours
    extra = 0


class ClosedDateInline(admin.TabularInline):
    model = ClosedDate
    extra = 0


@admin.register(WorkingCalendar)
class WorkingCalendarAdmin(admin.ModelAdmin):
    list_display = ["name", "timezone", "always_open", "holiday_country", "holiday_subdivision"]
    list_filter = ["always_open", "holiday_country", "timezone"]
    search_fields = ["name"]
    inlines = [WorkingHoursInline, ClosedDateInline]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if change:
            calendars_edited([form.instance.pk])  # the open tickets on it get their deadlines again


PUBLISH = "contracts.publish_slaversion"


def may_edit_version(request, version) -> bool:
    """A published version's terms are edited only by who may publish (superusers: no role is given
    it): for everyone else a published version is read-only, and changes are a new draft."""
    return version is None or not version.is_published or request.user.has_perm(PUBLISH)


class TermsInline(admin.TabularInline):
    """A version's rows of terms: their own permissions, and read-only in a published version for
    whoever may not publish."""

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


class SLAVersionForm(forms.ModelForm):
    exclusion_causes = forms.MultipleChoiceField(
        choices=[c for c in Cause.choices if c[0] != Cause.UNPLANNED],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Causes of downtime this contract excludes from uptime and the SLA.",
    )

    class Meta:
        model = SLAVersion
        exclude: list[str] = []


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
    list_display = ["__str__", "effective_from", "published_at", "uptime_guarantee", "timezone", "credit_kind"]
    list_filter = ["sla", "credit_kind", "timezone"]
    search_fields = ["sla__name"]
    readonly_fields = ["published_at", "contract_lint"]
    inlines = [PriorityTermInline, EscalationLevelInline, EscalationDwellInline, CreditTierInline]
    actions = ["publish", "new_draft"]
    fieldsets = [
        (None, {"fields": ["sla", "number", "effective_from", "published_at", "change_summary", "contract_lint"]}),
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

    @admin.display(description="Contract lint")
    def contract_lint(self, obj):
        if obj is None or obj.pk is None:
            return "Save to check the terms."
        found = version_warnings(obj)
        if not found:
            return "No warnings."
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((w,) for w in found)))

    def save_model(self, request, obj, form, change):
        # The terms as they were, for the audit log's before (inlines are saved after this).
        request._terms_before = version_terms_snapshot(SLAVersion.objects.get(pk=obj.pk)) if change else {}
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        before, after = getattr(request, "_terms_before", {}), version_terms_snapshot(form.instance)
        if plain(before) != plain(after):
            changed = {k for k in after if plain(before.get(k)) != plain(after[k])}
            audit(
                actor=request.user, action="sla_terms.edited" if change else "sla_terms.created", target=form.instance,
                before={k: before.get(k) for k in changed}, after={k: after[k] for k in changed},
            )  # fmt: skip
            if change and changed & CLOCK_TERMS:
                terms_edited([form.instance.pk])  # the open tickets judged by it get their deadlines again
        for warning in version_warnings(form.instance):
            self.message_user(request, warning, messages.WARNING)

    @admin.action(description="Publish (emails the contacts of every contract on the SLA)", permissions=["publish"])
    def publish(self, request, queryset):
        for version in queryset:
            try:
                sent = sla_version_publish(version=version, actor=request.user)
            except PublishError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, f"{version} published; {sent} contact(s) notified.", messages.SUCCESS)

    @admin.action(description="New draft version (a copy, effective in 30 days)", permissions=["add"])
    def new_draft(self, request, queryset):
        for version in queryset:
            draft = sla_version_draft(sla=version.sla, effective_from=timezone.now() + timezone.timedelta(days=30))
            self.message_user(request, f"Draft {draft} created.", messages.SUCCESS)


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
class SLAAdmin(admin.ModelAdmin):
    list_display = ["name", "vendor", "is_template", "template_key"]
    list_filter = ["is_template", "vendor"]
    search_fields = ["name", "vendor"]
    inlines = [SLAVersionInline]


@admin.register(Contract)
class ContractAdmin(admin.ModelAdmin):
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
    filter_horizontal = ["services", "contacts"]
    list_select_related = ["organisation", "sla"]
