"""A crossing records the ticket's priority when it was recorded and the deadline it named, and an
at-risk warning is once per ticket, clock and priority (tickets.deadlines.standing: a priority change
that moves a clock's deadline gives the new deadline its own warning). Rows recorded before get the
priority the ticket had at their recording (from its priority changes), and a breach's or a target
warning's deadline is its moment; an at-risk warning's deadline was not kept (its priority decides).
Only historical models here."""

from django.db import migrations, models
from django.db.models import F, OuterRef, Subquery


def fill(apps, schema_editor):
    SLACrossing = apps.get_model("tickets", "SLACrossing")
    Ticket = apps.get_model("tickets", "Ticket")
    TicketEvent = apps.get_model("tickets", "TicketEvent")
    SLACrossing.objects.exclude(kind="at_risk").update(deadline=F("at"))
    now = Ticket.objects.filter(pk=OuterRef("ticket_id")).values("priority")[:1]
    SLACrossing.objects.update(priority=Subquery(now))
    # Tickets whose priority changed: each row gets the priority of its recording's moment.
    changes = {}
    for event in TicketEvent.objects.filter(kind="priority").order_by("at", "pk"):
        changes.setdefault(event.ticket_id, []).append(event)
    for crossing in SLACrossing.objects.filter(ticket_id__in=list(changes)):
        events = changes[crossing.ticket_id]
        before = [e for e in events if e.at <= crossing.recorded_at]
        then = before[-1].data.get("new") if before else events[0].data.get("old")
        if then and then != crossing.priority:
            crossing.priority = then
            crossing.save(update_fields=["priority"])


class Migration(migrations.Migration):
    dependencies = [("tickets", "0022_acknowledgement_stops_with_the_ticket")]

    operations = [
        migrations.RemoveConstraint(model_name="slacrossing", name="crossing_once"),
        migrations.AddField(
            model_name="slacrossing",
            name="deadline",
            field=models.DateTimeField(blank=True, null=True, verbose_name="deadline named"),
        ),
        migrations.AddField(model_name="slacrossing", name="priority", field=models.CharField(blank=True, max_length=3)),
        migrations.RunPython(fill, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="slacrossing",
            constraint=models.UniqueConstraint(
                condition=models.Q(("kind", "at_risk"), _negated=True),
                fields=("ticket", "clock", "kind"),
                name="crossing_once",
            ),
        ),
        migrations.AddConstraint(
            model_name="slacrossing",
            constraint=models.UniqueConstraint(
                condition=models.Q(("kind", "at_risk")),
                fields=("ticket", "clock", "kind", "priority"),
                name="warning_once_per_priority",
            ),
        ),
    ]
