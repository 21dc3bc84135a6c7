"""The outbox's cost per message, commit against commit, in alternation (bench/RESULTS.md, session 8).

    .venv/bin/python bench/outbox_alternation.py REV [REV ...] [--rows 500] [--rounds 3]

Each REV's tree (git archive, in a temporary directory) sends the same rows again, in one process,
through `outbox_send_due(batch=100)` to an aiosmtpd sink: the first `--rows` outbox rows of the
database bench/incident_fanout.py leaves (sla_bench_fanout; every other row is marked sent first),
their renderings cleared. The trees take turns, `--rounds` times, so that a busy machine weighs on
each alike. Printed per tree: the sending process's CPU a message (time.process_time), its wall
time a message and its statements a message, medians of the rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def send_again() -> None:
    """In a tree's own process (cwd: the tree): send the rows named by OUTBOX_ROWS; print JSON.
    The tree's code only: its bench/common.py puts the tree first on the path."""
    sys.path[:] = [os.path.join(os.getcwd(), "bench")] + [p for p in sys.path if Path(p or ".").resolve() != HERE]
    from common import setup

    setup()
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from portal.core import delivery
    from portal.models import OutboxMessage

    ids = json.loads(os.environ["OUTBOX_ROWS"])
    OutboxMessage.objects.filter(pk__in=ids).update(
        status="pending", subject="", body_text="", body_html="", sent_at=None, attempts=0, claim_token=None,
        lease_until=None, next_attempt_at=timezone.now() - timedelta(seconds=1),
    )  # fmt: skip
    statements = []
    with connection.execute_wrapper(lambda execute, *args: statements.append(1) or execute(*args)):
        cpu, wall = time.process_time(), time.perf_counter()
        sent = delivery.outbox_send_due(batch=100, max_batches=len(ids) // 100 + 1)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(json.dumps({"sent": sent, "cpu_ms": cpu / sent * 1e3, "wall_ms": wall / sent * 1e3,
                      "statements": len(statements) / sent,
                      "tree": str(Path(delivery.__file__).resolve().parents[2])}))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("revs", nargs="+")
    ap.add_argument("--rows", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    import psycopg
    from common import ROOT
    from incident_fanout import DEFAULT_DB, DEFAULT_REDIS, Sink

    db = os.environ.get("BENCH_FANOUT_DATABASE_URL", DEFAULT_DB)
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("UPDATE portal_outboxmessage SET status = 'sent' WHERE status <> 'sent'")
        ids = [r[0] for r in conn.execute("SELECT id FROM portal_outboxmessage ORDER BY id LIMIT %s", [args.rows])]
    sink = Sink()
    env = dict(os.environ, BENCH_DATABASE_URL=db, OUTBOX_ROWS=json.dumps(ids), LOG_LEVEL="WARNING",
               BENCH_REDIS_URL=os.environ.get("BENCH_FANOUT_REDIS_URL", DEFAULT_REDIS),
               EMAIL_URL=f"smtp://127.0.0.1:{sink.port}")  # fmt: skip
    runs: dict[str, list[dict]] = {rev: [] for rev in args.revs}
    with tempfile.TemporaryDirectory() as tmp:
        trees = {}
        for rev in args.revs:
            trees[rev] = Path(tmp) / rev.replace("/", "_")
            trees[rev].mkdir()
            archive = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(trees[rev])], input=archive, check=True)
        try:
            for _ in range(args.rounds):
                for rev in args.revs:
                    before = sink.received()
                    out = subprocess.run([sys.executable, __file__, "--send-again"], cwd=trees[rev], env=env,
                                         capture_output=True, text=True, check=True)  # fmt: skip
                    run = json.loads(out.stdout.strip().splitlines()[-1])
                    assert run["tree"] == str(trees[rev].resolve()), run
                    while sink.received() < before + run["sent"]:
                        time.sleep(0.01)
                    run["load"] = os.getloadavg()[0]
                    runs[rev].append(run)
                    print(rev, run, flush=True)
        finally:
            sink.stop()
    for rev, done in runs.items():
        cpu, wall = (statistics.median(r[k] for r in done) for k in ("cpu_ms", "wall_ms"))
        print(f"{rev}: {cpu:.2f} ms CPU, {wall:.1f} ms wall, {done[0]['statements']:.2f} statements a message "
              f"(medians of {len(done)})")  # fmt: skip


if __name__ == "__main__":
    if sys.argv[1:] == ["--send-again"]:
        send_again()
    else:
        main()
