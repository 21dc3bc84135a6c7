"""A webhook delivery's `subject`, the object it is about (its key's first two parts, "ticket:12"):
deliveries wait only for the earlier ones of their endpoint about the same object, no longer for
every earlier one of the endpoint. The deliveries still waiting get theirs from their key (the rule
of portal.core.webhooks.HookEvent.subject as it stands today); delivered and parked ones are history,
whose subject nothing reads. The index the claim reads it by is 0019's, built concurrently on
PostgreSQL (deliveries go on being written while it builds)."""

from django.db import migrations, models

WAITING = ["pending", "sending"]


def fill(apps, schema_editor):
    delivery = apps.get_model("portal", "WebhookDelivery")
    rows = list(delivery.objects.filter(status__in=WAITING).only("id", "key"))
    for row in rows:
        row.subject = ":".join(row.key.split(":")[:2])
    delivery.objects.bulk_update(rows, ["subject"], batch_size=500)


class Migration(migrations.Migration):
    dependencies = [("portal", "0016_form_submission_age_index")]

    operations = [
        migrations.AddField(
            model_name="webhookdelivery", name="subject", field=models.CharField(default="", max_length=200)
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
