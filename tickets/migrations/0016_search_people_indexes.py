"""The organisations and filers a search's words name (tickets.search._people) found by indexes, not
by computing every organisation's name words and every customer's upper-cased email for each search.
Each index's expression is the query's own: SearchVector("name", config="english") and
email__istartswith on customers. PostgreSQL only; SQLite reads the rows themselves. An index whose
build was interrupted (INVALID) is dropped and built again (portal.core.indexes)."""

from django.db import migrations

from portal.core.indexes import postgres_indexes

INDEXES = {
    "organisation_name_search": "CREATE INDEX CONCURRENTLY IF NOT EXISTS organisation_name_search ON "
    "contracts_organisation USING gin (to_tsvector('english'::regconfig, COALESCE(name, '')::text))",
    "user_email_prefix": "CREATE INDEX CONCURRENTLY IF NOT EXISTS user_email_prefix ON portal_user "
    "(UPPER(email::text) text_pattern_ops) WHERE NOT is_staff",
}


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY runs outside a transaction

    dependencies = [
        ("tickets", "0015_search_documents"),
        ("contracts", "0015_template_names"),
        ("portal", "0011_vendor_webhooks"),
    ]

    operations = [postgres_indexes(INDEXES)]
