"""Every model change has its migration: a deploy that migrates gets the schema the code expects."""

from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_no_model_change_lacks_a_migration():
    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit as exit_:  # --check exits non-zero when a migration is missing
        raise AssertionError(f"missing migrations:\n{out.getvalue()}") from exit_
