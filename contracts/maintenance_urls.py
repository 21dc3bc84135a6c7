"""The customer's maintenance page and the organisation's iCal feed (mounted at /maintenance/)."""

from django.urls import path

from . import maintenance_views as views

urlpatterns = [
    path("", views.maintenance_list, name="maintenance-list"),
    path("ical/rotate/", views.maintenance_ical_rotate, name="maintenance-ical-rotate"),
    path("ical/revoke/", views.maintenance_ical_revoke, name="maintenance-ical-revoke"),
    path("ical/<str:token>.ics", views.maintenance_ical, name="maintenance-ical"),
]
