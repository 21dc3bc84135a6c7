"""SQLite shared by several processes, as web, worker and beat share var/db.sqlite3 under `make run`
(portal/settings.py: IMMEDIATE transactions, WAL)."""

from __future__ import annotations

import json
import subprocess

from . import embedded_default
from .conftest import ROOT
from .embedded_default import PY, embedded_env

embedded, migrated_sqlite = embedded_default.embedded, embedded_default.migrated_sqlite  # the fixtures


def test_concurrent_writers_on_one_sqlite_file_never_see_database_is_locked(embedded):
    """Three processes submit vulnerability reports (the web's public form) while a fourth runs
    the worker's sweeps, all at the same moment on one SQLite file, every transaction reading
    before it writes. With SQLite's default deferred transactions most of them failed at once with
    "database is locked" (the busy timeout does not apply to a lock upgrade); with IMMEDIATE
    transactions and WAL (portal/settings.py) every one waits its turn."""
    env = embedded_env(embedded, CELERY_TASK_ALWAYS_EAGER="true")  # the receipts are sent inline: more writes
    roles = ["web", "web", "web", "sweep"]
    procs = [
        subprocess.Popen(
            [PY, "-m", "tests.sqlite_writers", role, "4"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for role in roles
    ]
    for proc in procs:  # each has imported Django and waits
        assert proc.stdout.readline().strip() == "ready", proc.communicate()[1][-3000:]
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for role, proc in zip(roles, procs, strict=True):
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"{role}: {err[-3000:]}"
        results.append((role, json.loads(out.strip().splitlines()[-1])))
    errors = [f"{role}: {e}" for role, r in results for e in r["errors"]]
    assert errors == [], f"{len(errors)} of {4 * len(roles)} transactions failed:\n" + "\n".join(errors[:10])
    assert [r["ok"] for _, r in results] == [4] * len(roles)
    assert {r["journal_mode"] for _, r in results} == {"wal"}
    assert len(list((embedded / "mail").glob("*.eml"))) == 3 * 4 * 2  # a receipt and a staff notice per report


def test_sqlite_connections_begin_immediate_transactions_in_wal_mode(embedded):
    code = (
        "from django.db import connection, transaction\n"
        "with transaction.atomic():\n"
        "    pass\n"
        "c = connection.cursor()\n"
        "print(connection.transaction_mode, c.execute('PRAGMA journal_mode').fetchone()[0],"
        " c.execute('PRAGMA synchronous').fetchone()[0], c.execute('PRAGMA busy_timeout').fetchone()[0])\n"
    )
    done = subprocess.run([PY, "manage.py", "shell", "-c", code], cwd=ROOT, env=embedded_env(embedded),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    # synchronous=1 is NORMAL; the busy timeout (20 s) is what IMMEDIATE waits for the write lock
    assert done.stdout.splitlines()[-1].split() == ["IMMEDIATE", "wal", "1", "20000"]
