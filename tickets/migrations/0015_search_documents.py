"""The tickets' search documents (tickets.search): the columns, every ticket's documents written in
batches, then their GIN indexes built without blocking writes (CREATE INDEX CONCURRENTLY, hence a
migration outside a transaction). PostgreSQL only; SQLite searches the rows themselves."""

import django.contrib.postgres.search
from django.db import migrations

from tickets.search import postgres_indexes

INDEXES = {
    "ticket_search": "CREATE INDEX CONCURRENTLY IF NOT EXISTS ticket_search ON tickets_ticket USING gin (search_document)",
    # The queue's own (active tickets, as ticket_queue_active): a search of the queue reads only the
    # active tickets' entries. Without it PostgreSQL combined the whole index with the status index, a
    # bitmap of 100,000 rows for a word in 16 (44 ms against 2 ms at a million tickets; bench/RESULTS.md).
    "ticket_search_active": "CREATE INDEX CONCURRENTLY IF NOT EXISTS ticket_search_active ON tickets_ticket "
    "USING gin (search_document) WHERE status IN ('new', 'open', 'waiting')",
    # Customers' documents exist only for the tickets with internal notes.
    "ticket_search_public": "CREATE INDEX CONCURRENTLY IF NOT EXISTS ticket_search_public ON tickets_ticket "
    "USING gin (search_public) WHERE search_public IS NOT NULL",
}


def fill(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from tickets.search import documents_fill

    documents_fill()


class Migration(migrations.Migration):
    atomic = False  # the fill commits batch by batch; CREATE INDEX CONCURRENTLY runs outside a transaction

    dependencies = [("tickets", "0014_warnings_before_breaches")]

    operations = [
        migrations.AddField(
            model_name="ticket",
            name="search_document",
            field=django.contrib.postgres.search.SearchVectorField(editable=False, null=True),
        ),
        migrations.AddField(
            model_name="ticket",
            name="search_public",
            field=django.contrib.postgres.search.SearchVectorField(editable=False, null=True),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=True),
        postgres_indexes(INDEXES),
    ]
