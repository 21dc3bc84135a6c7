"""/status/: the public status page and its subscriptions (no login)."""

from django.urls import path

from . import status_views, subscription_views

urlpatterns = [
    path("", status_views.status, name="status"),
    path("subscribe/", subscription_views.subscribe, name="status-subscribe"),
    path("subscribe/sent/", subscription_views.subscribe_sent, name="status-subscribe-sent"),
    path(
        "subscriptions/confirm/<str:token>/",
        subscription_views.subscription_confirm_view,
        name="status-subscription-confirm",
    ),
    path("subscriptions/<str:token>/", subscription_views.subscription_manage, name="status-subscription-manage"),
]
