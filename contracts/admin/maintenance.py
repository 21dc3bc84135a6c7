"""Staff schedule maintenance windows here. "Preview rules" shows, before anything is saved, for
every contract the window touches: whether it keeps that contract's notice, off-peak and annual-cap
rules, and how many minutes it would count as ordinary downtime. The change page shows the same
table for the saved window. Saving goes through contracts.maintenance (window_publish,
window_update), cancelling through window_cancel, deleting through window_delete: the admin holds no
rules of its own."""

from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from portal.core.admin_lookups import EveryRowHasOneFilter

from ..maintenance.judging import window_draft
from ..maintenance.selectors import window_judgements
from ..maintenance.services import MaintenanceError, window_cancel, window_delete, window_publish, window_update
from ..models import MaintenanceWindow

FIELDS = ["title", "services", "starts_at", "ends_at", "impact", "description"]
STATE_FIELDS = ["status", "revision", "published_at", "notice_due_at", "reminder_due_at", "cancelled_at", "created_by"]
PREVIEW = "_preview"


class MaintenanceWindowForm(forms.ModelForm):
    class Meta:
        model = MaintenanceWindow
        fields = FIELDS
        help_texts = {
            "starts_at": "In your own timezone, named on the field; the rules table shows each contract's local time.",
        }


class PreviewOnly:
    """Mixed into the form when "Preview rules" is pressed: it validates and judges the submitted
    values, then reports itself invalid so that the admin shows the form again (with no error)
    instead of saving it. Nothing is written."""

    preview = None

    def is_valid(self):
        if super().is_valid():
            data = self.cleaned_data
            draft = window_draft(
                pk=self.instance.pk, starts_at=data["starts_at"], ends_at=data["ends_at"],
                impact=data["impact"], services=data["services"],
            )  # fmt: skip
            self.preview = window_judgements(draft, timezone.now())
        return False


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(admin.ModelAdmin):
    form = MaintenanceWindowForm
    list_display = ["title", "starts_at", "ends_at", "impact", "status", "revision", "notice_due_at", "reminder_due_at"]
    list_filter = ["status", "impact", ("services", EveryRowHasOneFilter)]
    search_fields = ["title", "description"]
    date_hierarchy = "starts_at"
    linked_lookups = frozenset({"starts_at__lt", "ends_at__gt"})  # the staff dashboard: today's windows
    filter_horizontal = ["services"]
    readonly_fields = STATE_FIELDS
    actions = ["cancel_windows"]

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": FIELDS})]
        return [(None, {"fields": FIELDS}), ("Status and notices", {"fields": STATE_FIELDS})]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if request.method == "POST" and PREVIEW in request.POST:
            return type(f"Preview{form.__name__}", (PreviewOnly, form), {})
        return form

    def has_change_permission(self, request, obj=None):
        # A cancelled window is history: it can be read, not changed (schedule a new one).
        if obj is not None and obj.status == MaintenanceWindow.Status.CANCELLED:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        # Once customers were told of a window it is cancelled (which tells them), never deleted.
        if obj is not None and obj.notices.exists():
            return False
        return super().has_delete_permission(request, obj)

    def delete_model(self, request, obj):
        window_delete(window=obj, actor=request.user)  # a closed month it counted in is judged again

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        form = context["adminform"].form
        if getattr(form, "preview", None) is not None:
            context.update(rules=form.preview, rules_heading="preview of the values above (nothing is saved)")
        elif obj is not None and obj.pk is not None:
            # Read again: after a refused save the form has already written its values onto `obj`.
            saved = MaintenanceWindow.objects.get(pk=obj.pk)
            context.update(rules=window_judgements(saved, timezone.now()), rules_heading="as saved")
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def save_model(self, request, obj, form, change):
        fields = {f: form.cleaned_data[f] for f in FIELDS}  # the services are known: the form is valid
        saved = (
            window_update(window=obj, actor=request.user, **fields)
            if change
            else window_publish(actor=request.user, **fields)
        )
        for f in MaintenanceWindow._meta.concrete_fields:  # the admin goes on with `obj`
            setattr(obj, f.attname, getattr(saved, f.attname))
        obj._state.adding, obj._state.db = False, saved._state.db
        for row in window_judgements(saved, timezone.now()):
            if row.downtime_minutes:
                self.message_user(request, f"{row.contract.reference}: {row.summary}.", messages.WARNING)

    def save_related(self, request, form, formsets, change):
        """Nothing to do: save_model's service call has set the services (a new revision depends on
        them), and there are no inlines."""

    @admin.action(description="Cancel (emails every contact who was told of it)", permissions=["change"])
    def cancel_windows(self, request, queryset):
        for window in queryset.order_by("starts_at"):
            if window.status == MaintenanceWindow.Status.CANCELLED:
                self.message_user(request, f"“{window}” was already cancelled.", messages.WARNING)
                continue
            try:
                sent = window_cancel(window=window, actor=request.user)
            except MaintenanceError as e:
                self.message_user(request, f"“{window}” was not cancelled: {e}", messages.ERROR)
                continue
            self.message_user(request, f"“{window}” is cancelled; {sent} email(s) queued.", messages.SUCCESS)
