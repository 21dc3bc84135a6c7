"""Benchmark the month-end run at 10,000 contracts on PostgreSQL, beside a naive per-contract
baseline measured in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sla_bench .venv/bin/python bench/close_month.py
    DATABASE_URL=... BENCH_SERVICES=50 .venv/bin/python bench/close_month.py    # the heavy case

The database named by DATABASE_URL (its name must contain "sla_bench", e.g. sla_bench_h2) is
created if missing and its portal tables are emptied: never point it at real data. Prints time,
queries and peak RSS of close_month for every contract, and the naive way (one contract at a time,
with its own queries) on a sample, per contract.

Options (environment): BENCH_CONTRACTS (10,000), BENCH_OUTAGES in the month (12,500),
BENCH_SERVICES (1,000; outages per contract-month = OUTAGES / SERVICES, so 50 is the heavy case
of 250), BENCH_RUNS (1: the median of that many runs), BENCH_SAMPLE (300: the naive loop's
contracts), BENCH_PROFILE=path: run close_month under cProfile, write its stats there and print the
top of the profile (the timing is then the profiler's, not the figure to report).
"""

import cProfile
import os
import pstats
import random
import re
import resource
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
url = os.environ.get("DATABASE_URL", "")
DB_NAME = url.rsplit("/", 1)[-1].split("?", 1)[0]
if not url.startswith("postgres") or "sla_bench" not in DB_NAME or not re.fullmatch(r"\w+", DB_NAME):
    sys.exit("Set DATABASE_URL to a scratch PostgreSQL database whose name contains sla_bench (it is emptied).")

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone():
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB_NAME)))

import django  # noqa: E402

django.setup()
from django.conf import settings  # noqa: E402

settings.DEBUG = False  # DEBUG keeps every query's SQL in memory: not what production does
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402


class QueryCount:
    """Counts queries without keeping their SQL (CaptureQueriesContext would hold every insert)."""

    def __init__(self):
        self.n = 0

    def __call__(self, execute, sql, params, many, context):
        self.n += 1
        return execute(sql, params, many, context)


from contracts.models import SLA, Contract, Organisation, Outage, Service  # noqa: E402
from contracts.selectors import Versions  # noqa: E402
from credits.closing import _outages, close_month, contract_month  # noqa: E402
from credits.models import MonthlyUptime  # noqa: E402

CONTRACTS = int(os.environ.get("BENCH_CONTRACTS", 10_000))
OUTAGES = int(os.environ.get("BENCH_OUTAGES", 12_500))  # ~ a month's share of 300,000 over two years
SERVICES = int(os.environ.get("BENCH_SERVICES", 1000))  # outages per contract-month = OUTAGES / SERVICES
RUNS = int(os.environ.get("BENCH_RUNS", 1))
PROFILE = os.environ.get("BENCH_PROFILE", "")
SAMPLE = int(os.environ.get("BENCH_SAMPLE", 300))
MONTH = date(2026, 10, 1)
NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def build():
    call_command("migrate", verbosity=0)
    with connection.cursor() as c:
        c.execute(
            "TRUNCATE credits_monthlyuptime, credits_claim, contracts_outage_services, contracts_outage, "
            "contracts_contract_services, contracts_contract_contacts, contracts_contract CASCADE"
        )
    rng = random.Random(7)
    services = [
        Service.objects.get_or_create(slug=f"bench-{i}", defaults={"name": f"Bench service {i}"})[0]
        for i in range(SERVICES)
    ]
    orgs = [
        Organisation.objects.get_or_create(slug=f"bench-org-{i}", defaults={"name": f"Bench org {i}"})[0]
        for i in range(1000)
    ]
    sla = SLA.objects.get(template_key="kaluari-cloud-backup")
    contracts = Contract.objects.bulk_create(
        Contract(organisation=orgs[i % len(orgs)], reference=f"B-{i:06d}", name=f"Bench contract {i}", sla=sla,
                 starts_on=date(2025, 1, 1), monthly_invoice_amount=150000, currency="KES")
        for i in range(CONTRACTS)
    )  # fmt: skip
    Through = Contract.services.through
    Through.objects.bulk_create(
        Through(contract_id=c.pk, service_id=services[i % SERVICES].pk) for i, c in enumerate(contracts)
    )
    start = datetime(2026, 9, 28, tzinfo=UTC)
    outages = Outage.objects.bulk_create(
        Outage(title=f"Outage {i}", starts_at=(s := start + timedelta(minutes=rng.randrange(0, 36 * 1440))),
               ends_at=s + timedelta(minutes=rng.randrange(1, 240)),
               cause=rng.choice(["unplanned"] * 4 + ["ddos", "third_party"]))
        for i in range(OUTAGES)
    )  # fmt: skip
    OThrough = Outage.services.through
    OThrough.objects.bulk_create(OThrough(outage_id=o.pk, service_id=rng.choice(services).pk) for o in outages)
    with connection.cursor() as c:
        c.execute("ANALYZE")


