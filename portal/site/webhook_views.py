"""The organisation's webhook endpoints, for its customer admins (docs/webhooks.md).

Register an https endpoint and its events, see its secret once (after registering or rotating),
rotate it, disable and re-enable, send a test event, delete it, and see its recent deliveries with
their last response. Members get a 403; another organisation's endpoint is a 404. Every change goes
through portal.core.webhooks; a refused URL (not https, a private or loopback address) is a 400
with the field's message."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST

from portal.core import webhooks
from portal.core.roles import CustomerRole
from portal.core.webhooks import SUBSCRIBABLE, WebhookError
from portal.models import WebhookEndpoint

RECENT = 50  # deliveries shown on an endpoint's page
SESSION_SECRET = "new_webhook_secret"


class EndpointForm(forms.Form):
    url = forms.CharField(
        label="URL", max_length=500, widget=forms.URLInput(attrs={"placeholder": "https://example.com/hooks/sla"}),
        help_text="HTTPS only, at a public address. Redirects are not followed.",
    )  # fmt: skip
    description = forms.CharField(label="Description", max_length=100, required=False)
    events = forms.MultipleChoiceField(label="Events", choices=SUBSCRIBABLE, widget=forms.CheckboxSelectMultiple)


def _admin(request) -> None:
    user = request.user
    if not (user.is_customer and user.customer_role == CustomerRole.ADMIN):
        raise PermissionDenied("Only the organisation's customer admins manage its webhooks.")


def _endpoint(request, pk: int) -> WebhookEndpoint:
    _admin(request)
    return get_object_or_404(WebhookEndpoint, pk=pk, organisation_id=request.user.organisation_id)


def _render(request, template: str, context: dict, status: int = 200):
    response = render(request, template, context, status=status)
    if context.get("secret"):
        add_never_cache_headers(response)  # the secret must not stay in a cache
    return response


@login_required
@require_http_methods(["GET", "POST"])
def webhook_list(request):
    _admin(request)
    form, status = EndpointForm(), 200
    if request.method == "POST":
        form = EndpointForm(request.POST)
        if form.is_valid():
            try:
                endpoint, secret = webhooks.webhook_endpoint_create(actor=request.user, **form.cleaned_data)
            except WebhookError as exc:
                form.add_error(exc.field, str(exc))
            else:
                request.session[SESSION_SECRET] = {"id": endpoint.pk, "secret": secret}
                messages.success(request, "The endpoint is registered. Copy its secret now: it is not shown again.")
                return redirect("webhook-detail", pk=endpoint.pk)
        status = 400
    endpoints = WebhookEndpoint.objects.filter(organisation_id=request.user.organisation_id).order_by("id")
    context = {"endpoints": endpoints, "form": form, "max_attempts": settings.WEBHOOK_MAX_ATTEMPTS}
    return _render(request, "portal/webhooks.html", context, status)


@login_required
@require_http_methods(["GET", "POST"])
def webhook_detail(request, pk: int):
    endpoint = _endpoint(request, pk)
    status = 200
    if request.method == "POST":
        form = EndpointForm(request.POST)
        if form.is_valid():
            try:
                webhooks.webhook_endpoint_update(endpoint=endpoint, actor=request.user, **form.cleaned_data)
            except WebhookError as exc:
                form.add_error(exc.field, str(exc))
            else:
                messages.success(request, "The endpoint is saved.")
                return redirect("webhook-detail", pk=endpoint.pk)
        status = 400
    else:
        form = EndpointForm(
            initial={"url": endpoint.url, "description": endpoint.description, "events": endpoint.events}
        )
    shown = request.session.get(SESSION_SECRET)
    secret = None
    if shown and shown.get("id") == endpoint.pk:
        secret = request.session.pop(SESSION_SECRET)["secret"]  # shown once
    context = {
        "endpoint": endpoint,
        "form": form,
        "secret": secret,
        "deliveries": endpoint.deliveries.order_by("-id")[:RECENT],
        "now": timezone.now(),
    }
    return _render(request, "portal/webhook_detail.html", context, status)


@login_required
@require_POST
def webhook_rotate(request, pk: int):
    endpoint = _endpoint(request, pk)
    secret = webhooks.webhook_secret_rotate(endpoint=endpoint, actor=request.user)
    request.session[SESSION_SECRET] = {"id": endpoint.pk, "secret": secret}
    messages.success(request, "A new secret signs from now on; the previous one also signs for the next 24 hours.")
    return redirect("webhook-detail", pk=endpoint.pk)


@login_required
@require_POST
def webhook_enable(request, pk: int):
    endpoint = _endpoint(request, pk)
    webhooks.webhook_endpoint_enable(endpoint=endpoint, actor=request.user)
    messages.success(request, "The endpoint is enabled: its waiting deliveries go out in order.")
    return redirect("webhook-detail", pk=endpoint.pk)


@login_required
@require_POST
def webhook_disable(request, pk: int):
    endpoint = _endpoint(request, pk)
    webhooks.webhook_endpoint_disable(
        endpoint=endpoint, actor=request.user, reason=f"Disabled by {request.user.email}."
    )
    messages.success(request, "The endpoint is disabled: nothing is recorded or sent for it until it is enabled.")
    return redirect("webhook-detail", pk=endpoint.pk)


@login_required
@require_POST
def webhook_test(request, pk: int):
    endpoint = _endpoint(request, pk)
    try:
        delivery = webhooks.webhook_send_test(endpoint=endpoint, actor=request.user)
    except WebhookError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"A test event is queued (delivery {delivery.delivery_id}).")
    return redirect("webhook-detail", pk=endpoint.pk)


@login_required
@require_POST
def webhook_delete(request, pk: int):
    endpoint = _endpoint(request, pk)
    webhooks.webhook_endpoint_delete(endpoint=endpoint, actor=request.user)
    messages.success(request, f"The endpoint {endpoint.url} is deleted, with its deliveries.")
    return redirect("webhook-list")
