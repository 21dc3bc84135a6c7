"""The staff site: Django's admin with the staff pages of our own (dashboard, compliance report) and
a second factor at sign-in (django-otp: portal.core.staff_otp, portal.site.staff_otp).

It is the project's default admin site (`portal.site.apps.StaffAdminConfig.default_site`), so every
app registers its ModelAdmins on `django.contrib.admin.site` as usual and never imports the roof."""

from functools import wraps
from urllib.parse import urlencode

from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils.functional import SimpleLazyObject
from django_otp.admin import OTPAdminSite

from portal.core import staff_otp
from portal.core.admin_links import viewing
from portal.core.admin_lookups import CheckedListAdmin
from portal.site import staff_otp as otp_pages
from portal.site.staff_otp import StaffLoginForm


class StaffAdminSite(OTPAdminSite):
    site_header = "SLA Portal – staff"
    site_title = "SLA Portal staff"
    index_title = "Contracts, tickets, outages and credits"
    login_template = "admin/staff_login.html"
    login_form = StaffLoginForm
    # No navigation sidebar: it took 300 of a 1280-px screen on every page, which cut the queue's
    # deadline, level and assignee columns off. The home page lists every model, and every page's
    # breadcrumbs lead there.
    enable_nav_sidebar = False
    empty_value_display = "—"  # an empty cell as every page of ours writes one (Django's is "-")

    def __init__(self, name="admin"):
        super().__init__(name)  # OTPAdminSite names itself "otpadmin"; our URLs are "admin:..."

    def register(self, model_or_iterable, admin_class=None, **options):
        """Every list takes only the filters it offers and refuses the rest with a 400 that says why
        (portal.core.admin_lookups), the installed apps' lists (axes, django-otp, auth) too."""
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, CheckedListAdmin):
            admin_class = type(
                admin_class.__name__, (CheckedListAdmin, admin_class), {"__module__": admin_class.__module__}
            )
        super().register(model_or_iterable, admin_class, **options)

    def index(self, request, extra_context=None):
        from portal.site.staff_pages import own_work

        return super().index(request, {"own_work": own_work(request), **(extra_context or {})})

    def get_app_list(self, request, app_label=None):
        """Django's list, built when a page reads it: every page's context carries it (each_context)
        but only the home and app pages show it, and building it checks the permissions and reverses
        two URLs of every model."""
        return SimpleLazyObject(lambda: super(StaffAdminSite, self).get_app_list(request, app_label))

    def has_permission(self, request):
        """Active staff, and the second factor: a session verified by a device, or (where it is
        optional) a staff member who has none."""
        return admin.AdminSite.has_permission(self, request) and staff_otp.may_use_staff_site(request.user)

    def admin_view(self, view, cacheable=False):
        """Every staff page is rendered here, while `viewing` its request: a read-only relation
        links only where its reader may go (portal.core.admin_links)."""
        inner = super().admin_view(view, cacheable)

        @wraps(inner)
        def rendered(request, *args, **kwargs):
            with viewing(request):
                response = inner(request, *args, **kwargs)
                if callable(getattr(response, "render", None)) and not response.is_rendered:
                    response.render()
            return response

        return rendered

    def login(self, request, extra_context=None):
        """After the password, a staff member who must enrol goes to enrolment."""
        if request.method == "GET" and staff_otp.must_enrol(request.user):
            return self._to_enrolment(request)
        response = super().login(request, extra_context)
        if request.method == "POST" and response.status_code == 302 and staff_otp.must_enrol(request.user):
            return self._to_enrolment(request)
        return response

    def _to_enrolment(self, request):
        target = reverse("admin:staff_otp", current_app=self.name)
        following = request.POST.get("next") or request.GET.get("next")
        return HttpResponseRedirect(f"{target}?{urlencode({'next': following})}" if following else target)

    def get_urls(self):
        # The staff pages go through admin_view: staff-only exactly as every admin page is. The
        # enrolment page cannot (who enrols is not allowed in yet): it checks for itself.
        from portal.site import staff_pages

        view = self.admin_view
        return [
            path("dashboard/", view(staff_pages.staff_dashboard_view), name="staff_dashboard"),
            path("compliance/", view(staff_pages.compliance_view), name="compliance"),
            path("compliance/export/", view(staff_pages.compliance_export_view), name="compliance_export"),
            path(
                "compliance/<int:contract_id>/", view(staff_pages.compliance_contract_view), name="compliance_contract"
            ),
            path("two-factor/", otp_pages.enrol_view(self), name="staff_otp"),
            path(
                "two-factor/recovery-codes/",
                view(otp_pages.recovery_codes_view(self)),
                name="staff_otp_recovery_codes",
            ),
            *super().get_urls(),
        ]
