from django.urls import path

from portal.site import webhook_views as views

urlpatterns = [
    path("", views.webhook_list, name="webhook-list"),
    path("<int:pk>/", views.webhook_detail, name="webhook-detail"),
    path("<int:pk>/rotate/", views.webhook_rotate, name="webhook-rotate"),
    path("<int:pk>/enable/", views.webhook_enable, name="webhook-enable"),
    path("<int:pk>/disable/", views.webhook_disable, name="webhook-disable"),
    path("<int:pk>/test/", views.webhook_test, name="webhook-test"),
    path("<int:pk>/delete/", views.webhook_delete, name="webhook-delete"),
]
