from django.contrib.admin.apps import AdminConfig


class StaffAdminConfig(AdminConfig):
    """django.contrib.admin, with the staff site (portal.site.admin_site) as its default site."""

    default_site = "portal.site.admin_site.StaffAdminSite"

    def ready(self):
        super().ready()
        from portal.site import checks  # noqa: F401 - registers the portal's system checks
