"""The beat sweeps on the large dataset (bench/dataset.py): the median of repeated runs, with the
queries of each run beside it.

    .venv/bin/python bench/sweeps.py [--profile]

- escalation (tickets.sweeps.escalate_due_tickets) with nothing due among the open tickets, then
  with 1,000 and 10,000 due;
- SLA deadlines (tickets.sweeps.check_sla_deadlines) the same way;
- maintenance notices (contracts.maintenance.sweep.maintenance_notices_send_due) with 10,000 windows on
  record, nothing due and 100 windows due.

Every sweep runs at the dataset's present (common.NOW), at which nothing is due. A "due" run
picks a random set of open tickets and moves each one's filing back just far enough that its next
escalation (or SLA crossing) has come, with the due-time column the product would store; the
sweep then recomputes the clocks from the history and really escalates (or records), writing its
events and outbox rows. After the run every change is put back (the tickets' columns, and the
events, crossings, notices and outbox rows it wrote are deleted), so each run finds the same work.

Writes var/bench/sweeps.json for bench/run.py. --profile prints a cProfile of one 10,000-due
escalation run (where the time goes).
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import NOW, RESULTS, counted, fmt_ms, median, purge_broker, setup, table  # noqa: E402

REPEATS = int(os.environ.get("BENCH_REPEATS", 5))
DUE = [int(n) for n in os.environ.get("BENCH_DUE", "1000,10000").split(",")]
WINDOWS_DUE = 100
# BENCH_ONLY=check (or escalate, notices; comma-separated): those sweeps only, the others' figures
# kept from the last var/bench/sweeps.json.
ONLY = set(filter(None, os.environ.get("BENCH_ONLY", "").split(",")))
# The peer, django-helpdesk 2.6.1 (issue 9): per escalated ticket, and with nothing due.
PEER = {"escalate_ms": 5.9, "escalate_queries": 7.4, "nothing_due_ms": 60, "nothing_due_queries": 14}


def max_id(model) -> int:
    from django.db.models import Max

    return model.objects.aggregate(m=Max("id"))["m"] or 0


class Marks:
    """The last id of every table a sweep writes to, so that a run's rows can be counted and removed."""

    def __init__(self):
        from contracts.models import MaintenanceNotice
        from portal.models import OutboxMessage
        from tickets.models import SLACrossing, TicketEvent

        self.models = {"outbox": OutboxMessage, "events": TicketEvent, "crossings": SLACrossing,
                       "notices": MaintenanceNotice}  # fmt: skip
        self.ids = {name: max_id(m) for name, m in self.models.items()}

    def written(self) -> dict[str, int]:
        return {name: m.objects.filter(id__gt=self.ids[name]).count() for name, m in self.models.items()}

    def remove(self) -> None:
        from django.db import connection

        with connection.cursor() as c:
            c.execute("DELETE FROM portal_outboxattempt WHERE message_id > %s", [self.ids["outbox"]])
            for name, m in self.models.items():
                c.execute(f"DELETE FROM {m._meta.db_table} WHERE id > %s", [self.ids[name]])


COLUMN_TYPES = {
    "filed_at": "timestamptz", "next_escalation_due": "timestamptz", "next_sla_check_at": "timestamptz",
    "escalation_level": "smallint", "top_alert_sent": "boolean", "breached": "boolean", "warned": "boolean",
    "first_response_due": "timestamptz", "resolution_target_at": "timestamptz", "resolution_due": "timestamptz",
    "at_risk_at": "timestamptz", "paused": "boolean", "escalation_dues": "jsonb", "next_deadline": "timestamptz",
}  # fmt: skip


def _update(rows: list[tuple], columns: list[str]) -> None:
    """UPDATE tickets_ticket from (id, *values) rows in one statement."""
    from django.db import connection

    if not rows:
        return
    arrays = [[r[0] for r in rows]] + [
        [json.dumps(r[i + 1]) if COLUMN_TYPES[c] == "jsonb" else r[i + 1] for r in rows] for i, c in enumerate(columns)
    ]
    unnest = ", ".join(f"%s::{t}[]" for t in ["bigint"] + [COLUMN_TYPES[c] for c in columns])
    sets = ", ".join(f"{c} = v.{c}" for c in columns)
    with connection.cursor() as c:
        c.execute(
            f"UPDATE tickets_ticket AS t SET {sets} FROM unnest({unnest}) AS v(id, {', '.join(columns)}) "
            "WHERE t.id = v.id",
            arrays,
        )


