"""/api/v1/contracts/{id}/uptime/ and /api/v1/claims/...: the customer uptime and claim API (credits.api)."""

from django.urls import path

from . import api

urlpatterns = [
    path("contracts/<int:pk>/uptime/", api.ContractUptimeApi.as_view(), name="api-contract-uptime"),
    path("claims/", api.ClaimListCreateApi.as_view(), name="api-claim-list"),
    path("claims/<int:pk>/", api.ClaimDetailApi.as_view(), name="api-claim-detail"),
]
