from django.contrib.admin.apps import AdminConfig


class StaffAdminConfig(AdminConfig):
    """django.contrib.admin, with the staff site (portal.site.admin_site) as its default site."""

    default_site = "portal.site.admin_site.StaffAdminSite"
