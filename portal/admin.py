import json
from collections.abc import Callable

from axes.admin import AccessAttemptAdmin as AxesAccessAttemptAdmin
from axes.models import AccessAttempt
from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm
from django.contrib.auth.forms import UserChangeForm as BaseUserChangeForm
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.html import format_html
from django_otp.plugins.otp_static.admin import StaticDeviceAdmin
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice
from knox.models import AuthToken

from portal.core import admin_webhooks  # noqa: F401 (registers the vendor's webhook endpoints)
from portal.core.admin_audit import AuditedAdmin
from portal.core.api_tokens import token_revoke
from portal.core.audit import audit_deleted
from portal.core.delivery import email_templates, outbox_render, outbox_retry_now
from portal.core.heartbeat import health
from portal.core.housekeeping import bodies_kept_days, outbox_bodies_removed
from portal.core.paging import CappedPaginator
from portal.core.people import is_last_active_admin
from portal.core.roles import CustomerRole, role_of_group, sees_security
from portal.core.staff_access import AccessChange, audit_user_deleted
from portal.core.timezones import AdminTimezoneInput
from portal.core.unsubscribe import without_link_tokens

from .models import ApiToken, AuditEntry, BouncedAddress, OutboxAttempt, OutboxMessage, SweepHeartbeat, User

# Who may be staff, with which role and permissions: superusers only, and never for themselves.
ACCESS_FIELDS = ["is_staff", "is_superuser", "groups", "user_permissions"]


class OneAccountPerAddress:
    """An address is one account whatever its case (the login matches it case-folded; the database
    refuses a second, user_email_unique_ci): stored in lower case, and another account's address
    in any case is a field error, not a server error."""

    def clean_email(self):
        email = User.objects.normalize_email(self.cleaned_data.get("email") or "").strip().lower()
        others = User.objects.filter(email__iexact=email)
        if self.instance.pk is not None:
            others = others.exclude(pk=self.instance.pk)
        if email and others.exists():
            raise forms.ValidationError(f"{email} is already the address of another account.")
        return email


class UserCreationForm(OneAccountPerAddress, AdminUserCreationForm):
    class Meta(AdminUserCreationForm.Meta):
        model = User
        fields = ["email", "name"]


