"""/api/v1/: every API route of the product."""

from django.urls import include, path

from contracts.webhooks import AlertmanagerWebhookApi

urlpatterns = [
    path("", include("contracts.api_urls")),
    path("", include("tickets.api_urls")),
    path("", include("credits.api_urls")),
    path("hooks/alertmanager/", AlertmanagerWebhookApi.as_view(), name="alertmanager-webhook"),
]
