from django.urls import path

from . import views

urlpatterns = [
    path("", views.claim_list, name="claim-list"),
    path("new/", views.claim_new, name="claim-new"),
    path("<int:pk>/", views.claim_detail, name="claim-detail"),
    path("<int:pk>/attachments/<int:attachment_id>/", views.claim_attachment, name="claim-attachment"),
]
