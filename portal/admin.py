from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils import timezone
from django.utils.html import format_html
from knox.models import AuthToken

from portal.core.api_tokens import token_revoke
from portal.core.delivery import outbox_render, outbox_retry_now
from portal.core.heartbeat import health

from .models import ApiToken, AuditEntry, OutboxAttempt, OutboxMessage, SweepHeartbeat, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "name", "organisation", "customer_role", "staff_role", "is_staff", "is_active"]
    list_filter = ["is_staff", "is_active", "staff_role", "customer_role", "organisation"]
    search_fields = ["email", "name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Person", {"fields": ["name", "phone"]}),
        ("Customer", {"fields": ["organisation", "customer_role"]}),
        ("Vendor staff", {"fields": ["is_staff", "staff_role", "is_superuser", "groups", "user_permissions"]}),
        ("Status", {"fields": ["is_active", "last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "name", "password1", "password2"]})]


class OutboxAttemptInline(admin.TabularInline):
    model = OutboxAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["started_at", "finished_at", "ok", "error", "worker"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    """Staff see every notification, its attempts, and can put a failed one back in the queue."""

    list_display = ["key", "to", "subject_shown", "status", "attempts", "created_at", "sent_at", "next_attempt_at"]
    list_filter = ["status", "template"]
    search_fields = ["key", "to", "subject", "message_id"]
    date_hierarchy = "created_at"
    inlines = [OutboxAttemptInline]
    actions = ["retry_now"]
    readonly_fields = [f.name for f in OutboxMessage._meta.fields] + ["preview"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="Subject", ordering="subject")
    def subject_shown(self, obj):
        # A row is rendered by the worker that first sends it (portal.core.outbox): until then, its template.
        return obj.subject or f"({obj.template}: rendered when sent)"

    @admin.display(description="Preview (text part)")
    def preview(self, obj):
        """The text part as sent, or as it will be sent: rendered from the frozen context."""
        try:
            subject, text, _ = outbox_render(obj)
        except Exception as exc:  # noqa: BLE001 - shown to staff, as the sender would record it
            return f"Cannot be rendered: {type(exc).__name__}: {exc}"
        return format_html("<strong>{}</strong><pre>{}</pre>", subject, text)

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Retry failed messages now")
    def retry_now(self, request, queryset):
        count = outbox_retry_now(ids=list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"{count} message(s) queued again.", messages.SUCCESS)


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: staff read the audit log here; nobody edits or deletes it."""

    list_display = ["at", "actor_email", "ip", "action", "target_repr"]
    list_filter = ["action", "target_type"]
    search_fields = ["actor_email", "target_repr", "target_id", "action"]
    date_hierarchy = "at"
    readonly_fields = [f.name for f in AuditEntry._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SweepHeartbeat)
class SweepHeartbeatAdmin(admin.ModelAdmin):
    """When each beat sweep last ran (the staff view of /healthz)."""

    list_display = ["name", "last_started_at", "last_finished_at", "healthy", "last_result", "runs"]
    readonly_fields = [f.name for f in SweepHeartbeat._meta.fields]

    @admin.display(boolean=True)
    def healthy(self, obj):
        return health()["sweeps"].get(obj.name, {}).get("healthy", False)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# knox's own admin lists digests and lets staff mint a token for anyone (shown in a message): gone.
if admin.site.is_registered(AuthToken):
    admin.site.unregister(AuthToken)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Customers' API tokens by prefix (the first 15 characters, as the customer's Account page
    shows it): staff with the permissions find and revoke one, audited. Nobody reads a secret here
    (only its digest is stored) and nobody mints one: tokens are made by their owner."""

    list_display = ["prefix", "user", "organisation", "created", "expiry_shown"]
    list_select_related = ["user__organisation"]
    search_fields = ["^token_key", "user__email", "user__organisation__name"]
    search_help_text = "A token's prefix (its first characters), its owner's email or organisation"
    list_filter = ["user__organisation"]
    ordering = ["-created"]
    fields = ["prefix", "user", "organisation", "created", "expiry_shown"]
    readonly_fields = fields

    @admin.display(description="Prefix", ordering="token_key")
    def prefix(self, obj):
        return f"{obj.token_key}…"

    @admin.display(description="Organisation", ordering="user__organisation__name")
    def organisation(self, obj):
        return obj.user.organisation or "-"

    @admin.display(description="Expires", ordering="expiry")
    def expiry_shown(self, obj):
        if obj.expiry is None:
            return "never"
        return f"{obj.expiry:%Y-%m-%d %H:%M} UTC" + (" (expired)" if obj.expiry <= timezone.now() else "")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        token_revoke(actor=request.user, tokens=[obj])

    def delete_queryset(self, request, queryset):
        token_revoke(actor=request.user, tokens=queryset.select_related("user"))
