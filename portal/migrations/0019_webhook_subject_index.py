"""The index by which a webhook claim asks "is an earlier delivery of this endpoint about the same
object still waiting?" (portal.core.webhook_delivery), over the waiting deliveries only. Built
CONCURRENTLY on PostgreSQL (portal.core.indexes.model_indexes), outside 0017's transaction: the
deliveries of every change go on being written while it builds, and a build that was interrupted
is built again."""

from django.db import migrations, models

from portal.core.indexes import model_indexes

INDEXES = [
    models.Index(
        fields=["endpoint", "subject", "id"],
        name="webhook_subject_queue",
        condition=models.Q(status__in=["pending", "sending"]),
    ),
]


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY runs outside a transaction

    dependencies = [("portal", "0018_outbox_list_indexes")]

    operations = [model_indexes("portal", "webhookdelivery", INDEXES)]
