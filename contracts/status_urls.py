"""/status/: the public status page (no login), its history, its incidents, its Atom feed, its
Statuspage-compatible JSON and its subscriptions."""

from django.urls import path

from . import status_api, status_feeds, status_views, subscription_views
from .outages.statuspage import DOCUMENTS

urlpatterns = [
    path("", status_views.status, name="status"),
    path("history/", status_views.history, name="status-history"),
    path("incidents/<int:pk>/", status_views.incident, name="status-incident"),
    path("feed.atom", status_feeds.StatusFeed(), name="status-feed"),
    *(
        path(f"api/v2/{name}.json", status_api.document_view(name), name=f"statuspage-{name.replace('/', '-')}")
        for name in DOCUMENTS
    ),
    path("subscribe/", subscription_views.subscribe, name="status-subscribe"),
    path("subscribe/sent/", subscription_views.subscribe_sent, name="status-subscribe-sent"),
    path(
        "subscriptions/confirm/<str:token>/",
        subscription_views.subscription_confirm_view,
        name="status-subscription-confirm",
    ),
    path("subscriptions/<str:token>/", subscription_views.subscription_manage, name="status-subscription-manage"),
]
