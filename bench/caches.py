"""What each cache of the SLA clocks buys: the pages and a service, with the cache and without it,
on the benchmark dataset (bench/dataset.py; a small one is enough), at the dataset's present.

    .venv/bin/python bench/caches.py                       # in-process, variants in alternation
    .venv/bin/python bench/caches.py --serve PAGE VARIANT N  # serve one page N times (for callgrind)

    # Python's instructions per request, as session 5 counted them (the same within 0.2% run to run):
    PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p \\
        .venv/bin/python bench/caches.py --serve "ticket page" kept 20     # and with N = 0; subtract

The caches: the process's SLA terms kept under the terms revision (tickets.terms_cache with
contracts.terms_revision), and the compiled clocks kept per calendar and updated_at
(contracts.calendars). A variant without one empties it before each request, which is what a
process without it pays. Each figure is the median wall time and the median CPU time of this
process (the database's own work is not in it: steadier on a shared machine), and the queries.
BENCH_CACHE_VARIANTS=kept,neither measures only those; two checkouts measured at the same time
(one run each, in parallel) compare two versions of the code on the same machine's minute.
Prints one table; writes var/bench/caches.json.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ["SECRET_KEY"] = "bench-only-secret-key-not-for-production-3f1c9a7e5b2d4c6a8e0f"
from common import NOW, RESULTS, counted, median, setup, table  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_CACHE_ROUNDS", 8))
RUNS = int(os.environ.get("BENCH_CACHE_RUNS", 10))
# BENCH_CACHE_VARIANTS=kept,neither: only these variants (a quick A/B of two trees of the code).
ONLY = list(filter(None, os.environ.get("BENCH_CACHE_VARIANTS", "").split(",")))


def forget_terms():
    from tickets import terms_cache

    terms_cache.forget()


def forget_clocks():
    from contracts import calendars

    with calendars._lock:
        calendars._cache.clear()


VARIANTS = {
    "kept": (),
    "no terms kept": (forget_terms,),
    "no clocks kept": (forget_clocks,),
    "neither": (forget_terms, forget_clocks),
}


def targets() -> dict:
    """label -> (who, callable making one request or call)."""
    import dataset
    import pages

    from tickets.models import Ticket

    out = {}
    clients = {}
    for label, who, path in pages.pages():
        if who not in clients:
            clients[who] = pages.client_for(who)
        client = clients[who]
        short = {"customer ticket page": "ticket page", "customer ticket list": "ticket list",
                 "staff queue (admin changelist)": "staff queue", "customer dashboard": "dashboard"}.get(label)  # fmt: skip
        if short:
            out[short] = lambda c=client, p=path: c.get(p)
    api = pages.client_for(dataset.customer_email(0))
    out["API tickets"] = lambda: api.get("/api/v1/tickets/")
    # A service: a staff reply to an open ticket derives its columns again (rolled back each time).
    from django.db import transaction

    from portal.models import User
    from tickets.services import ticket_reply

    staff = User.objects.get(email=dataset.STAFF_EMAIL)
    ticket = Ticket.objects.filter(organisation__slug="bench-org-0000", status=Ticket.Status.OPEN).order_by("-pk")[3]

    def reply():
        with transaction.atomic():
            ticket_reply(ticket=ticket, author=staff, body="Looking into it.", internal=True, now=NOW)
            transaction.set_rollback(True)

    out["staff note (service)"] = reply
    return out


def measure() -> dict:
    """Each call's median wall and CPU time (this process's: the database's work is not in it) and
    its queries, at the dataset's present (open tickets have their clocks running then)."""
    import time_machine
    from django.test.utils import override_settings

    found = {}
    variants = ONLY or list(VARIANTS)
    with override_settings(ALLOWED_HOSTS=["*"]), time_machine.travel(NOW, tick=True):
        calls = targets()
        for call in calls.values():  # warm
            for _ in range(3):
                call()
        times = {(name, v): [] for name in calls for v in variants}
        cpu = {(name, v): [] for name in calls for v in variants}
        queries = {}
        for r in range(ROUNDS):
            order = variants if r % 2 == 0 else list(reversed(variants))
            for name, call in calls.items():
                for variant in order:
                    for _ in range(RUNS):
                        for forget in VARIANTS[variant]:
                            forget()
                        started = time.process_time()
                        _, seconds, n = counted(call)
                        cpu[name, variant].append(time.process_time() - started)
                        times[name, variant].append(seconds)
                        queries[name, variant] = n
        for (name, variant), ts in times.items():
            found.setdefault(name, {})[variant] = {
                "ms": median(ts) * 1e3, "cpu_ms": median(cpu[name, variant]) * 1e3, "queries": queries[name, variant]
            }  # fmt: skip
    return found


def serve(page: str, variant: str, n: int) -> None:
    import time_machine
    from django.test.utils import override_settings

    with override_settings(ALLOWED_HOSTS=["*"]), time_machine.travel(NOW, tick=True):
        call = targets()[page]
        for _ in range(3):
            call()
        for _ in range(n):
            for forget in VARIANTS[variant]:
                forget()
            call()


def main():
    import dataset

    dataset.ensure()
    setup()
    if "--serve" in sys.argv:
        i = sys.argv.index("--serve")
        return serve(sys.argv[i + 1], sys.argv[i + 2], int(sys.argv[i + 3]))
    started = time.perf_counter()
    found = measure()
    rows = []
    for name, by_variant in found.items():
        base = next(iter(by_variant.values()))["ms"]
        rows.append([name] + [
            f"{v['ms']:.2f} ms ({v['ms'] - base:+.2f}), CPU {v['cpu_ms']:.2f} ms, {v['queries']} q"
            for v in by_variant.values()
        ])  # fmt: skip
    print(table([f"median of {ROUNDS} x {RUNS}", *(ONLY or VARIANTS)], rows))
    print(f"({time.perf_counter() - started:.0f} s)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "caches.json").write_text(json.dumps(found, indent=2))


if __name__ == "__main__":
    main()
