# The permissions that are no add/change/delete/view of a model (docs/decisions.md, "Staff roles are
# permissions"). The role groups that hold them are made after every migrate
# (portal.core.staff_access.role_groups_sync): on a fresh database a data migration finds no permissions.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0005_api_tokens"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="outboxmessage",
            options={
                "ordering": ["-created_at"],
                "permissions": [("retry_outboxmessage", "Can put failed emails back in the queue")],
            },
        ),
        migrations.AlterModelOptions(
            name="sweepheartbeat",
            options={"ordering": ["name"], "permissions": [("view_staff_dashboard", "Can view the staff dashboard")]},
        ),
    ]
