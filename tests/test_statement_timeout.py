"""The web server's statements end after DB_STATEMENT_TIMEOUT (30 s by default in portal.wsgi), so
a runaway page query ends with its request; a worker's (or any process that loads the settings
without the web entry point) have no limit. Each case is a fresh process on the test database."""

from __future__ import annotations

import os
import subprocess

import pytest
from django.conf import settings

from .conftest import ROOT
from .embedded_default import PY

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

REPORT = """
from django.db import connection, utils
with connection.cursor() as cursor:
    cursor.execute("SHOW statement_timeout")
    print(cursor.fetchone()[0])
    try:
        cursor.execute("SELECT pg_sleep(1.5)")
        print("slept")
    except utils.OperationalError as exc:
        print(type(exc.__cause__).__name__)
"""


def in_process(entry: str, **env: str) -> list[str]:
    db = settings.DATABASES["default"]
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    base = {k: v for k, v in os.environ.items() if k != "DB_STATEMENT_TIMEOUT"}
    done = subprocess.run(
        [PY, "-c", entry + REPORT], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**base, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "portal.settings", **env},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


WEB = "import portal.wsgi\n"  # as gunicorn loads it
WORKER = "import django; django.setup()\n"  # as celery and manage.py load the settings


def test_the_web_server_ends_a_runaway_statement():
    assert in_process(WEB)[0] == "30s"
    assert in_process(WEB, DB_STATEMENT_TIMEOUT="200ms") == ["200ms", "QueryCanceled"]


def test_workers_and_commands_have_no_limit_unless_set():
    assert in_process(WORKER) == ["0", "slept"]
    assert in_process(WORKER, DB_STATEMENT_TIMEOUT="200ms") == ["200ms", "QueryCanceled"]
