"""An incident's fan-out (issue 20): one update to 10,000 contracts (30,000 contacts) and the status
page's subscribers, written to the outbox and delivered to a local SMTP sink by 2 worker processes.

    .venv/bin/python bench/incident_fanout.py [--contracts 10000] [--contacts 3] [--subscribers 1000]

In its own database (BENCH_FANOUT_DATABASE_URL, default sla_bench_fanout: dropped and rebuilt every
run) and Redis db 7 (BENCH_FANOUT_REDIS_URL). Four measures, in one run on the same sink (aiosmtpd in
a process of its own, counting messages):

1. `update_publish(update=..., now=...)`: the outbox rows written (goal: under 10 s), its queries.
2. Delivery: `celery -A portal worker --concurrency=2` on the bench's queue, the real path (the
   commit hands `outbox_sweep` to the worker; each sweep drains up to 50 batches of 100). Beat's
   minute sweep is stood in for by the bench: whenever fewer than 2 sweeps are queued or running
   while rows are pending, it sends one (beat would leave a process idle until its next minute).
   Goal: the whole incident, publish to last message received, in under 2 minutes.
3. The sink's limit: raw smtplib sending the same messages (as the worker stored them) over one
   connection. Reported: the outbox's rate against it (aim: half).
4. Where a message's time goes: 1,000 of the rows sent again in this process through the same
   `outbox_send_due` under cProfile, with the queries counted and timed.

Writes var/bench/incident_fanout.json and prints a Markdown table for bench/RESULTS.md.

    .venv/bin/python bench/incident_fanout.py --publish-only 3 [--reuse] [--cprofile FILE]

measures the publish alone, 3 times, each in a transaction rolled back (no worker, no delivery):
`--reuse` keeps the database a previous run seeded, so that two trees (before and after a change)
can be timed back to back on the same rows; `--cprofile` writes one more publish's profile.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import multiprocessing as mp
import os
import pstats
import signal
import smtplib
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import RESULTS, ROOT, create_database, table  # noqa: E402

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/sla_bench_fanout"
DEFAULT_REDIS = "redis://127.0.0.1:6379/7"
QUEUE = "bench-fanout"


# --- The sink: aiosmtpd in its own process, counting --------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sink(port: int, count, ready) -> None:
    from aiosmtpd.controller import Controller

    class Counter:
        async def handle_DATA(self, server, session, envelope):
            with count.get_lock():
                count.value += 1
            return "250 OK"

    controller = Controller(Counter(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    signal.sigwait({signal.SIGTERM})
    controller.stop()


class Sink:
    def __init__(self):
        self.port = _free_port()
        self.count = mp.Value("l", 0)
        ready = mp.Event()
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # the child waits for it
        self.proc = mp.get_context("fork").Process(target=_sink, args=(self.port, self.count, ready), daemon=True)
        self.proc.start()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        ready.wait(30)

    def received(self) -> int:
        return self.count.value

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.join(10)


# --- Set-up -----------------------------------------------------------------------------------------
def setup(email_url: str, *, drop: bool = True) -> None:
    os.environ.setdefault("BENCH_DATABASE_URL", os.environ.get("BENCH_FANOUT_DATABASE_URL", DEFAULT_DB))
    os.environ.setdefault("BENCH_REDIS_URL", os.environ.get("BENCH_FANOUT_REDIS_URL", DEFAULT_REDIS))
    os.environ["CELERY_QUEUE"] = QUEUE
    os.environ["EMAIL_URL"] = email_url
    create_database(drop=drop)
    from common import setup as django_setup

    django_setup()


def seed(contracts: int, contacts: int, subscribers: int) -> dict:
    from django.core.management import call_command
    from django.utils import timezone

    from contracts.models import Outage, Service, StatusSubscriber
    from portal.models import User
    from tests.drills.scenario import customers

    t = time.perf_counter()
    call_command("migrate", verbosity=0)
    migrated = time.perf_counter() - t
    got = customers(contracts=contracts, contacts=contacts, service="bench-fanout")
    svc = Service.objects.get(pk=got["service"])
    now = timezone.now()
    # Status page subscribers to every service; a tenth of them are also contacts (one copy each).
    emails = [f"sub{n}@subscriber.example" for n in range(subscribers - subscribers // 10)]
    emails += got["recipients"][: subscribers // 10]
    StatusSubscriber.objects.bulk_create(
        [StatusSubscriber(email=e, address_key=e.lower(), created_at=now, confirmed_at=now) for e in emails]
    )
    staff = User.objects.create(email="lead@vendor.example", name="Lead", is_staff=True, password="!")
    outage = Outage.objects.create(title="Backup API errors", starts_at=now - timedelta(minutes=20))
    outage.services.set([svc])
    from django.db import connection

    with connection.cursor() as c:
        c.execute("ANALYZE")
    print(f"seeded in {time.perf_counter() - t:.0f} s (migrate {migrated:.0f} s)", flush=True)
    return {"outage": outage, "staff": staff, "contacts": len(got["recipients"])}


# --- The workers --------------------------------------------------------------------------------------
def start_worker(log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_ENV")}
    env.update(PYTHONUNBUFFERED="1", LOG_LEVEL="WARNING")
    args = [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool=prefork", "--concurrency=2",
            "-Q", QUEUE, "-n", f"fanout-{os.getpid()}@bench", "--without-gossip", "--without-mingle",
            "--without-heartbeat", "--loglevel=INFO"]  # fmt: skip
    out = open(log, "wb")  # noqa: SIM115 - the worker's log, closed with the process
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 90
    while b" ready." not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the worker did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return proc


def stop_worker(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    except ProcessLookupError:
        pass


def queued() -> int:
    import redis

    r = redis.Redis.from_url(os.environ["REDIS_URL"])
    return r.llen(QUEUE) + r.hlen("unacked")


# --- The measures -----------------------------------------------------------------------------------
def publish(seeded: dict) -> dict:
    from common import counted
    from django.utils import timezone

    from contracts.incidents.publishing import update_publish
    from contracts.incidents.services import incident_open
    from contracts.models import Incident

    now = timezone.now()
    incident = incident_open(outage=seeded["outage"], title="Backups failing", status="investigating",
                             body="Backups to the Nairobi region fail; we are looking into it.",
                             actor=seeded["staff"], publish=False, now=now)  # fmt: skip
    Incident.objects.filter(pk=incident.pk).update(published_at=now)  # published; its update not yet
    update = incident.updates.get(number=1)
    written, seconds, queries = counted(lambda: update_publish(update=update, now=now))
    return {"rows": written, "seconds": seconds, "queries": queries, "incident": incident.pk}


class _RolledBack(Exception):
    pass


def publish_only(seeded: dict, repeat: int, profile_to: str | None) -> None:
    """The publish `repeat` times (and once more under cProfile), each rolled back, each of an
    outage of its own on the seeded one's services (a full run leaves that one an incident)."""
    from django.db import transaction

    from contracts.models import Outage

    def once(prof=None) -> dict:
        try:
            with transaction.atomic():
                seeded_outage = seeded["outage"]
                outage = Outage.objects.create(title=seeded_outage.title, starts_at=seeded_outage.starts_at)
                outage.services.set(seeded_outage.services.all())
                if prof:
                    prof.enable()
                out = publish({**seeded, "outage": outage})
                if prof:
                    prof.disable()
                raise _RolledBack(out)
        except _RolledBack as done:
            return done.args[0]

    for n in range(repeat):
        cpu = time.process_time()
        w = once()
        cpu = time.process_time() - cpu
        print(f"publish {n + 1}: {w['rows']:,} rows in {w['seconds']:.2f} s ({cpu:.2f} s of this process's CPU), "
              f"{w['queries']} queries", flush=True)  # fmt: skip
    if profile_to:
        prof = cProfile.Profile()
        w = once(prof)
        prof.dump_stats(profile_to)
        print(f"profiled: {w['rows']:,} rows in {w['seconds']:.2f} s (under cProfile) -> {profile_to}", flush=True)
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"Load: {load}")


