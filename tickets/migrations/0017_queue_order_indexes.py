"""The queue's order for every choice of its status filter, not only the active tickets: "All",
"Closed" or "Resolved" sorted up to a million rows for each page (0.6-1.0 s at a million tickets,
bench/RESULTS.md session 10). (status, next_deadline, -id) replaces (status, next_deadline), which it
covers. Built CONCURRENTLY on PostgreSQL, as the search indexes were (0015, 0016): writes to tickets go
on while they build."""

from django.db import migrations, models

from portal.core.indexes import index_create

NEW = [
    models.Index(fields=["status", "next_deadline", "-id"], name="ticket_queue_status"),
    models.Index(fields=["next_deadline", "-id"], name="ticket_queue_all"),
]
OLD = models.Index(fields=["status", "next_deadline"], name="ticket_queue")


def forwards(apps, schema_editor):
    ticket = apps.get_model("tickets", "Ticket")
    concurrently = schema_editor.connection.vendor == "postgresql"
    extra = {"concurrently": True} if concurrently else {}
    for index in NEW:
        if concurrently:  # a build interrupted by a crash leaves an INVALID index: index_create builds it again
            sql = index.create_sql(ticket, schema_editor, concurrently=True)
            index_create(
                schema_editor,
                index.name,
                str(sql).replace("CREATE INDEX CONCURRENTLY", "CREATE INDEX CONCURRENTLY IF NOT EXISTS"),
            )
        else:
            schema_editor.add_index(ticket, index)
    schema_editor.remove_index(ticket, OLD, **extra)


def backwards(apps, schema_editor):
    ticket = apps.get_model("tickets", "Ticket")
    extra = {"concurrently": True} if schema_editor.connection.vendor == "postgresql" else {}
    schema_editor.add_index(ticket, OLD, **extra)
    for index in NEW:
        schema_editor.remove_index(ticket, index, **extra)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY runs outside a transaction

    dependencies = [("tickets", "0016_search_people_indexes")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name="ticket", name="ticket_queue"),
                *(migrations.AddIndex(model_name="ticket", index=index) for index in NEW),
            ],
            database_operations=[migrations.RunPython(forwards, backwards)],
        )
    ]
