from django.urls import path

from portal.site import people_views as views

urlpatterns = [
    path("", views.people, name="people"),
    path("invite/", views.invite, name="people-invite"),
    path("<int:pk>/role/", views.member_role, name="people-role"),
    path("<int:pk>/deactivate/", views.member_deactivate, name="people-deactivate"),
    path("<int:pk>/reactivate/", views.member_reactivate, name="people-reactivate"),
    path("invitations/<int:pk>/revoke/", views.invitation_revoke, name="people-invitation-revoke"),
]
