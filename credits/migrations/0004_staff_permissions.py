# The permissions that are no add/change/delete/view of a model (docs/decisions.md, "Staff roles are
# permissions"); the role groups that hold them are made after every migrate (portal.core.staff_access).

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("credits", "0003_rejudging"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="claim",
            options={
                "ordering": ["-submitted_at"],
                "permissions": [
                    ("decide_claim", "Can approve, adjust or reject a claim"),
                    ("settle_claim", "Can mark a claim as credited or refunded"),
                ],
            },
        ),
        migrations.AlterModelOptions(
            name="monthlyuptime",
            options={
                "ordering": ["-month", "contract"],
                "permissions": [
                    ("reopen_monthlyuptime", "Can reopen a closed month"),
                    ("view_compliance", "Can view the SLA compliance report"),
                ],
                "verbose_name": "monthly uptime",
            },
        ),
    ]
