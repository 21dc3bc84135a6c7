"""/api/v1/contracts/, services/, maintenance-windows/, outages/, incidents/: what an organisation has (contracts.api)."""

from django.urls import path

from .api import incidents, views

urlpatterns = [
    path("contracts/", views.ContractListApi.as_view(), name="api-contract-list"),
    path("contracts/<int:pk>/", views.ContractDetailApi.as_view(), name="api-contract-detail"),
    path("services/", views.ServiceListApi.as_view(), name="api-service-list"),
    path("services/<int:pk>/", views.ServiceDetailApi.as_view(), name="api-service-detail"),
    path("maintenance-windows/", views.WindowListApi.as_view(), name="api-window-list"),
    path("maintenance-windows/<int:pk>/", views.WindowDetailApi.as_view(), name="api-window-detail"),
    path("outages/", views.OutageListApi.as_view(), name="api-outage-list"),
    path("outages/<int:pk>/", views.OutageDetailApi.as_view(), name="api-outage-detail"),
    path("incidents/", incidents.IncidentListApi.as_view(), name="api-incident-list"),
    path("incidents/<int:pk>/", incidents.IncidentDetailApi.as_view(), name="api-incident-detail"),
]
