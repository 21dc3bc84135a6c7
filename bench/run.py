"""Every benchmark, then one summary against the peer: what `make bench` runs.

    .venv/bin/python bench/run.py [--summary]     # --summary: only the table, from var/bench/*.json

In order: the SLA clock (bench/clock.py), the month-end run (bench/close_month.py, in its own
scratch database BENCH_CLOSE_MONTH_DATABASE_URL, default sla_bench), the large dataset
(bench/dataset.py, reused when present), the sweeps, the pages and the search on it (bench/search.py,
which measures the peer's search in the same run), and django-helpdesk
(bench/helpdesk/run.py, when it is there), then our pages and the peer's under wrk in alternation
(bench/versus.py: the machine's speed moves within a run), and email in: 1,000 messages through IMAP
into ours and into the peer's get_email (bench/mail_ingest.py, two throwaway Dovecots). Then a table of ours beside the peer's
figures measured in the same run (var/bench/helpdesk.json, var/bench/versus.json), or beside its
published figures (issue 9) when the peer was not measured, with the ratio and the goal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, ROOT, table  # noqa: E402
from mail_ingest import per_message  # noqa: E402

HERE = Path(__file__).resolve().parent
# django-helpdesk 2.6.1 as issue 9 publishes it (100,000 tickets, 10,000 open, PostgreSQL).
PUBLISHED = {
    "tickets": 100_000, "open": 10_000, "escalate_seconds": 46.0, "escalations": 7871,
    "escalate_queries": 58_245, "nothing_due_seconds": 0.060, "nothing_due_queries": 14,
    "list_ms": 265, "list_queries": 73, "list_rps": 7, "view_ms": 7.5, "view_queries": 8, "view_rps": 163,
    "helpdesk_version": "2.6.1 (published)",
}  # fmt: skip


def step(title: str, args: list[str], env: dict | None = None) -> bool:
    print(f"\n=== {title} ===", flush=True)
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env={**os.environ, **(env or {})})
    if done.returncode:
        print(f"({title} failed with exit code {done.returncode})")
    return done.returncode == 0


def run_all() -> None:
    step("SLA clock", ["bench/clock.py"])
    close_month_db = os.environ.get(
        "BENCH_CLOSE_MONTH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sla_bench"
    )  # fmt: skip
    step("close_month", ["bench/close_month.py"], {"DATABASE_URL": close_month_db})
    step("large dataset", ["bench/dataset.py"])
    step("sweeps", ["bench/sweeps.py"])
    step("pages", ["bench/pages.py"])
    step("incident fan-out to an SMTP sink", ["bench/incident_fanout.py"])
    step("search: the staff queue, and the peer's search in the same run", ["bench/search.py"])
    peer = HERE / "helpdesk" / "run.py"
    if peer.exists():
        step("django-helpdesk (the peer)", [str(peer.relative_to(ROOT))])
        step("ours and the peer in alternation", ["bench/versus.py"])
        step("email in through IMAP, ours and the peer's get_email", ["bench/mail_ingest.py"])


def load(name: str) -> dict | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def ratio(ours: float | None, theirs: float | None, *, higher_is_better: bool) -> float | None:
    if not ours or not theirs:
        return None
    return ours / theirs if higher_is_better else theirs / ours


def summary() -> str:
    sweeps, pages, versus = load("sweeps.json"), load("pages.json"), load("versus.json") or {}
    peer, source = load("helpdesk.json"), "measured in this run"
    if not peer:
        peer, source = PUBLISHED, "published in issue 9 (not measured here)"
    rows = []

    def row(what, ours, theirs, r, goal, met):
        rows.append(
            [what, ours, theirs, "" if r is None else f"{r:.1f}x", goal, {True: "yes", False: "**no**"}.get(met, "")]
        )

    if sweeps:
        due = max(int(k.split("_")[1]) for k in sweeps if k.startswith("escalate_") and k != "escalate_0")
        zero, esc = sweeps["escalate_0"], sweeps[f"escalate_{due}"]
        z_ms = zero["seconds"] * 1e3
        p_ms = (peer.get("nothing_due_seconds") or 0) * 1e3
        row(f"escalation sweep, nothing due ({sweeps['open']:,} open; peer {peer['open']:,})",
            f"{z_ms:.1f} ms, {zero['queries']:.0f} q", f"{p_ms:.0f} ms, {peer.get('nothing_due_queries')} q",
            ratio(z_ms, p_ms, higher_is_better=False), "< 20 ms, <= 3 q",
            z_ms < 20 and zero["queries"] <= 3)  # fmt: skip
        handled = due  # every due ticket is escalated or gets its top-level alert
        ours_ms = esc["seconds"] / handled * 1e3
        ours_q = esc["queries"] / handled
        peer_ms = peer["escalate_seconds"] / peer["escalations"] * 1e3
        peer_q = peer["escalate_queries"] / peer["escalations"]
        r = ratio(ours_ms, peer_ms, higher_is_better=False)
        row(f"per escalated ticket ({due:,} due, {esc['outbox']:.0f} outbox rows; peer {peer['escalations']:,})",
            f"{ours_ms:.2f} ms, {ours_q:.3f} q", f"{peer_ms:.1f} ms, {peer_q:.1f} q", r, ">= 10x faster",
            r is not None and r >= 10)  # fmt: skip
        one = sweeps.get("escalate_1000")
        if one:
            grows = f"{one['queries']:.0f} q for 1,000, {esc['queries']:.0f} q for {due:,}"
            row("escalation queries grow with batches (500 tickets each)", grows, "", None,
                "batches, not tickets", esc["queries"] <= one["queries"] * due / 1000 + 5)  # fmt: skip
        sent = sweeps.get("send_escalation_rows")
        if sent:  # rendering moved from the sweep to the worker: its cost, shown beside
            row(f"the worker: render and send the rows of 1,000 due ({sent['rows']:,.0f} rows, in-memory mail)",
                f"{sent['per_row_ms']:.2f} ms and {sent['queries'] / sent['rows']:.1f} q a row", "", None, "", None)  # fmt: skip
    if pages:
        queue = pages.get("staff queue (admin changelist)", {})
        view = pages.get("customer ticket page", {})
        listing = pages.get("customer ticket list", {})
        for label, what in (("staff queue (admin changelist)", "staff queue vs the peer's staff list endpoint"),
                            ("customer ticket page", "customer ticket page vs the peer's customer view")):  # fmt: skip
            v = versus.get(label)
            if v:  # bench/versus.py: both served at once, wrk on ours then on the peer's, in rounds
                row(f"{what}, req/s in alternation (median of {len(v['rounds'])} rounds: "
                    + ", ".join(f"{x['ratio']:.2f}x" for x in v["rounds"]) + ")",
                    f"{v['ours_rps']:.1f}", f"{v['peer_rps']:.1f}", v["ratio"], f">= {v['goal']:g}x",
                    v["ratio"] >= v["goal"])  # fmt: skip
        if peer.get("list_rps"):
            r = ratio(queue.get("rps"), peer["list_rps"], higher_is_better=True)
            row("staff queue vs the peer's staff list endpoint, req/s, minutes apart", f"{queue.get('rps', 0):.1f}",
                f"{peer['list_rps']}", r, "" if versus else ">= 10x", None if versus else r is not None and r >= 10)  # fmt: skip
        row("staff queue vs the peer's list endpoint, in-process",
            f"{queue.get('ms', 0):.0f} ms, {queue.get('queries')} q", f"{peer['list_ms']} ms, {peer['list_queries']} q",
            ratio(queue.get("ms"), peer["list_ms"], higher_is_better=False), "", None)  # fmt: skip
        if peer.get("view_rps"):
            r = ratio(view.get("rps"), peer["view_rps"], higher_is_better=True)
            row("customer ticket page vs the peer's customer view, req/s, minutes apart", f"{view.get('rps', 0):.1f}",
                f"{peer['view_rps']}", r, "" if versus else ">= 1.5x", None if versus else r is not None and r >= 1.5)  # fmt: skip
        row("customer ticket page vs the peer's customer view, in-process",
            f"{view.get('ms', 0):.1f} ms, {view.get('queries')} q", f"{peer['view_ms']} ms, {peer['view_queries']} q",
            ratio(view.get("ms"), peer["view_ms"], higher_is_better=False), "", None)  # fmt: skip
        full = pages.get("customer ticket page, with pauses, files and an escalation")
        if full and peer.get("view_rps"):  # the same page for a ticket that needs every query
            row("customer ticket page, a ticket with pauses, files and an escalation, req/s",
                f"{full.get('rps', 0):.1f} ({full.get('ms', 0):.1f} ms, {full.get('queries')} q in-process)",
                f"{peer['view_rps']}", ratio(full.get("rps"), peer["view_rps"], higher_is_better=True), "", None)  # fmt: skip
        row("customer ticket list", f"{listing.get('ms', 0):.0f} ms, {listing.get('queries')} q, "
            f"{listing.get('rps', 0):.1f} req/s", "", None, "", None)  # fmt: skip
    mail = load("mail_ingest.json")
    if mail:  # bench/mail_ingest.py: both products on the same mailbox in one run
        ours, theirs = mail["ours"], mail["peer"]
        o_ms, o_q = per_message(ours, mail["messages"])
        p_ms, p_q = per_message(theirs, mail["messages"])
        threaded = f"{ours['outcome']['replies_on_their_ticket']} and {theirs['outcome']['replies_on_their_ticket']}"
        r = ratio(o_ms, p_ms, higher_is_better=False)
        row(f"email in, per message: 1,000 through IMAP (800 new, 200 replies; threaded: {threaded})",
            f"{o_ms:.1f} ms, {o_q:.1f} q", f"{p_ms:.1f} ms, {p_q:.1f} q (get_email)", r, ">= 10x faster",
            r is not None and r >= 10)  # fmt: skip
    found = load("search.json")
    if found and found.get("peer"):  # bench/search.py: the peer's search measured in the same run
        ours_ms, theirs = found["page"], found["peer_summary"]
        r = ratio(ours_ms["median"], theirs["median"], higher_is_better=False)
        row(f"search, the staff queue's page (20 searches; ours over 1,000,000 tickets, the peer's over its "
            f"{found['peer']['tickets']:,}; load {found['load_before']:.1f}), median / p95",
            f"{ours_ms['median']:.1f} / {ours_ms['p95']:.1f} ms, {found['page_queries']} q",
            f"{theirs['median']:.0f} / {theirs['p95']:.0f} ms, {found['peer_queries']} q", r, ">= 10x faster",
            r is not None and r >= 10)  # fmt: skip
        alone = found["query"]
        row("search alone (its queries for a page and the capped count), median / p95",
            f"{alone['median']:.1f} / {alone['p95']:.1f} ms", "", None, "< 30 ms median", alone["median"] < 30)  # fmt: skip
    head = ["measure", "ours", f"django-helpdesk {peer.get('helpdesk_version', '')}", "ratio", "goal", "met"]
    return f"Peer figures {source}.\n\n" + table(head, rows)


def main():
    if "--summary" not in sys.argv:
        run_all()
    print("\n=== summary ===")
    print(summary())


if __name__ == "__main__":
    main()
