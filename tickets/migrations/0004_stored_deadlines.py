"""The clock columns as the one derivation writes them: the at-risk moment and every escalation
level's due moment join the stored deadlines (tickets.deadlines.ticket_deadlines)."""

from django.db import migrations, models


def recompute_active_tickets(apps, schema_editor):
    """Nothing now. It called the live tickets.recompute, which reads whole Ticket rows with the
    code's model: a database upgraded from before this migration has none of the columns later
    migrations add (`channel`, ...), so the upgrade stopped here. The open tickets' new columns are
    requested by 0021_recompute_missing_deadlines instead, from the historical models alone."""


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0003_queue_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="ticket",
            name="at_risk_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="ticket",
            name="escalation_dues",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddIndex(
            model_name="ticket",
            index=models.Index(
                condition=models.Q(
                    ("at_risk_at__isnull", False),
                    ("breached", False),
                    ("excluded_cause", ""),
                    ("paused", False),
                    ("status__in", ["new", "open", "waiting"]),
                    ("warned", False),
                ),
                fields=["at_risk_at"],
                name="ticket_at_risk",
            ),
        ),
        migrations.RunPython(recompute_active_tickets, migrations.RunPython.noop, elidable=True),
    ]
