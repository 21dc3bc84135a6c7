# The permissions that are no add/change/delete/view of a model (docs/decisions.md, "Staff roles are
# permissions"); the role groups that hold them are made after every migrate (portal.core.staff_access).

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0004_stored_deadlines"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="ticket",
            options={
                "ordering": ["-filed_at"],
                "permissions": [
                    ("exclude_ticket", "Can exclude a ticket from the SLA"),
                    ("change_priority", "Can change a ticket's priority"),
                    ("handle_escalation", "Can escalate a ticket and acknowledge escalation requests"),
                    ("view_security_report", "Can see vulnerability reports"),
                ],
            },
        ),
    ]