def _shift_until(ticket, pauses, targets, due_now) -> tuple:
    """Move the ticket's filing back until `due_now(deadlines, history)` gives a moment <= NOW; returns
    (new filed_at, that moment)."""
    from tickets import deadlines
    from tickets.history import ticket_history

    filed = ticket.filed_at
    step = timedelta(minutes=1)
    for _ in range(60):
        ticket.filed_at = filed - step
        history = ticket_history(ticket, pauses)
        moment = due_now(deadlines.deadlines(targets, history), history)
        if moment is not None and moment <= NOW:
            new = ticket.filed_at
            ticket.filed_at = filed
            return new, moment
        step = step * 2 if moment is None else step + (moment - NOW) + timedelta(minutes=1)
    raise RuntimeError(f"could not make ticket {ticket.pk} due")


def _make_due(candidates, n: int, seed: int, column: str, kept: tuple[str, ...], next_due, prefetch=()):
    """n random tickets of `candidates`, each with its filing moved back until `next_due(ticket)`,
    a function of (deadlines, history), gives a moment <= NOW, and its clock columns derived again
    by the product (tickets.recompute.ticket_recompute: the sweeps read the stored columns), with
    `column` set to that moment. Returns what to put back: (id, filed_at, *columns) per ticket."""
    from tickets.deadlines import Columns, Recorded
    from tickets.models import Ticket
    from tickets.recompute import ticket_recompute
    from tickets.terms_cache import TermsCache

    chosen = random.Random(seed).sample(list(candidates.values_list("id", flat=True)), n)
    tickets = list(Ticket.objects.filter(id__in=chosen).prefetch_related("pauses", "crossings", *prefetch))
    terms = TermsCache()
    terms.load({t.sla_version_id for t in tickets})
    columns = [*Columns.FIELDS, *(k for k in kept if k not in Columns.FIELDS)]
    rows, back = [], []
    for t in tickets:
        pauses = list(t.pauses.all())
        filed, due = _shift_until(t, pauses, terms.targets(t.sla_version_id, t.priority), next_due(t))
        back.append((t.pk, t.filed_at, *(getattr(t, name) for name in columns)))
        t.filed_at = filed
        recorded = [Recorded(c.clock, c.kind, c.priority, c.deadline) for c in t.crossings.all()]
        ticket_recompute(t, now=NOW, terms=terms, pauses=pauses, requests=[], recorded=recorded)
        setattr(t, column, due)
        rows.append((t.pk, filed, *(getattr(t, name) for name in columns)))
    _update(rows, ["filed_at", *columns])
    return back, columns


def make_escalations_due(n: int, seed: int):
    """n random open tickets made due for their next escalation; returns what to put back."""
    from tickets.models import Ticket

    def next_move(t):
        def due(d, history):
            # The column as ticket_recompute stores it: the due of the ticket's next move.
            dues = d.escalation_dues
            if t.escalation_level < len(dues):
                return dues[t.escalation_level - 1]
            return None if t.top_alert_sent else dues[-1]

        return due

    candidates = Ticket.objects.filter(next_escalation_due__isnull=False)
    kept = ("next_escalation_due", "escalation_level", "top_alert_sent")
    return _make_due(candidates, n, seed, "next_escalation_due", kept, next_move)


def put_escalations_back(back) -> None:
    rows, columns = back
    _update(rows, ["filed_at", *columns])


def make_checks_due(n: int, seed: int):
    """n random open tickets made due for an SLA crossing not yet recorded; returns what to put back."""
    from tickets import deadlines
    from tickets.models import Ticket
    from tickets.sweeps import CROSSING_ROWS

    def next_crossing(t):
        seen = {(c.clock, c.kind) for c in t.crossings.all()}

        def due(d, history):
            moments = deadlines.Moments(
                d.first_response_due, history.first_response_at, d.resolution_target_at, d.resolution_due, None
            )
            crossed = deadlines.crossings_due(moments, now=NOW)
            new = [at for c, at in crossed.items() if CROSSING_ROWS[c][:2] not in seen]
            return min(new) if new else deadlines.next_check(moments, now=NOW)

        return due

    candidates = Ticket.objects.filter(next_sla_check_at__isnull=False, status__in=Ticket.ACTIVE)
    kept = ("next_sla_check_at", "breached", "warned")
    return _make_due(candidates, n, seed, "next_sla_check_at", kept, next_crossing)


