"""/api/v1/tickets/...: the customer ticket API (tickets.api.views)."""

from django.urls import path

from .api import views

urlpatterns = [
    path("tickets/", views.TicketListCreateApi.as_view(), name="api-ticket-list"),
    path("tickets/<int:pk>/", views.TicketDetailApi.as_view(), name="api-ticket-detail"),
    path("tickets/<int:pk>/replies/", views.TicketRepliesApi.as_view(), name="api-ticket-replies"),
    path("tickets/<int:pk>/attachments/", views.TicketAttachmentsApi.as_view(), name="api-ticket-attachments"),
    path(
        "tickets/<int:pk>/attachments/<int:attachment_id>/download/",
        views.TicketAttachmentDownloadApi.as_view(),
        name="api-ticket-attachment-download",
    ),
    path("tickets/<int:pk>/escalate/", views.TicketEscalateApi.as_view(), name="api-ticket-escalate"),
]