def reused() -> dict | None:
    """What seed() returned, from a database a previous run seeded (None when there is none)."""
    from django.db.utils import ProgrammingError

    from contracts.models import Outage
    from portal.models import User

    try:
        outage = Outage.objects.filter(title="Backup API errors").first()
    except ProgrammingError:
        return None
    if outage is None:
        return None
    contacts = User.objects.filter(email__endswith="@drill.example").count()
    return {"outage": outage, "staff": User.objects.get(email="lead@vendor.example"), "contacts": contacts}


def deliver(sink: Sink, rows: int, started: float, timeout: float) -> dict:
    from portal.core.tasks import outbox_sweep
    from portal.models import OutboxMessage

    sweeps, last_check = 0, 0.0
    while sink.received() < rows:
        if time.perf_counter() - started > timeout:
            break
        now = time.perf_counter()
        if now - last_check > 0.5:
            last_check = now
            pending = OutboxMessage.objects.filter(status=OutboxMessage.Status.PENDING).exists()
            if pending and queued() < 2:  # beat's sweep, sent when a process would idle
                outbox_sweep.delay()
                sweeps += 1
        time.sleep(0.05)
    done = time.perf_counter()
    return {"received": sink.received(), "seconds": done - started, "extra_sweeps": sweeps}


def profile_one_process(sink: Sink, count: int) -> dict:
    """Send `count` of the sent rows again, in this process, through the worker's function."""
    from django.db import connection
    from django.utils import timezone

    from portal.core import delivery
    from portal.models import OutboxMessage

    ids = list(OutboxMessage.objects.filter(status="sent").order_by("pk").values_list("pk", flat=True)[:count])
    OutboxMessage.objects.filter(pk__in=ids).update(
        status="pending", subject="", body_text="", body_html="", sent_at=None,
        next_attempt_at=timezone.now() - timedelta(seconds=1), attempts=0,
    )  # fmt: skip
    db = {"n": 0, "s": 0.0}

    def timed(execute, sql, params, many, context):
        t = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            db["n"] += 1
            db["s"] += time.perf_counter() - t

    before = sink.received()
    prof = cProfile.Profile()
    with connection.execute_wrapper(timed):
        t = time.perf_counter()
        prof.enable()
        sent = delivery.outbox_send_due(batch=100, max_batches=count // 100 + 1)
        prof.disable()
        seconds = time.perf_counter() - t
    while sink.received() < before + sent:
        time.sleep(0.01)
    stats = pstats.Stats(prof)
    by_name = {}
    for (filename, _line, fn), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():
        key = f"{Path(filename).name}:{fn}"
        by_name[key] = max(by_name.get(key, 0.0), ct)
    profiled = by_name.get("delivery.py:outbox_send_due", seconds)

    def part(*names):
        return sum(by_name.get(n, 0.0) for n in names)

    split = {
        "render (templates)": part("delivery.py:outbox_render"),
        "build the MIME message and its bytes": part("message.py:message") + part("message.py:as_bytes"),
        "SMTP (smtplib sendmail)": part("smtplib.py:sendmail"),
        "SMTP connect, EHLO, QUIT": part("smtp.py:open") + part("smtp.py:close"),
        "database (statements and commits)": part("utils.py:execute") + part("connection.py:commit"),
    }
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(35)
    (RESULTS / "incident_fanout_profile.txt").write_text(out.getvalue())
    return {
        "rows": sent, "seconds": seconds, "per_message_ms": seconds / sent * 1e3, "queries": db["n"],
        "queries_per_message": db["n"] / sent, "db_ms_per_message": db["s"] / sent * 1e3,
        "profiled_seconds": profiled,
        "split_ms_per_message": {k: v / sent * 1e3 for k, v in split.items()},
    }  # fmt: skip


def smtp_limit(sink: Sink, limit: int) -> dict:
    """The sink's rate for the same messages: raw smtplib, one connection, prepared beforehand."""
    from django.core.mail import EmailMultiAlternatives
    from django.utils import timezone

    from portal.core.bounces import verp_address
    from portal.core.delivery import _headers
    from portal.models import OutboxMessage

    messages, now = [], timezone.now()
    rows = OutboxMessage.objects.filter(status="sent").order_by("pk")[:limit]
    for msg in rows.iterator(chunk_size=2000):  # as outbox_deliver builds it (without DKIM: no key here)
        m = EmailMultiAlternatives(subject=msg.subject, body=msg.body_text, from_email=verp_address(msg.pk),
                                   to=[msg.to], headers=_headers(msg, now))  # fmt: skip
        if msg.body_html:
            m.attach_alternative(msg.body_html, "text/html")
        messages.append((msg.to, m.message().as_bytes(linesep="\r\n")))
    before = sink.received()
    t = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", sink.port) as smtp:
        for to, data in messages:
            smtp.sendmail("bounces@vendor.example", [to], data)
    seconds = time.perf_counter() - t
    assert sink.received() - before == len(messages)
    return {"messages": len(messages), "seconds": seconds, "rate": len(messages) / seconds,
            "mean_bytes": sum(len(d) for _, d in messages) / max(1, len(messages))}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--contracts", type=int, default=10_000)
    ap.add_argument("--contacts", type=int, default=3)
    ap.add_argument("--subscribers", type=int, default=1_000)
    ap.add_argument("--profile", type=int, default=1_000)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--publish-only", type=int, default=0, metavar="N", help="time the publish alone, N times")
    ap.add_argument("--reuse", action="store_true", help="with --publish-only: the database already seeded")
    ap.add_argument("--cprofile", help="with --publish-only: one more publish's profile, to this file")
    args = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.publish_only:
        setup("smtp://127.0.0.1:9", drop=not args.reuse)  # nothing is sent: every publish is rolled back
        seeded = (args.reuse and reused()) or seed(args.contracts, args.contacts, args.subscribers)
        publish_only(seeded, args.publish_only, args.cprofile)
        return
    sink = Sink()
    worker = None
    try:
        setup(f"smtp://127.0.0.1:{sink.port}")
        from common import purge_broker

        purge_broker()
        seeded = seed(args.contracts, args.contacts, args.subscribers)
        worker = start_worker(RESULTS / "incident_fanout_worker.log")
        started = time.perf_counter()
        written = publish(seeded)
        print(f"update_publish: {written['rows']:,} rows in {written['seconds']:.2f} s, "
              f"{written['queries']} queries", flush=True)  # fmt: skip
        delivered = deliver(sink, written["rows"], started, args.timeout)
        delivered["after_publish_seconds"] = delivered["seconds"] - written["seconds"]
        delivered["rate"] = delivered["received"] / delivered["after_publish_seconds"]
        print(f"delivered {delivered['received']:,} in {delivered['seconds']:.1f} s", flush=True)
        stop_worker(worker)
        worker = None
        limit = smtp_limit(sink, written["rows"])
        print(f"raw smtplib: {limit['messages']:,} in {limit['seconds']:.1f} s", flush=True)
        prof = profile_one_process(sink, args.profile)
    finally:
        if worker is not None:
            stop_worker(worker)
        sink.stop()
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    result = {"contracts": args.contracts, "contacts": seeded["contacts"], "subscribers": args.subscribers,
              "publish": written, "deliver": delivered, "smtp_limit": limit, "one_process": prof,
              "ratio_to_limit": delivered["rate"] / limit["rate"], "uptime": load}  # fmt: skip
    (RESULTS / "incident_fanout.json").write_text(json.dumps(result, indent=2))
    print(report(result))


def report(r: dict) -> str:
    p, d, lim, one = r["publish"], r["deliver"], r["smtp_limit"], r["one_process"]
    rows = [
        [f"update_publish: outbox rows written ({r['contracts']:,} contracts, {r['contacts']:,} contacts, "
         f"{r['subscribers']:,} subscribers)", f"{p['rows']:,} rows in {p['seconds']:.2f} s, {p['queries']} q",
         "< 10 s", "yes" if p["seconds"] < 10 else "**no**"],
        [f"the whole incident, publish to the last message at the sink (2 processes, {d['extra_sweeps']} sweeps "
         "sent by the bench)", f"{d['seconds']:.1f} s ({d['received']:,} received)", "< 120 s",
         "yes" if d["seconds"] < 120 and d["received"] >= p["rows"] else "**no**"],
        ["outbox delivery rate (2 processes)", f"{d['rate']:.0f} msg/s", "", ""],
        [f"the sink's limit: raw smtplib, one connection ({lim['mean_bytes'] / 1024:.1f} KiB a message)",
         f"{lim['rate']:.0f} msg/s", "", ""],
        ["outbox rate / the limit", f"{r['ratio_to_limit']:.2f}", ">= 0.5", "yes" if r["ratio_to_limit"] >= 0.5 else "**no**"],
        [f"one process, per message ({one['rows']:,} rows under cProfile)",
         f"{one['per_message_ms']:.2f} ms, {one['queries_per_message']:.2f} q ({one['db_ms_per_message']:.2f} ms in the database)",
         "", ""],
    ]  # fmt: skip
    for what, ms in one["split_ms_per_message"].items():
        rows.append([f"  of which {what}", f"{ms:.2f} ms", "", ""])
    return f"Load: {r['uptime']}\n\n" + table(["measure", "figure", "goal", "met"], rows)


if __name__ == "__main__":
    main()
