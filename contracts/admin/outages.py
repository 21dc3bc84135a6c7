"""Services (with their Alertmanager webhook token) and outages in the admin. Thin: outages are
recorded, changed and deleted, and the token rotated, only through contracts.outages (which audits
them and judges again the closed months they touch)."""

import copy

from django import forms
from django.contrib import admin, messages
from django.db.models import Count
from django.utils import timezone
from django.utils.html import format_html_join

from portal.core.admin_audit import AuditedAdmin
from portal.core.admin_lookups import EveryRowHasOneFilter
from portal.core.audit import row_state
from portal.core.ids import IdMultipleChoiceField

from ..choices import Cause, Impact
from ..incidents.services import IncidentError, outage_set_impact
from ..models import Outage, OutageCauseChange, OutageUpdate, Service
from ..outages.alerts import service_rotate_webhook_token
from ..outages.services import OutageError, outage_cause_check, outage_delete, outage_record, outage_update


# --- Service: the webhook token ----------------------------------------------------------------
@admin.register(Service)
class ServiceAdmin(AuditedAdmin, admin.ModelAdmin):
    audit_action = "service"  # its name and description, which customers' pages and status show

    def audit_state(self, obj):
        return {name: value for name, value in row_state(obj).items() if name != "webhook_token_hash"}

    list_display = ["name", "slug", "has_webhook_token"]
    search_fields = ["name"]
    prepopulated_fields = {"slug": ["name"]}
    actions = ["rotate_webhook_token"]

    @admin.display(description="Webhook token", boolean=True)
    def has_webhook_token(self, obj):
        return bool(obj.webhook_token_hash)

    def has_rotate_webhook_token_permission(self, request):
        return request.user.has_perm("contracts.rotate_webhook_token")

    @admin.action(description="Rotate webhook token (the old one stops working)", permissions=["rotate_webhook_token"])
    def rotate_webhook_token(self, request, queryset):
        for service in queryset:
            token = service_rotate_webhook_token(service=service)
            self.log_change(request, service, "Rotated the webhook token.")
            self.message_user(
                request,
                f"New Alertmanager webhook token for {service.name} ({service.slug}): {token} — copy it now: "
                "only its hash is stored, and it will not be shown again.",
                messages.SUCCESS,
            )


IMPACT_FIELDS = ("partial_services", "degraded_services", "contracts", "customer_scoped")


