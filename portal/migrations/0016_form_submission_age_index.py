"""The form submissions' `form_submission_age` index (forgetting old keys, portal.core.once), for the
databases that applied 0014 before the index was added to it (between 5f63d13 and cb9be78): created
where it is missing, on PostgreSQL and SQLite alike, with 0014's definition. The state already has it
(0014), so only the database changes; a database that has it is left as it is."""

from django.db import migrations

CREATE = 'CREATE INDEX IF NOT EXISTS "form_submission_age" ON "portal_formsubmission" ("created_at")'


class Migration(migrations.Migration):
    dependencies = [("portal", "0015_user_email_unique_ci")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(CREATE, migrations.RunSQL.noop)],
            state_operations=[],
        )
    ]
