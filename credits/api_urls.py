"""/api/v1/contracts/{id}/uptime/, /api/v1/months/ and /api/v1/claims/...: the customer uptime and claim API
(credits.api, credits.api_months)."""

from django.urls import path

from . import api, api_months

urlpatterns = [
    path("contracts/<int:pk>/uptime/", api.ContractUptimeApi.as_view(), name="api-contract-uptime"),
    path("claims/", api.ClaimListCreateApi.as_view(), name="api-claim-list"),
    path("claims/<int:pk>/", api.ClaimDetailApi.as_view(), name="api-claim-detail"),
    path("claims/<int:pk>/attachments/", api.ClaimAttachmentsApi.as_view(), name="api-claim-attachments"),
    path(
        "claims/<int:pk>/attachments/<int:attachment_id>/download/",
        api.ClaimAttachmentDownloadApi.as_view(),
        name="api-claim-attachment-download",
    ),
    path("months/", api_months.MonthListApi.as_view(), name="api-month-list"),
]