def put_checks_back(back) -> None:
    rows, columns = back
    _update(rows, ["filed_at", *columns])


def make_windows_due(n: int, seed: int):
    from contracts.models import MaintenanceWindow

    ids = list(MaintenanceWindow.objects.filter(notice_due_at__isnull=False).values_list("id", flat=True))
    chosen = random.Random(seed).sample(ids, n)
    back = list(MaintenanceWindow.objects.filter(id__in=chosen).values_list("id", "notice_due_at"))
    MaintenanceWindow.objects.filter(id__in=chosen).update(notice_due_at=NOW - timedelta(minutes=1))
    return back


def put_windows_back(back) -> None:
    from django.db import connection

    with connection.cursor() as c:
        c.execute(
            "UPDATE contracts_maintenancewindow AS w SET notice_due_at = v.due "
            "FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(id, due) WHERE w.id = v.id",
            [[r[0] for r in back], [r[1] for r in back]],
        )


# A run changes the dataset until it is put back: what to put back is written down first, so that a
# run killed half-way (Ctrl-C) is undone when the next one starts.
UNDO = "bench_sweeps_undo"
RESTORERS = {"escalations": put_escalations_back, "checks": put_checks_back, "windows": put_windows_back}


def journal(kind: str, marks: Marks, back) -> None:
    from django.db import connection

    with connection.cursor() as c:
        c.execute(f"CREATE TABLE IF NOT EXISTS {UNDO} (kind text, marks jsonb, back jsonb)")
        c.execute(
            f"INSERT INTO {UNDO} VALUES (%s, %s, %s)", [kind, json.dumps(marks.ids), json.dumps(back, default=str)]
        )


def undo(*, quiet: bool = True) -> None:
    """Put back whatever a run left (its rows removed, its tickets or windows restored)."""
    from django.db import connection

    with connection.cursor() as c:
        c.execute(f"CREATE TABLE IF NOT EXISTS {UNDO} (kind text, marks jsonb, back jsonb)")
        c.execute(f"SELECT kind, marks, back FROM {UNDO}")
        left = c.fetchall()
    for kind, ids, back in left:
        marks = Marks()
        marks.ids = ids if isinstance(ids, dict) else json.loads(ids)
        marks.remove()
        if kind in RESTORERS:
            RESTORERS[kind](json.loads(back) if isinstance(back, str) else back)
        if not quiet:
            print(f"  (undid an interrupted {kind} run)")
    with connection.cursor() as c:
        c.execute(f"DELETE FROM {UNDO}")


def run(label: str, sweep, repeats: int, *, prepare=None, kind=None, warm=None):
    """Median seconds and queries of `sweep()` over `repeats` runs, with what each run wrote. `warm`
    prepares a small untimed run first (templates compiled, URL resolver loaded: a worker is warm)."""
    if warm:
        marks = Marks()
        journal(kind, marks, warm())
        sweep()
        undo()
    times, queries, results, written = [], [], [], []
    for i in range(repeats):
        marks = Marks()
        if prepare:
            journal(kind, marks, prepare(i))
        result, seconds, n = counted(sweep)
        written.append(marks.written())
        if prepare:
            undo()
        else:
            marks.remove()
        times.append(seconds)
        queries.append(n)
        results.append(result)
        print(f"  {label} run {i + 1}: {fmt_ms(seconds)}, {n} queries, result {result}, wrote {written[-1]}",
              flush=True)  # fmt: skip
    return {
        "seconds": median(times), "queries": median(queries), "result": median(results),
        "outbox": median(w["outbox"] for w in written), "events": median(w["events"] for w in written),
        "crossings": median(w["crossings"] for w in written), "notices": median(w["notices"] for w in written),
        "runs": repeats, "min": min(times), "max": max(times),
    }  # fmt: skip


