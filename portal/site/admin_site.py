"""The staff site: Django's admin with the staff pages of our own (dashboard, compliance report).

It is the project's default admin site (`portal.site.apps.StaffAdminConfig.default_site`), so every
app registers its ModelAdmins on `django.contrib.admin.site` as usual and never imports the roof."""

from django.contrib import admin
from django.urls import path


class StaffAdminSite(admin.AdminSite):
    site_header = "SLA Portal – staff"
    site_title = "SLA Portal staff"
    index_title = "Contracts, tickets, outages and credits"

    def get_urls(self):
        # The staff pages go through admin_view: staff-only exactly as every admin page is.
        from portal.site import staff_pages

        view = self.admin_view
        return [
            path("dashboard/", view(staff_pages.staff_dashboard_view), name="staff_dashboard"),
            path("compliance/", view(staff_pages.compliance_view), name="compliance"),
            path("compliance/export/", view(staff_pages.compliance_export_view), name="compliance_export"),
            path(
                "compliance/<int:contract_id>/", view(staff_pages.compliance_contract_view), name="compliance_contract"
            ),
            *super().get_urls(),
        ]