# --- Outages ------------------------------------------------------------------------------------
class OngoingFilter(admin.SimpleListFilter):
    title = "ongoing"
    parameter_name = "ongoing"

    def lookups(self, request, model_admin):
        return [("yes", "Ongoing"), ("no", "Ended")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(ends_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(ends_at__isnull=False)
        return queryset


class OutageUpdateForm(forms.ModelForm):
    class Meta:
        model = OutageUpdate
        fields = ["at", "body"]
        widgets = {"body": forms.Textarea(attrs={"rows": 2, "cols": 60})}
        labels = {"at": "At"}  # in the staff member's timezone, named on the field (portal.core.staff_time)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["at"].initial = timezone.now  # a new update is usually about now


class OutageUpdateInline(admin.TabularInline):
    model = OutageUpdate
    form = OutageUpdateForm
    extra = 0
    verbose_name = "timeline update (public)"
    verbose_name_plural = "timeline updates (public, shown on the status page)"


class OutageCauseChangeInline(admin.TabularInline):
    """The audit of the cause: read-only, never added or removed by hand."""

    model = OutageCauseChange
    fields = ["at", "actor", "old", "new"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "cause changes (audit)"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")


class OutageForm(forms.ModelForm):
    # The impact per service: major unless named here (contracts.incidents.services.outage_set_impact).
    partial_services = IdMultipleChoiceField(
        Service.objects.all(), required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Partial outage: down only for the contracts chosen below.",
    )  # fmt: skip
    degraded_services = IdMultipleChoiceField(
        Service.objects.all(), required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Degraded performance: not down for any contract.",
    )  # fmt: skip

    class Meta:
        model = Outage
        fields = ["title", "services", "starts_at", "ends_at", "cause", "description", "contracts", "customer_scoped"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            impacts = self.instance.impacts or {}
            for name, impact in (("partial_services", Impact.PARTIAL), ("degraded_services", Impact.DEGRADED)):
                self.initial[name] = [int(k) for k, v in impacts.items() if v == impact]

    def clean(self):
        data = super().clean()
        partial, degraded = set(data.get("partial_services") or ()), set(data.get("degraded_services") or ())
        if partial & degraded:
            self.add_error("degraded_services", "A service has one impact: partial or degraded, not both.")
        services = set(data.get("services") or ())
        if (partial | degraded) - services:
            self.add_error("partial_services", "An impact can be set only on the outage's own services.")
        if data.get("customer_scoped") and not data.get("contracts"):
            self.add_error("contracts", "A customer-scoped outage needs the contracts it affects.")
        return data

    def impacts(self) -> dict[int, str]:
        data = self.cleaned_data
        out = {s.pk: Impact.PARTIAL for s in data.get("partial_services") or ()}
        return out | {s.pk: Impact.DEGRADED for s in data.get("degraded_services") or ()}

    def clean_cause(self):
        # The service's rule, as a form error: "scheduled downtime" only on an outage that has it.
        cause = self.cleaned_data["cause"]
        try:
            outage_cause_check(cause=cause, old=self.instance.cause if self.instance.pk else None)
        except OutageError as exc:
            raise forms.ValidationError(str(exc)) from None
        return cause


@admin.register(Outage)
class OutageAdmin(admin.ModelAdmin):
    form = OutageForm
    list_display = ["title", "service_names", "starts_at", "ends_display", "cause", "source", "updates_count"]
    list_filter = ["cause", "source", OngoingFilter, ("services", EveryRowHasOneFilter)]
    search_fields = ["title", "description", "fingerprint", "services__name", "services__slug"]
    date_hierarchy = "starts_at"
    autocomplete_fields = ["services", "contracts"]
    readonly_fields = ["source", "fingerprint", "created_at"]
    inlines = [OutageUpdateInline, OutageCauseChangeInline]
    fieldsets = [
        (None, {"fields": ["title", "services", "starts_at", "ends_at"]}),
        (
            "Cause",
            {
                "fields": ["cause"],
                "description": "Every cause but “unplanned” may be excluded from uptime by a contract. "
                "A change is recorded below with who made it and when. Planned work is a maintenance window, "
                "not an outage.",
            },
        ),
        (
            "Impact and scope",
            {
                "fields": ["partial_services", "degraded_services", "contracts", "customer_scoped"],
                "description": "Unnamed services are a major outage: down for every contract on them. A change that "
                "touches a closed month judges it again.",
            },
        ),
        ("Public description", {"fields": ["description"]}),
        ("Origin", {"fields": ["source", "fingerprint", "created_at"], "classes": ["collapse"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("services").annotate(updates_total=Count("updates"))

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if "cause" in form.base_fields and not request.user.has_perm("contracts.change_outage_cause"):
            # The cause decides whether contracts exclude the outage's minutes: its own permission.
            # Disabled, the field keeps the outage's cause (unplanned for a new one) whatever is posted.
            form.base_fields["cause"] = copy.copy(form.base_fields["cause"])
            form.base_fields["cause"].disabled = True
        if not request.user.has_perm("contracts.change_outage_impact"):
            for name in IMPACT_FIELDS:  # whom the outage counts for: its own permission too
                if name in form.base_fields:
                    form.base_fields[name] = copy.copy(form.base_fields[name])
                    form.base_fields[name].disabled = True
        return form

    @admin.display(description="Services")
    def service_names(self, obj):
        return format_html_join(", ", "{}", ((s.name,) for s in obj.services.all()))

    @admin.display(description="Ends", ordering="ends_at")
    def ends_display(self, obj):
        return obj.ends_at if obj.ends_at else "Ongoing"

    @admin.display(description="Updates", ordering="updates_total")
    def updates_count(self, obj):
        return obj.updates_total

    def save_model(self, request, obj, form, change):
        # Through contracts.outages: the cause is written only as an audited change (a form that
        # did not change it never overwrites a newer one), and closed months are judged again.
        data = form.cleaned_data
        fields = {f: data[f] for f in ("title", "services", "starts_at", "ends_at", "description")}
        if change:
            cause = data["cause"] if "cause" in form.changed_data else None
            saved = outage_update(outage=obj, cause=cause, actor=request.user, now=timezone.now(), **fields)
        else:
            cause = data.get("cause", Cause.UNPLANNED)  # a role that may not set the cause does not see it
            saved = outage_record(cause=cause, actor=request.user, now=timezone.now(), **fields)
        if set(IMPACT_FIELDS) & set(form.changed_data) and request.user.has_perm("contracts.change_outage_impact"):
            try:
                saved = outage_set_impact(
                    outage=saved, impacts=form.impacts(), contracts=data["contracts"],
                    customer_scoped=data["customer_scoped"], actor=request.user, now=timezone.now(),
                )  # fmt: skip
            except IncidentError as exc:
                self.message_user(request, str(exc), messages.ERROR)
        for f in Outage._meta.concrete_fields:  # the admin goes on with `obj` (its log, the inlines)
            setattr(obj, f.attname, getattr(saved, f.attname))
        obj._state.adding, obj._state.db = False, saved._state.db

    def save_related(self, request, form, formsets, change):
        """The services are set by save_model's service call; the timeline inlines are saved as usual."""
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def delete_model(self, request, obj):
        outage_delete(outage=obj, actor=request.user, now=timezone.now())

    def delete_queryset(self, request, queryset):
        for outage in queryset:
            outage_delete(outage=outage, actor=request.user, now=timezone.now())
