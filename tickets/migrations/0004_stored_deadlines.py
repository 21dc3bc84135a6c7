"""The clock columns as the one derivation writes them: the at-risk moment and every escalation
level's due moment join the stored deadlines (tickets.deadlines.ticket_deadlines)."""

from django.db import migrations, models


def recompute_active_tickets(apps, schema_editor):
    """Active tickets get the new columns from the live derivation (the escalation sweep reads
    escalation_dues). A database without active tickets (a new one, the tests') does nothing."""
    Ticket = apps.get_model("tickets", "Ticket")
    ids = list(Ticket.objects.filter(status__in=["new", "open", "waiting"]).values_list("pk", flat=True))
    if ids:
        from tickets.recompute import tickets_recompute

        tickets_recompute(ids)


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
        migrations.RunPython(recompute_active_tickets, migrations.RunPython.noop),
    ]
