"""Indexes that migrations build with CREATE INDEX CONCURRENTLY (writes go on while they build), made
so that a migration interrupted mid-build can be run again.

An interrupted CREATE INDEX CONCURRENTLY (a killed deploy, a lost connection, a deadlock) leaves the
index behind, marked INVALID in pg_index: PostgreSQL keeps it up to date on writes but never reads
it, and `IF NOT EXISTS` skips it, so the migration that runs again would record itself done over an
index that does nothing. `index_create` drops such an index first (concurrently), then creates it.

Migrations import this module: it reads no model and must keep its signatures."""

from __future__ import annotations

from django.db import migrations


def index_invalid(connection, name: str) -> bool:
    """Whether the index `name` (in the search path) exists and is INVALID. PostgreSQL only."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT NOT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [name])
        row = cursor.fetchone()
    return bool(row and row[0])


def index_create(schema_editor, name: str, sql: str) -> None:
    """Run `sql` (CREATE INDEX CONCURRENTLY IF NOT EXISTS <name> ...) on PostgreSQL, after dropping
    an INVALID index of that name left by an interrupted build. Outside a transaction (the
    migration is not atomic)."""
    if index_invalid(schema_editor.connection, name):
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {schema_editor.quote_name(name)}")
    schema_editor.execute(sql)


def postgres_indexes(indexes: dict[str, str]):
    """A migration's operation creating these indexes (name -> CREATE INDEX CONCURRENTLY IF NOT
    EXISTS ...) on PostgreSQL with index_create, and dropping them when reversed; nothing on SQLite.
    The migration is not atomic: CONCURRENTLY runs outside a transaction."""

    def create(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for name, sql in indexes.items():
                index_create(schema_editor, name, sql)

    def drop(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for name in indexes:
                schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {schema_editor.quote_name(name)}")

    return migrations.RunPython(create, drop)


def model_indexes(app_label: str, model_name: str, indexes: list):
    """A migration's operation adding these models.Index to a model: in the state as AddIndex, in
    the database built CONCURRENTLY on PostgreSQL with index_create (writes go on while they build;
    an interrupted build is built again), as Django builds them elsewhere; dropped when reversed.
    The migration is not atomic."""

    def create(apps, schema_editor):
        model = apps.get_model(app_label, model_name)
        for index in indexes:
            if schema_editor.connection.vendor != "postgresql":
                schema_editor.add_index(model, index)
                continue
            sql = str(index.create_sql(model, schema_editor, concurrently=True))
            sql = sql.replace("CREATE INDEX CONCURRENTLY", "CREATE INDEX CONCURRENTLY IF NOT EXISTS", 1)
            index_create(schema_editor, index.name, sql)

    def drop(apps, schema_editor):
        model = apps.get_model(app_label, model_name)
        extra = {"concurrently": True} if schema_editor.connection.vendor == "postgresql" else {}
        for index in indexes:
            schema_editor.remove_index(model, index, **extra)

    return migrations.SeparateDatabaseAndState(
        state_operations=[migrations.AddIndex(model_name=model_name, index=index) for index in indexes],
        database_operations=[migrations.RunPython(create, drop)],
    )


def invalid_indexes(connection) -> list[str]:
    """The INVALID indexes of the current schema (PostgreSQL): builds that were interrupted."""
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE NOT i.indisvalid AND n.nspname = current_schema() ORDER BY c.relname"
        )
        return [name for (name,) in cursor.fetchall()]
