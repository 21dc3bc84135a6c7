from django.apps import AppConfig


class ContractsConfig(AppConfig):
    name = "contracts"

    def ready(self):
        from django.db.models.signals import post_migrate

        from . import terms_revision
        from .sla_templates import install_after_migrate

        # The SLA templates the product ships are (re)installed after every migrate, idempotently,
        # with the current models: a fresh database always has them.
        post_migrate.connect(install_after_migrate, sender=self)
        terms_revision.connect()
