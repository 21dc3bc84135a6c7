# The permissions that are no add/change/delete/view of a model (docs/decisions.md, "Staff roles are
# permissions"); the role groups that hold them are made after every migrate (portal.core.staff_access).

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("contracts", "0005_terms_revision"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="outage",
            options={"ordering": ["-starts_at"], "permissions": [("change_outage_cause", "Can change an outage's cause")]},
        ),
        migrations.AlterModelOptions(
            name="service",
            options={
                "ordering": ["name"],
                "permissions": [("rotate_webhook_token", "Can rotate a service's Alertmanager webhook token")],
            },
        ),
        migrations.AlterModelOptions(
            name="slaversion",
            options={
                "ordering": ["sla", "-effective_from"],
                "permissions": [("publish_slaversion", "Can publish an SLA version")],
                "verbose_name": "SLA version",
            },
        ),
    ]
