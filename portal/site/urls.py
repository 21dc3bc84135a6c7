from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from portal.site import account_views, notification_views, organisation_views, people_views, security_views, views
from portal.site.forms import EmailAuthenticationForm, OutboxPasswordResetForm
from tickets.provider_inbound import PostmarkInbound

handler404 = "portal.site.views.page_not_found"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("accounts/login/", auth_views.LoginView.as_view(authentication_form=EmailAuthenticationForm), name="login"),
    path(
        "accounts/password_reset/",
        auth_views.PasswordResetView.as_view(form_class=OutboxPasswordResetForm),
        name="password_reset",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        account_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("accounts/password_change/", account_views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("account/", account_views.account, name="account"),
    path("account/profile/", organisation_views.profile, name="account-profile"),
    path("organisation/", organisation_views.organisation, name="organisation"),
    path("organisation/review/", organisation_views.organisation_review, name="organisation-review"),
    path("account/token/", account_views.token_create, name="token-create"),
    path("account/emails/", notification_views.notification_preferences, name="notification-preferences"),
    path("email/unsubscribe/<str:token>/", notification_views.unsubscribe, name="unsubscribe"),
    path("account/token/revoke/", account_views.token_revoke, name="token-revoke"),
    path("people/", include("portal.site.people_urls")),
    path("invitation/<str:token>/", people_views.invitation_accept, name="invitation-accept"),
    path("contracts/", include("portal.site.contract_urls")),
    path("tickets/", include("tickets.urls")),
    path("claims/", include("credits.urls")),
    path("maintenance/", include("contracts.maintenance_urls")),
    path("incidents/", include("portal.site.incident_urls")),
    path("webhooks/", include("portal.site.webhook_urls")),
    path("status/", include("contracts.status_urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("portal.site.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("healthz", views.healthz, name="healthz"),
    # A mail provider's inbound webhook (README "Email in"); anymail's own path for Postmark.
    path("anymail/postmark/inbound/", PostmarkInbound.as_view(), name="inbound-postmark"),
    path(".well-known/security.txt", security_views.security_txt, name="security-txt"),
    path("security/policy/", security_views.security_policy, name="security-policy"),
    path("security/report/", security_views.security_report, name="security-report"),
    path("security/report/done/", security_views.security_report_done, name="security-report-done"),
    path("security/report/files/<str:token>/", security_views.security_report_file, name="security-report-file"),
]
