from django.contrib.admin.apps import AdminConfig


class StaffAdminConfig(AdminConfig):
    """django.contrib.admin, with the staff site (portal.site.admin_site) as its default site."""

    default_site = "portal.site.admin_site.StaffAdminSite"

    def ready(self):
        from portal.core import staff_time

        staff_time.install()  # before the admin registers its models: their date-time widgets
        super().ready()
        from portal.site import checks  # noqa: F401 - registers the portal's system checks
