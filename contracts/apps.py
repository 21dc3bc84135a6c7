from django.apps import AppConfig


class ContractsConfig(AppConfig):
    name = "contracts"

    def ready(self):
        from django.db.models.signals import post_migrate, pre_delete

        from portal.core.email_parts import register_attachment
        from portal.core.staff_access import access_changed

        from . import terms_revision
        from .maintenance.ical import NOTICE_FILENAME, notice_attachment
        from .models import TERMS_ROWS, SLAVersion, WorkingHours, refuse_published_delete
        from .people.invitations import on_access_changed
        from .sla_templates import install_after_migrate

        # The SLA templates the product ships are (re)installed after every migrate, idempotently,
        # with the current models: a fresh database always has them.
        post_migrate.connect(install_after_migrate, sender=self)
        terms_revision.connect()
        # Published terms are never deleted, by a queryset or a cascade either (save() refuses edits).
        for model in (SLAVersion, *TERMS_ROWS, WorkingHours):
            pre_delete.connect(refuse_published_delete, sender=model, dispatch_uid=f"published-terms-{model.__name__}")
        # A maintenance email carries the window as an .ics, rendered when it is sent.
        register_attachment(NOTICE_FILENAME, notice_attachment)
        # Whoever may no longer invite takes back the invitations they sent (contracts.people).
        access_changed.connect(on_access_changed, dispatch_uid="contracts-invitations-standing")
