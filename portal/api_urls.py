"""/api/v1/: every API route of the product."""

from django.urls import include, path

urlpatterns = [
    path("", include("tickets.api_urls")),
]
