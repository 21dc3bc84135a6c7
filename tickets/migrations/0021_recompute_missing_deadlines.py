"""Open tickets that lack their stored deadlines get them: a database upgraded from before 0004 (or
0014) has open tickets without the at-risk moment, the escalation dues or the warnings. This writes
one deadline recompute request (tickets.models.DeadlineRecompute) naming their SLA versions, due at
once: the minute's SLA sweep (tickets.sweeps.check_sla_deadlines, tickets.recompute.recompute_overdue)
takes it and recomputes them with the code of the day. Only historical models here: live model code
changes with later migrations, this must not."""

from django.db import migrations
from django.db.models import Q
from django.utils import timezone

ACTIVE = ["new", "open", "waiting"]
# Columns every open ticket's derivation writes (a paused or excluded ticket has no at-risk moment, so
# it is named too: recomputing a ticket whose columns are right changes nothing).
LACKING = (
    Q(at_risk_at__isnull=True)
    | Q(first_response_warn_at__isnull=True)
    | Q(resolution_warn_at__isnull=True)
    | Q(resolution_due__isnull=True)
    | Q(next_deadline__isnull=True)
)


def request_recompute(apps, schema_editor):
    """One request for the SLA versions of the open tickets that lack deadlines; none without any."""
    Ticket = apps.get_model("tickets", "Ticket")
    DeadlineRecompute = apps.get_model("tickets", "DeadlineRecompute")
    versions = sorted(
        set(Ticket.objects.filter(LACKING, status__in=ACTIVE).values_list("sla_version_id", flat=True).distinct())
    )
    if versions:
        DeadlineRecompute.objects.create(calendar_ids=[], version_ids=versions, due_at=timezone.now())


class Migration(migrations.Migration):
    dependencies = [("tickets", "0020_deadline_recompute_requests")]

    operations = [migrations.RunPython(request_recompute, migrations.RunPython.noop)]
