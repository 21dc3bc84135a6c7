"""The customer's incidents (mounted at /incidents/)."""

from django.urls import path

from . import incident_views as views

urlpatterns = [
    path("", views.incident_list, name="incident-list"),
    path("<int:pk>/", views.incident_detail, name="incident-detail"),
]
