"""The tickets' search documents (tickets.search): the columns, every ticket's documents written in
batches, then their GIN indexes built without blocking writes (CREATE INDEX CONCURRENTLY, hence a
migration outside a transaction). The indexes and documents are PostgreSQL's only; SQLite searches
the rows themselves.

Not atomic, so every step can be run again after an interruption: the columns are added only where
missing (ADD COLUMN IF NOT EXISTS on PostgreSQL), the fill writes every document again, and an index
whose build was interrupted (INVALID) is dropped and built again (portal.core.indexes). The fill's
statement is this migration's own copy of tickets.search's as it was then, over the columns that
exist at this migration: the live one may come to read columns that later migrations add."""

import django.contrib.postgres.search
from django.db import migrations

from portal.core.indexes import postgres_indexes

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
COLUMNS = ("search_document", "search_public")
BATCH = 20_000
# Subject (A), description and steps (C), messages (D): public ones in both documents, internal
# notes only in search_document; search_public only where the ticket has notes.
FILL = """
UPDATE tickets_ticket t
   SET search_document = d.head || setweight(to_tsvector('english', coalesce(d.public, '')), 'D')
                         || setweight(to_tsvector('english', coalesce(d.notes, '')), 'D'),
       search_public = CASE WHEN d.notes IS NULL THEN NULL
                            ELSE d.head || setweight(to_tsvector('english', coalesce(d.public, '')), 'D') END
  FROM (SELECT x.id,
               setweight(to_tsvector('english', x.subject), 'A')
               || setweight(to_tsvector('english', x.description || ' ' || x.steps_to_reproduce), 'C') AS head,
               (SELECT left(string_agg(m.body, ' ' ORDER BY m.id), 200000) FROM tickets_ticketmessage m
                 WHERE m.ticket_id = x.id AND NOT m.internal) AS public,
               (SELECT left(string_agg(m.body, ' ' ORDER BY m.id), 200000) FROM tickets_ticketmessage m
                 WHERE m.ticket_id = x.id AND m.internal) AS notes
          FROM tickets_ticket x WHERE x.id >= %s AND x.id < %s) d
 WHERE t.id = d.id
"""


def document_field(name):
    field = django.contrib.postgres.search.SearchVectorField(editable=False, null=True)
    field.set_attributes_from_name(name)
    return field


def present(schema_editor) -> set[str]:
    with schema_editor.connection.cursor() as cursor:
        return {c.name for c in schema_editor.connection.introspection.get_table_description(cursor, "tickets_ticket")}


def add_columns(apps, schema_editor):
    """The columns, where they are missing: a run interrupted after adding them runs again."""
    if schema_editor.connection.vendor == "postgresql":
        for name in COLUMNS:
            schema_editor.execute(f"ALTER TABLE tickets_ticket ADD COLUMN IF NOT EXISTS {name} tsvector NULL")
        return
    ticket, there = apps.get_model("tickets", "Ticket"), present(schema_editor)
    for name in COLUMNS:
        if name not in there:
            schema_editor.add_field(ticket, document_field(name))


def drop_columns(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name in COLUMNS:
            schema_editor.execute(f"ALTER TABLE tickets_ticket DROP COLUMN IF EXISTS {name}")
        return
    ticket, there = apps.get_model("tickets", "Ticket"), present(schema_editor)
    for name in COLUMNS:
        if name in there:
            schema_editor.remove_field(ticket, document_field(name))


def fill(apps, schema_editor):
    """Every ticket's documents, batch by batch (each its own commit: the migration is not atomic)."""
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(min(id), 0), coalesce(max(id), -1) FROM tickets_ticket")
        low, high = cursor.fetchone()
        for start in range(low, high + 1, BATCH):
            cursor.execute(FILL, [start, start + BATCH])


class Migration(migrations.Migration):
    atomic = False  # the fill commits batch by batch; CREATE INDEX CONCURRENTLY runs outside a transaction

    dependencies = [("tickets", "0014_warnings_before_breaches")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="ticket",
                    name=name,
                    field=django.contrib.postgres.search.SearchVectorField(editable=False, null=True),
                )
                for name in COLUMNS
            ],
            database_operations=[migrations.RunPython(add_columns, drop_columns)],
        ),
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=True),
        postgres_indexes(INDEXES),
    ]
