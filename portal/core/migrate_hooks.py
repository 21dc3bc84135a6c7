"""What a post_migrate receiver that writes with the code's models checks first: that the migration
applied (a plan that unapplied migrations, `migrate contracts zero` or back to an older one, leaves
older tables or none) and that every model's table has every column of the code's model (a
migration to an older target). Else it waits for the next migration to the head."""

from __future__ import annotations

from django.db import connections


def models_migrated(plan, models, using: str) -> bool:
    """Whether `plan` (post_migrate's) only applied migrations and `models` have their tables and
    columns in the `using` database."""
    if any(backwards for _migration, backwards in plan or ()):
        return False
    introspection = connections[using].introspection
    if not {m._meta.db_table for m in models} <= set(introspection.table_names()):
        return False
    with connections[using].cursor() as cursor:
        for model in models:
            present = {c.name for c in introspection.get_table_description(cursor, model._meta.db_table)}
            if not {f.column for f in model._meta.concrete_fields} <= present:
                return False
    return True