def profiled(func, **kwargs):
    """func(**kwargs) under cProfile: the stats go to PROFILE and the top of them to stdout."""
    profile = cProfile.Profile()
    result = profile.runcall(func, **kwargs)
    profile.dump_stats(PROFILE)
    pstats.Stats(profile).sort_stats("tottime").print_stats(15)
    pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
    return result


def naive(sample):
    """One contract at a time: its own version lookup, outages and maintenance queries."""
    for contract in sample:
        contract = Contract.objects.prefetch_related("services").get(pk=contract.pk)
        versions = Versions([contract.sla_id])
        outages = [o for o in _outages(datetime(2026, 9, 29, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC), NOW)
                   if o.services & {s.pk for s in contract.services.all()}]  # fmt: skip
        contract_month(contract, MONTH, outages=outages, maintenance={}, versions=versions, now=NOW)


def main():
    t = time.perf_counter()
    build()
    print(
        f"dataset: {CONTRACTS:,} contracts on {SERVICES:,} services, {OUTAGES:,} outages in the month, built in {time.perf_counter() - t:.1f} s"
    )

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times, queries = [], QueryCount()
    for run in range(RUNS):
        if run:  # the next run closes every contract again
            with connection.cursor() as c:
                c.execute("TRUNCATE credits_monthlyuptime CASCADE")
        queries.n = 0
        with connection.execute_wrapper(queries):
            t = time.perf_counter()
            closed = profiled(close_month, month=MONTH, now=NOW) if PROFILE else close_month(month=MONTH, now=NOW)
            times.append(time.perf_counter() - t)
    ours = statistics.median(times)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert closed == CONTRACTS == MonthlyUptime.objects.filter(month=MONTH).count(), closed
    with connection.cursor() as c:
        c.execute("SELECT pg_total_relation_size('credits_monthlyuptime')")
        size = c.fetchone()[0]
    print(f"close_month: {ours:.2f} s for {closed:,} contracts ({ours / closed * 1e3:.3f} ms each; median of "
          f"{RUNS}: {', '.join(f'{x:.1f}' for x in times)} s), {queries.n} queries, peak RSS {rss / 1024:.0f} MB "
          f"(before the run {rss0 / 1024:.0f} MB); the monthly uptime table: {size / 2**20:.0f} MB")  # fmt: skip
    t = time.perf_counter()
    again = close_month(month=MONTH, now=NOW)
    print(f"close_month again: {time.perf_counter() - t:.2f} s, {again} closed (nothing changes)")

    sample = list(Contract.objects.order_by("?")[:SAMPLE])
    queries = QueryCount()
    with connection.execute_wrapper(queries):
        t = time.perf_counter()
        naive(sample)
        slow = time.perf_counter() - t
    per = slow / SAMPLE
    print(f"naive per-contract loop: {per * 1e3:.1f} ms and {queries.n / SAMPLE:.1f} queries per contract "
          f"(on {SAMPLE}; {per * CONTRACTS:.0f} s projected for {CONTRACTS:,})")  # fmt: skip
    print(f"ratio: close_month is {per / (ours / closed):.0f}x faster per contract")


if __name__ == "__main__":
    main()
