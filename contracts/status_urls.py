"""/status/: the public status page (no login)."""

from django.urls import path

from . import status_views

urlpatterns = [
    path("", status_views.status, name="status"),
]
