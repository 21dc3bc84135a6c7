"""One writer of tests/test_embedded_sqlite.py's concurrency test, run as its own process
(`python -m tests.sqlite_writers <role> <count>`) with DATABASE_URL naming a file
database: what the web (a vulnerability report) or a worker (the sweeps) does to the shared file.

Every call is a transaction that reads before it writes, the pattern that fails with "database is
locked" under SQLite's default deferred transactions. Prints one JSON line last: {"ok": n, "errors": [...], "journal_mode": ...}.
"""

import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")


def main(role: str, count: int) -> dict:
    import django

    django.setup()
    from django.db import connection

    from portal.core.tasks import outbox_sweep
    from tickets.security import security_report_submit
    from tickets.tasks import check_sla_deadlines, escalate_due_tickets

    sweeps = [outbox_sweep, escalate_due_tickets, check_sla_deadlines]
    ok, errors = 0, []
    print("ready", flush=True)
    sys.stdin.readline()  # every writer starts when the test says go, at the same moment
    for i in range(count):
        try:
            if role == "web":
                security_report_submit(
                    email=f"r{os.getpid()}-{i}@example.com", name="", summary=f"report {i}", details="details"
                )
            else:
                for sweep in sweeps:
                    sweep.run()  # the task's body, in this process, as the worker runs it
            ok += 1
        except Exception as exc:  # noqa: BLE001 - every failure is reported, "database is locked" first
            errors.append(f"{type(exc).__name__}: {exc}")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        journal = cursor.fetchone()[0]
    return {"ok": ok, "errors": errors, "journal_mode": journal}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]))))
