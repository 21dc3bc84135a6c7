from django.urls import path

from . import rating_views, views

urlpatterns = [
    path("", views.ticket_list, name="ticket-list"),
    path("new/", views.ticket_new, name="ticket-new"),
    path("<int:pk>/", views.ticket_detail, name="ticket-detail"),
    path("<int:pk>/reply/", views.ticket_reply, name="ticket-reply"),
    path("<int:pk>/escalate/", views.ticket_escalate, name="ticket-escalate"),
    path("<int:pk>/status/", views.ticket_status, name="ticket-status"),
    path("<int:pk>/attachments/<int:attachment_id>/", views.attachment_download, name="attachment-download"),
    path("rate/<str:token>/", rating_views.ticket_rate_page, name="ticket-rate"),
]
