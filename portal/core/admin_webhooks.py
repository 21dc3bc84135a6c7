"""The vendor's own webhook endpoints in the admin: its on-call tool receives `ticket.at_risk` (a P1
whose first response has only the at-risk share of its allowance left), signed and delivered like a
customer's events (portal.core.webhooks, portal.core.webhook_delivery). Support leads and up keep
them (the proxy model's own permissions); the secret is shown once, when the endpoint is made."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from portal.core.webhooks import (
    WebhookError,
    clean_url,
    vendor_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_disable,
    webhook_endpoint_enable,
    webhook_send_test,
)
from portal.domain.formats import in_tz
from portal.models import VendorWebhookEndpoint

RECENT = 20  # deliveries shown on an endpoint's page


def https_url_fields(field, **kwargs):
    """A model's URL field as the form's own: https assumed, as Django 6 will. The admin makes a
    subclass of the form for the read-only page, whose fields come from the model's again."""
    if isinstance(field, models.URLField):
        kwargs.setdefault("assume_scheme", "https")
    return field.formfield(**kwargs)


class VendorEndpointForm(forms.ModelForm):
    url = forms.URLField(
        label="URL", max_length=500, assume_scheme="https",
        help_text="An HTTPS address of the on-call tool on a public network.",
    )  # fmt: skip

    class Meta:
        model = VendorWebhookEndpoint
        fields = ["url", "description"]
        formfield_callback = https_url_fields

    def clean_url(self):
        try:
            return clean_url(self.cleaned_data["url"])
        except WebhookError as exc:
            raise ValidationError(str(exc)) from None


def _state(delivery, zone: str) -> str:
    if delivery.status == "pending" and delivery.attempts:
        return f"{delivery.get_status_display()}, next try {in_tz(delivery.next_attempt_at, zone)}"
    return delivery.get_status_display()


@admin.register(VendorWebhookEndpoint)
class VendorWebhookEndpointAdmin(admin.ModelAdmin):
    form = VendorEndpointForm
    list_display = ["url", "description", "events", "enabled", "last_success_at", "consecutive_failures"]
    readonly_fields = [
        "url", "description", "events", "enabled", "disabled_reason", "last_success_at", "consecutive_failures",
        "created_by", "created_at", "recent_deliveries",
    ]  # fmt: skip
    actions = ["send_test", "enable", "disable"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(organisation__isnull=True).select_related("created_by")

    def has_change_permission(self, request, obj=None):
        """The actions (enable, disable, test) need it; an endpoint's page edits nothing."""
        return obj is None and super().has_change_permission(request)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def get_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else ["url", "description"]

    @admin.display(description="Recent deliveries")
    def recent_deliveries(self, obj):
        """The latest deliveries with their state and last answer, as a customer's endpoint page
        shows them: a failing on-call tool shows here before it is disabled."""
        zone = timezone.get_current_timezone_name()
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (in_tz(d.created_at, zone), d.event, _state(d, zone), d.attempts,
                 f"HTTP {d.last_status_code}" if d.last_status_code else (d.error_detail or "not tried yet"))
                for d in obj.deliveries.order_by("-id")[:RECENT]
            ),
        )  # fmt: skip
        if not rows:
            return "None yet."
        return format_html(
            "<table><thead><tr><th>Recorded</th><th>Event</th><th>State</th><th>Attempts</th>"
            "<th>Last response</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    def save_model(self, request, obj, form, change):
        if change:
            return  # nothing is edited here: the actions enable, disable and test it
        endpoint, secret = vendor_endpoint_create(
            actor=request.user, url=form.cleaned_data["url"], description=form.cleaned_data["description"]
        )
        obj.pk = endpoint.pk
        messages.warning(request, f"Signing secret (shown once, copy it into the on-call tool now): {secret}")

    def delete_model(self, request, obj):
        webhook_endpoint_delete(endpoint=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for endpoint in queryset:
            webhook_endpoint_delete(endpoint=endpoint, actor=request.user)

    @admin.action(description="Send a test event", permissions=["change"])
    def send_test(self, request, queryset):
        for endpoint in queryset:
            try:
                webhook_send_test(endpoint=endpoint, actor=request.user)
            except WebhookError as exc:
                self.message_user(request, f"{endpoint.url}: {exc}", messages.ERROR)

    @admin.action(description="Enable (queued deliveries go out again)", permissions=["change"])
    def enable(self, request, queryset):
        for endpoint in queryset:
            webhook_endpoint_enable(endpoint=endpoint, actor=request.user)

    @admin.action(description="Disable", permissions=["change"])
    def disable(self, request, queryset):
        for endpoint in queryset:
            webhook_endpoint_disable(endpoint=endpoint, actor=request.user, reason=f"Disabled by {request.user.email}.")
