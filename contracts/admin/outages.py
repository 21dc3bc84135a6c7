"""Services (with their Alertmanager webhook token) and outages in the admin. Thin: the cause and
the token change only through contracts.outages."""

import copy

from django import forms
from django.contrib import admin, messages
from django.db.models import Count
from django.utils import timezone
from django.utils.html import format_html_join

from ..choices import Cause
from ..models import Outage, OutageCauseChange, OutageUpdate, Service
from ..outages import outage_set_cause, service_rotate_webhook_token


# --- Service: the webhook token ----------------------------------------------------------------
@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
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
        labels = {"at": "At (UTC)"}

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


@admin.register(Outage)
class OutageAdmin(admin.ModelAdmin):
    list_display = ["title", "service_names", "starts_at", "ends_display", "cause", "source", "updates_count"]
    list_filter = ["cause", "source", OngoingFilter, "services"]
    search_fields = ["title", "description", "fingerprint", "services__name", "services__slug"]
    date_hierarchy = "starts_at"
    autocomplete_fields = ["services"]
    readonly_fields = ["source", "fingerprint", "created_at"]
    inlines = [OutageUpdateInline, OutageCauseChangeInline]
    fieldsets = [
        (None, {"fields": ["title", "services", "starts_at", "ends_at"]}),
        (
            "Cause",
            {
                "fields": ["cause"],
                "description": "Every cause but “unplanned” may be excluded from uptime by a contract. "
                "A change is recorded below with who made it and when.",
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
        # The cause is written only by outage_set_cause, which records the change. A new outage is
        # saved as unplanned first, so choosing an excluded cause when recording it is audited too;
        # a changed one is saved without its cause, so this form never overwrites a newer cause.
        cause = obj.cause
        if change:
            obj.save(
                update_fields=[f.name for f in obj._meta.concrete_fields if not f.primary_key and f.name != "cause"]
            )
        else:
            obj.cause = Cause.UNPLANNED
            obj.save()
        if (change and "cause" in form.changed_data) or (not change and cause != Cause.UNPLANNED):
            outage_set_cause(outage=obj, actor=request.user, cause=cause, now=timezone.now())
