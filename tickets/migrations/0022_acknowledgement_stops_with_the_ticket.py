"""An escalation request's acknowledgement clock stops with its ticket (tickets.deadlines.ticket_deadlines):
none while the ticket is excluded, and stopped while it is resolved or closed (a reopen resumes it).
Pending requests stored before kept a running deadline, which the sweep warned and breached on; this
derives their columns as the code now does: excluded tickets' requests lose both moments, resolved or
closed tickets' requests keep only a moment that came before the resolution. Resolved and closed
tickets are not recomputed (tickets.recompute), so only this brings theirs in line. Only historical
models here."""

from django.db import migrations
from django.db.models import F, Q

DONE = ["resolved", "closed"]


def stop_acknowledgement_clocks(apps, schema_editor):
    EscalationRequest = apps.get_model("tickets", "EscalationRequest")
    pending = EscalationRequest.objects.filter(acknowledged_at__isnull=True)
    pending.exclude(ticket__excluded_cause="").update(ack_due=None, ack_warn_at=None)
    done = pending.filter(ticket__excluded_cause="", ticket__status__in=DONE, ticket__resolved_at__isnull=False)
    for column in ("ack_due", "ack_warn_at"):
        done.filter(Q(**{f"{column}__gt": F("ticket__resolved_at")})).update(**{column: None})


class Migration(migrations.Migration):
    dependencies = [("tickets", "0021_recompute_missing_deadlines")]

    operations = [migrations.RunPython(stop_acknowledgement_clocks, migrations.RunPython.noop)]