class UserChangeForm(OneAccountPerAddress, BaseUserChangeForm):
    class Meta(BaseUserChangeForm.Meta):
        widgets = {"timezone": AdminTimezoneInput}

    def clean(self):
        data = super().clean()
        stays_admin = data.get("customer_role", self.instance.customer_role) == CustomerRole.ADMIN and (
            data.get("organisation", self.instance.organisation) == self.instance.organisation
        )  # moved to another organisation, they are this one's admin no more
        if (
            self.instance.pk
            and is_last_active_admin(self.instance)
            and not (stays_admin and data.get("is_active", True))
        ):
            self.add_error(
                None, "This is the organisation's only active admin: make someone else an admin first (People…)."
            )
        if data.get("is_staff", self.instance.is_staff) and data.get("organisation", self.instance.organisation):
            # Staff belong to no customer: one of an organisation's would see its tickets as a customer
            # and could be deactivated by its admins.
            self.add_error("organisation", "Staff belong to no organisation: clear it, or leave staff unticked.")
        groups = data.get("groups")
        if groups is not None:
            roles = [g.name for g in groups if role_of_group(g.name)]
            if len(roles) > 1:
                self.add_error("groups", f"A staff member has one role; {' and '.join(roles)} are roles.")
            elif roles and not data.get("is_staff", self.instance.is_staff):
                self.add_error("groups", f"{roles[0]} is a staff role: only staff have one.")
        return data


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    """Superusers manage staff, their roles (a role is a group: staff_role follows it) and
    permissions; staff with the user permissions (account and cloud solutions managers) keep
    customer users only. Nobody changes their own access here. Every change of access is audited
    (portal.core.staff_access)."""

    form = UserChangeForm
    add_form = UserCreationForm
    ordering = ["email"]
    list_display = ["email", "name", "organisation", "customer_role", "staff_role", "is_staff", "is_active"]
    list_select_related = ["organisation"]  # nullable: Django would not join it
    list_filter = ["is_staff", "is_active", "staff_role", "customer_role", "organisation"]
    search_fields = ["email", "name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Person", {"fields": ["name", "phone", "timezone"]}),
        ("Customer", {"fields": ["organisation", "customer_role"]}),
        ("Vendor staff", {
            "fields": ["is_staff", "groups", "staff_role", "is_superuser", "user_permissions"],
            "description": "A staff member's role is their role group (one of them); the role follows it.",
        }),
        ("Status", {"fields": ["is_active", "last_login", "date_joined"]}),
    ]  # fmt: skip
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "name", "password1", "password2"]})]
    readonly_fields = ["staff_role", "last_login", "date_joined"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or request.user.is_superuser:
            return fieldsets
        # Its "Reset password" button leads to user_change_password, a superuser's: not offered.
        return [(name, {**opts, "fields": [f for f in opts["fields"] if f != "password"]}) for name, opts in fieldsets]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.pk == request.user.pk:
            return [*fields, *ACCESS_FIELDS, "is_active"]
        return fields if request.user.is_superuser else [*fields, *ACCESS_FIELDS]

    def manages(self, request, obj) -> bool:
        """Staff and superuser accounts are managed by superusers only."""
        return obj is None or request.user.is_superuser or not (obj.is_staff or obj.is_superuser)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self.manages(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.pk == request.user.pk:
            return False
        return super().has_delete_permission(request, obj) and self.manages(request, obj)

    def user_change_password(self, request, id, form_url=""):
        # Another person's password is set by a superuser only (customers reset theirs by email).
        if not request.user.is_superuser:
            raise PermissionDenied
        return super().user_change_password(request, id, form_url)

    # The whole save (the fields, then the groups and permissions) is one audit entry.
    def save_model(self, request, obj, form, change):
        form.access_change = AccessChange(obj, actor=request.user)
        try:
            super().save_model(request, obj, form, change)
        except BaseException:
            form.access_change.abandon()
            raise

    def save_related(self, request, form, formsets, change):
        try:
            super().save_related(request, form, formsets, change)
        except BaseException:
            form.access_change.abandon()
            raise
        form.access_change.done(follow_role=True)

    def delete_model(self, request, obj):
        audit_user_deleted(actor=request.user, user=obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for user in queryset:
            audit_user_deleted(actor=request.user, user=user)
        super().delete_queryset(request, queryset)


if admin.site.is_registered(Group):
    admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(BaseGroupAdmin):
    """The staff roles' groups hold the matrix's permissions (portal.core.roles), put back after
    every migration: read-only here. Other groups are the superusers' to make."""

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and role_of_group(obj.name):
            return ["name", "permissions"]
        return super().get_readonly_fields(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and role_of_group(obj.name):
            return False
        return super().has_delete_permission(request, obj)

    @staticmethod
    def audit_state(group) -> dict:
        """What its members lose with it: who they are and the permissions it gave them."""
        return {"name": group.name, "members": sorted(group.user_set.values_list("email", flat=True)),
                "permissions": sorted(f"{p.content_type.app_label}.{p.codename}"
                                      for p in group.permissions.select_related("content_type"))}  # fmt: skip

    def delete_model(self, request, obj):
        with transaction.atomic():
            audit_deleted(actor=request.user, action="group", target=obj, state=self.audit_state)
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for group in queryset:
                audit_deleted(actor=request.user, action="group", target=group, state=self.audit_state)
            super().delete_queryset(request, queryset)


# django-otp's own admins (superusers): a device added, changed or removed is a change of a staff
# member's second factor, audited like the rest of their access (never its key).
class AuditedDeviceAdmin(AuditedAdmin):
    audit_action = "staff_otp.device"

    def audit_state(self, device):
        return {"user": device.user.email, "name": device.name, "confirmed": device.confirmed}


class TOTPAdmin(AuditedDeviceAdmin, TOTPDeviceAdmin):
    pass


class StaticAdmin(AuditedDeviceAdmin, StaticDeviceAdmin):
    pass


for _model, _admin in ((TOTPDevice, TOTPAdmin), (StaticDevice, StaticAdmin)):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, _admin)


# Outbox rows only staff who see vulnerability reports may read (their bodies tell the report): the
# bug bounty's own emails; the apps above add theirs (tickets: the emails about a report's ticket).
SECURITY_EMAILS: list[Callable[[], Q]] = [
    lambda: Q(template__startswith="security_report") | Q(key__startswith="security-report:")
]


class TemplateFilter(admin.SimpleListFilter):
    """By template, offering the email templates the code has (portal.core.delivery.email_templates),
    not the distinct templates of every row ever written (a read of the whole outbox at every page);
    the vulnerability reports' own only to staff who see reports."""

    title = "template"
    parameter_name = "template"

    def lookups(self, request, model_admin):
        security = sees_security(request.user)
        return [(t, t) for t in email_templates() if security or not t.startswith("security_report")]

    def queryset(self, request, queryset):
        return queryset.filter(template=self.value()) if self.value() else queryset


class BouncedFilter(admin.SimpleListFilter):
    """The emails a delivery status notification came back for (portal.core.bounces), or not."""

    title = "bounced"
    parameter_name = "bounced"

    def lookups(self, request, model_admin):
        return [("yes", "Bounced"), ("no", "Not bounced")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(bounced_at__isnull=self.value() == "no")
        return queryset


class OutboxAttemptInline(admin.TabularInline):
    model = OutboxAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["started_at", "finished_at", "ok", "error", "worker"]

    def has_add_permission(self, request, obj=None):
        return False


def _without_tokens(field: str, label: str, text=str):
    """An outbox field as staff read it: its text without the tokens of links that act for their
    reader (portal.core.unsubscribe.without_link_tokens)."""

    @admin.display(description=label)
    def shown(self, obj):
        return format_html("<pre>{}</pre>", without_link_tokens(text(getattr(obj, field))))

    return shown


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    """Staff see every notification, its attempts, and can put a failed one back in the queue."""

    list_display = [
        "key", "to", "subject_shown", "status", "attempts", "created_at", "sent_at", "next_attempt_at", "bounce_status",
    ]  # fmt: skip
    # The list reads a page, never the whole outbox: its order from the index outbox_list_order, its
    # count capped (CappedPaginator, in that order), no "N of M" (M would count every email ever
    # sent), templates from the code, and dates as fixed ranges (a date hierarchy lists the distinct
    # years of every row).
    list_filter = ["status", BouncedFilter, TemplateFilter, ("created_at", admin.DateFieldListFilter)]
    search_fields = ["key", "to", "subject", "message_id"]
    paginator = CappedPaginator
    show_full_result_count = False
    inlines = [OutboxAttemptInline]
    actions = ["retry_now"]
    # Emails whose text holds a link that signs its reader in or acts for them (a password reset, an
    # invitation, a subscription's confirmation or its manage link, a rating's links): staff see that
    # and when they went, never the link, or whoever reads the outbox could take the account over (or
    # rate a ticket as its customer).
    WITHHELD_TEMPLATES = frozenset(
        {
            "password_reset",
            "people_invitation",
            "status_subscription_confirm",
            "status_subscription_known",
            "ticket_rating",
        }
    )
    WITHHELD_FIELDS = frozenset({"context", "body_text", "body_html", "headers", "preview"})
    # The rest show without the tokens of links that act for their reader (a one-click unsubscribe,
    # a status subscriber's page): the same fields, each with the tokens left out.
    MASKED = {
        "context": "context_shown",
        "body_text": "text_shown",
        "body_html": "html_shown",
        "headers": "headers_shown",
    }
    readonly_fields = [f.name for f in OutboxMessage._meta.fields] + ["preview", "withheld", *MASKED.values()]

    def get_fields(self, request, obj=None):
        fields = [f for f in super().get_fields(request, obj) if f != "withheld" and f not in self.MASKED.values()]
        if obj is not None and obj.template in self.WITHHELD_TEMPLATES:
            return [*(f for f in fields if f not in self.WITHHELD_FIELDS), "withheld"]
        return [self.MASKED.get(f, f) for f in fields]

    context_shown = _without_tokens("context", "Context")
    text_shown = _without_tokens("body_text", "Body text")
    html_shown = _without_tokens("body_html", "Body HTML")
    headers_shown = _without_tokens("headers", "Headers", lambda headers: json.dumps(headers, indent=1))

    @admin.display(description="Text")
    def withheld(self, obj):
        return "Withheld: it holds a link that signs its reader in or acts for them."

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if sees_security(request.user):
            return qs
        hidden = getattr(request, "_security_emails", None)
        if hidden is None:  # once per request: the changelist asks for its queryset more than once
            hidden = Q()
            for condition in SECURITY_EMAILS:
                hidden |= condition()  # a new Q each time: it is kept on the request once whole
            request._security_emails = hidden
        return qs.exclude(hidden)

    def has_add_permission(self, request):
        return False

    def has_retry_permission(self, request):
        return request.user.has_perm("portal.retry_outboxmessage")

    @admin.display(description="Subject", ordering="subject")
    def subject_shown(self, obj):
        # A row is rendered by the worker that first sends it (portal.core.outbox): until then, its template.
        return obj.subject or f"({obj.template}: rendered when sent)"

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        paginator = super().get_paginator(request, queryset, per_page, orphans, allow_empty_first_page)
        if queryset.model is OutboxMessage:
            paginator.count_order = ("-created_at", "-id")  # counted along outbox_list_order
        return paginator

    @admin.display(description="Preview (text part)")
    def preview(self, obj):
        """The text part as sent, or as it will be sent: rendered from the frozen context."""
        if outbox_bodies_removed(obj):
            return (
                f"Sent on {obj.sent_at:%Y-%m-%d}; its text was removed {bodies_kept_days()} days after it was sent "
                "(OUTBOX_KEEP_BODIES_DAYS). Its recipient, subject, Message-ID and attempts stay."
            )
        try:
            subject, text, _ = outbox_render(obj)
        except Exception as exc:  # noqa: BLE001 - shown to staff, as the sender would record it
            return f"Cannot be rendered: {type(exc).__name__}: {exc}"
        return format_html("<strong>{}</strong><pre>{}</pre>", subject, without_link_tokens(text))

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Retry failed messages now", permissions=["retry"])
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


# django-axes offered its clean-up of expired attempts (it deletes them) to whoever may read the
# lockouts: it needs the permission to lift one (delete), as the role matrix gives it.
if admin.site.is_registered(AccessAttempt):
    admin.site.unregister(AccessAttempt)


@admin.register(AccessAttempt)
class AccessAttemptAdmin(AuditedAdmin, AxesAccessAttemptAdmin):
    # Deleting an attempt lifts its lockout: audited (lockout.deleted) with whom and where it locked.
    audit_action = "lockout"

    def audit_state(self, obj):
        return {"username": obj.username, "ip_address": obj.ip_address, "failures": obj.failures_since_start,
                "attempt_time": obj.attempt_time.isoformat()}  # fmt: skip

    @admin.action(description="Clean up expired attempts", permissions=["delete"])
    def cleanup_expired_attempts(self, request, queryset):
        return super().cleanup_expired_attempts(request, queryset)


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


@admin.register(BouncedAddress)
class BouncedAddressAdmin(admin.ModelAdmin):
    """The addresses our email bounced from (portal.core.bounces), newest first: staff correct the
    person's address or ask the customer to. Written by the bounce recogniser only."""

    list_display = ["address", "bounces", "last_status", "last_detail", "last_bounced_at", "first_bounced_at"]
    search_fields = ["address"]
    date_hierarchy = "last_bounced_at"
    readonly_fields = [f.name for f in BouncedAddress._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
