"""The embedded default built in a temp directory, for tests that run what `make run` runs: a file
SQLite database of their own (migrated once per run and copied), their own mail directory, and
their own queue name on the checkout's filesystem broker. Whatever DATABASE_URL, REDIS_URL or
EMAIL_URL the test run has (CI's PostgreSQL and Redis), these subprocesses run the embedded default.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

PY = sys.executable
# Variables that would take a subprocess out of the embedded default (or into production).
NOT_EMBEDDED = ("DATABASE_URL", "REDIS_URL", "EMAIL_URL", "DJANGO_ENV", "PORTAL_BASE_URL", "MESSAGE_ID_DOMAIN")


def embedded_env(tmp: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in NOT_EMBEDDED and not k.startswith("CELERY_")}
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
        EMAIL_FILE_PATH=str(tmp / "mail"),
        MEDIA_ROOT=str(tmp / "media"),
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


_template: list[Path] = []  # one per test run, whichever test module asks first


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory) -> Path:
    """A migrated SQLite file, made once per test run; each test copies it."""
    if not _template:
        tmp = tmp_path_factory.mktemp("sqlite-template")
        done = subprocess.run(
            [PY, "manage.py", "migrate", "--noinput", "--skip-checks"], cwd=ROOT, env=embedded_env(tmp),
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        _template.append(tmp / "db.sqlite3")
    return _template[0]


@pytest.fixture
def embedded(tmp_path, migrated_sqlite) -> Path:
    """A temp directory holding a migrated db.sqlite3 (and, once used, mail/ and media/)."""
    shutil.copy(migrated_sqlite, tmp_path / "db.sqlite3")
    return tmp_path


def forget_queue(queue: str) -> None:
    """The filesystem broker's folders are the checkout's var/broker/ (portal/settings.py): drop what
    a test's own queue left there (messages never consumed, its exchange), so `make run` never sees it."""
    broker = ROOT / "var" / "broker"
    for path in (broker / "queue").glob(f"*.{queue}.msg"):
        path.unlink(missing_ok=True)
    (broker / "control" / f"{queue}.exchange").unlink(missing_ok=True)