def main():
    import dataset

    dataset.ensure()
    setup()
    undo(quiet=False)
    from contracts.maintenance.sweep import maintenance_notices_send_due
    from tickets.models import Ticket
    from tickets.sweeps import BATCH, check_sla_deadlines, escalate_due_tickets

    if "--profile" in sys.argv:
        return profile(escalate_due_tickets)
    open_n = Ticket.objects.filter(status__in=Ticket.ACTIVE).count()
    pending = Ticket.objects.filter(next_escalation_due__isnull=False).count()
    print(f"sweeps at {NOW:%Y-%m-%d %H:%M} UTC: {open_n:,} open tickets ({pending:,} with an escalation pending), "
          f"median of {REPEATS} runs")  # fmt: skip
    saved = RESULTS / "sweeps.json"
    out = json.loads(saved.read_text()) if ONLY and saved.exists() else {}
    out.update({"open": open_n, "repeats": REPEATS, "batch": BATCH})
    if not ONLY or "escalate" in ONLY:
        escalations(out, escalate_due_tickets)
    if not ONLY or "escalate" in ONLY or "send" in ONLY:
        sending(out, escalate_due_tickets)
    if not ONLY or "check" in ONLY:
        checks(out, check_sla_deadlines)
    if not ONLY or "notices" in ONLY:
        notices(out, maintenance_notices_send_due)
    purge_broker()
    RESULTS.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(out, indent=1, default=str))
    print()
    print(report(out))


