"""Shared set-up of the large-dataset benchmarks (bench/dataset.py, sweeps.py, pages.py).

    from common import setup; setup()   # before any Django import

Points Django at the scratch database (BENCH_DATABASE_URL, default sla_bench_large; created if
missing) and at Redis db 3 (BENCH_REDIS_URL) as the Celery broker, with DEBUG off. The database is
the benchmark's own: dataset.py drops and rebuilds it when its marker is missing or stale.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/sla_bench_large"
DEFAULT_REDIS = "redis://127.0.0.1:6379/3"
# The dataset's present: open tickets are judged at this moment, and the sweeps run at it.
# A Friday, 12:00 in Nairobi and 10:00 in Stockholm: business hours on both templates.
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
RESULTS = ROOT / "var" / "bench"


def db_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)


def db_name() -> str:
    return db_url().rsplit("/", 1)[1].split("?")[0]


def admin_url() -> str:
    return db_url().rsplit("/", 1)[0] + "/postgres"


_ready = False


def setup() -> None:
    """Environment for Django, the database created if missing, django.setup(), DEBUG off."""
    global _ready
    if _ready:
        return
    _ready = True
    sys.path.insert(0, str(ROOT))
    name = db_name()
    if not name.startswith("sla_bench_"):
        # sla_bench itself is close_month.py's, which empties its tables: never share it.
        sys.exit(f"Refusing to benchmark in {name!r}: use a scratch database named sla_bench_*.")
    os.environ["DATABASE_URL"] = db_url()
    os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    create_database()

    import django

    django.setup()
    from django.conf import settings

    settings.DEBUG = False  # DEBUG keeps every query's SQL: not what production does
    settings.CELERY_TASK_ALWAYS_EAGER = False


def create_database(*, drop: bool = False) -> None:
    import psycopg

    name = db_name()
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        if drop:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


class QueryCount:
    """Counts queries without keeping their SQL (CaptureQueriesContext would hold every insert)."""

    def __init__(self):
        self.n = 0

    def __call__(self, execute, sql, params, many, context):
        self.n += 1
        return execute(sql, params, many, context)


def counted(fn):
    """Run fn(); return (its result, seconds, queries)."""
    from django.db import connection

    q = QueryCount()
    with connection.execute_wrapper(q):
        t = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t
    return out, dt, q.n


def median(values):
    return statistics.median(values)


def fmt_ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:,.1f} ms" if ms < 100 else f"{ms:,.0f} ms"


def table(headers: list[str], rows: list[list]) -> str:
    """A Markdown table (RESULTS.md takes it as it is)."""
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def purge_broker() -> None:
    """The sweeps hand outbox work to Celery after each commit; no worker runs in the benchmark, so
    the queued messages are dropped at the end (Redis db 3 is the benchmark's own)."""
    from portal.celery import app

    try:
        app.control.purge()
    except Exception as exc:  # noqa: BLE001 - a broker that is down leaves nothing to purge
        print(f"(could not purge the broker: {exc})")
