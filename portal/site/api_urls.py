"""/api/v1/: every API route of the product."""

from django.urls import include, path

from contracts.webhooks import AlertmanagerWebhookApi
from portal.site.notification_api import NotificationPreferencesApi

urlpatterns = [
    path("", include("contracts.api_urls")),
    path("", include("tickets.api_urls")),
    path("", include("credits.api_urls")),
    path("notification-preferences/", NotificationPreferencesApi.as_view(), name="api-notification-preferences"),
    path("hooks/alertmanager/", AlertmanagerWebhookApi.as_view(), name="alertmanager-webhook"),
]