def escalations(out, escalate_due_tickets):
    out["escalate_0"] = run("escalation, 0 due", lambda: escalate_due_tickets(now=NOW), max(REPEATS, 10))
    for n in DUE:
        out[f"escalate_{n}"] = run(
            f"escalation, {n:,} due", lambda: escalate_due_tickets(now=NOW), REPEATS if n <= 1000 else max(3, REPEATS // 2),
            prepare=lambda i, n=n: make_escalations_due(n, seed=n + i), kind="escalations",
            warm=lambda: make_escalations_due(50, seed=0),
        )  # fmt: skip


def sending(out, escalate_due_tickets, n: int = 1000):
    """The worker's side of the escalation sweep's emails: the rows one run of `n` due wrote, each
    rendered from its frozen context, sent (to the in-memory backend: no SMTP in the figure) and
    marked sent with its attempt, batch by batch as outbox_send_due does. Rendering moved here
    from the sweep (portal.core.snapshot): this is where its cost is now paid, outside the sweep's
    transaction and its row locks."""
    from django.conf import settings
    from django.test.utils import override_settings

    from portal.core.delivery import outbox_claim, outbox_deliver
    from portal.models import OutboxMessage

    times, queries, sent = [], [], []
    for i in range(max(1, REPEATS // 2)):
        marks = Marks()
        journal("escalations", marks, make_escalations_due(n, seed=7000 + i))
        escalate_due_tickets(now=NOW)
        keys = list(OutboxMessage.objects.filter(id__gt=marks.ids["outbox"]).values_list("key", flat=True))

        def send_all(keys=keys):
            done = 0
            for start in range(0, len(keys), settings.OUTBOX_BATCH):
                claimed = outbox_claim(now=NOW + timedelta(days=30), limit=settings.OUTBOX_BATCH,
                                       keys=keys[start : start + settings.OUTBOX_BATCH])  # fmt: skip
                done += outbox_deliver(messages=claimed)
            return done

        with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
            result, seconds, q = counted(send_all)
        undo()
        times.append(seconds)
        queries.append(q)
        sent.append(result)
        print(f"  worker: {result} rows rendered and sent in {fmt_ms(seconds)}, {q} queries", flush=True)
    rows = median(sent)
    out["send_escalation_rows"] = {"seconds": median(times), "queries": median(queries), "rows": rows,
                                   "per_row_ms": median(times) / rows * 1e3 if rows else 0}  # fmt: skip


def checks(out, check_sla_deadlines):
    out["check_0"] = run("SLA check, 0 due", lambda: check_sla_deadlines(now=NOW), max(REPEATS, 10))
    for n in DUE:
        out[f"check_{n}"] = run(
            f"SLA check, {n:,} due", lambda: check_sla_deadlines(now=NOW), REPEATS if n <= 1000 else max(3, REPEATS // 2),
            prepare=lambda i, n=n: make_checks_due(n, seed=n + i), kind="checks",
            warm=lambda: make_checks_due(50, seed=0),
        )  # fmt: skip


def notices(out, maintenance_notices_send_due):
    from contracts.models import MaintenanceWindow

    out["windows"] = MaintenanceWindow.objects.count()
    out["notices_0"] = run("notices, 0 due", lambda: maintenance_notices_send_due(now=NOW), max(REPEATS, 10))
    out[f"notices_{WINDOWS_DUE}"] = run(
        f"notices, {WINDOWS_DUE} windows due", lambda: maintenance_notices_send_due(now=NOW), REPEATS,
        prepare=lambda i: make_windows_due(WINDOWS_DUE, seed=i), kind="windows",
        warm=lambda: make_windows_due(5, seed=99),
    )  # fmt: skip


def report(out: dict) -> str:
    rows = []
    for key, label in [("escalate_0", "escalation sweep, nothing due"), *[(f"escalate_{n}", f"escalation sweep, {n:,} due") for n in DUE],
                       ("check_0", "SLA-deadline sweep, nothing due"), *[(f"check_{n}", f"SLA-deadline sweep, {n:,} due") for n in DUE],
                       ("notices_0", "maintenance notices, nothing due"), (f"notices_{WINDOWS_DUE}", f"maintenance notices, {WINDOWS_DUE} windows due")]:  # fmt: skip
        r = out[key]
        # Every due ticket is escalated (moved up, or its top-level alert sent): per due ticket.
        done = int(key.split("_")[1]) if key.startswith("escalate_") else int(r["result"])
        per = f"{r['seconds'] / done * 1e3:.2f} ms, {r['queries'] / done:.3f} q" if done else ""
        batches = math.ceil(done / out["batch"]) if done and key.startswith(("escalate", "check")) else ""
        rows.append([label, fmt_ms(r["seconds"]), int(r["queries"]), done, batches, int(r["outbox"]), per])
    text = table(["sweep", "median", "queries", "done", "batches", "outbox rows", "per item"], rows)
    esc = out[f"escalate_{max(DUE)}"]
    moved = max(DUE)
    per_ms, per_q = esc["seconds"] / moved * 1e3, esc["queries"] / moved
    zero = out["escalate_0"]
    text += (
        f"\n\n{out['open']:,} open tickets, {out['windows']:,} maintenance windows. Per escalated ticket "
        f"({moved:,} due): {per_ms:.2f} ms and {per_q:.3f} queries, against django-helpdesk's "
        f"{PEER['escalate_ms']} ms and {PEER['escalate_queries']} queries: {PEER['escalate_ms'] / per_ms:.1f}x faster, "
        f"{PEER['escalate_queries'] / per_q:.0f}x fewer queries. Nothing due: {fmt_ms(zero['seconds'])} and "
        f"{int(zero['queries'])} queries (peer {PEER['nothing_due_ms']} ms, {PEER['nothing_due_queries']} queries; "
        f"goal < 20 ms, <= 3 queries)."
    )
    sent = out.get("send_escalation_rows")
    if sent:
        text += (
            f"\n\nThe worker then renders and sends those emails: {sent['rows']:,} rows of a 1,000-due run in "
            f"{fmt_ms(sent['seconds'])} and {int(sent['queries'])} queries, {sent['per_row_ms']:.2f} ms a row "
            "(in-memory mail backend: SMTP's own time excluded)."
        )
    return text


def profile(escalate_due_tickets, n: int = int(os.environ.get("BENCH_PROFILE_DUE", 10000))):
    import cProfile
    import pstats

    journal("escalations", Marks(), make_escalations_due(n, seed=1))
    prof = cProfile.Profile()
    result, seconds, queries = counted(lambda: prof.runcall(escalate_due_tickets, now=NOW))
    undo()
    purge_broker()
    print(f"escalation, {n:,} due, under cProfile: {result} escalated, {seconds:.1f} s, {queries} queries")
    stats = pstats.Stats(prof).sort_stats("cumulative")
    stats.print_stats(35)


if __name__ == "__main__":
    main()
