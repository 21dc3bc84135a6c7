from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal: accounts and email outbox"

    def ready(self):
        from django.db.models.signals import post_migrate

        from portal.core import staff_access

        staff_access.connect()  # every change of a user's access is audited
        # One group per staff role, with the matrix's permissions, after every migrate (idempotent):
        # a data migration would find no permissions on a fresh database.
        post_migrate.connect(staff_access.on_post_migrate, sender=self, dispatch_uid="portal-role-groups")
