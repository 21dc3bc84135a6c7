"""Search on the large dataset (bench/dataset.py: 1,000,000 tickets, 100,000 active), beside
django-helpdesk's own search on its 100,000 tickets (bench/helpdesk) in the same run.

    .venv/bin/python bench/search.py

20 searches of the staff queue as staff open it (active tickets; tickets.search through the admin's
changelist): 5 rare words (a description word of rank 4,000 of the dataset's 5,000, in about 20
active tickets), 5 common words (a subject word, in a sixth of them), 5 organisation names, 5
ticket numbers. For each, in process (django.test.Client, DEBUG off): the whole page and the
search's own queries alone (the page's rows and its capped count, as the changelist asks them),
each the median of BENCH_SEARCH_RUNS after one unmeasured; then the median and the 95th percentile
over the 20, and the queries of a page. Beside them, a customer of the big organisation (50,000
tickets) searching her ticket list, and the peer: its staff list's data endpoint with the list's
search string (bench/helpdesk/measure.py search) for 20 searches of the same kinds on its data (its
titles' words, words it does not have, its customers' domains, ticket numbers), and, beside it, what
its agent waits for: the list page its search box submits plus that data endpoint (our queue's one
page holds both), and its search's own queries alone beside ours alone. Ours and the peer's take turns, BENCH_SEARCH_ROUNDS
times (3): a machine whose speed drifts in a run (seen: the same page 33 ms, then 47) slows one side
of a ratio only if it drifts within a turn; each search's figure is its median over the rounds, and
each round's ratio is printed beside the others. Writes var/bench/search.json for bench/run.py, with
the load average beside the figures.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, counted, setup, table  # noqa: E402

RUNS = int(os.environ.get("BENCH_SEARCH_RUNS", 5))
ROUNDS = int(os.environ.get("BENCH_SEARCH_ROUNDS", 3))
QUEUE = "/admin/tickets/ticket/"
# The peer's data (bench/helpdesk/load.py): six titles, one description with "Reference <id>",
# submitters at org<n>.example.com. Its search is icontains, so a word it lacks is a whole scan.
PEER_TERMS = {
    "rare word": ["kilimanjaro", "ruswenikaar", "zebrafish", "marmalade", "tenwenostek"],
    "common word": ["portal", "invoice", "VPN", "uplink", "account"],
    "organisation": ["org12.example", "org345.example", "org678.example", "org901.example", "org234.example"],
    "ticket number": ["99990", "95001", "97531", "92468", "90210"],
}


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def searches() -> dict[str, list[str]]:
    """The 20 searches on our dataset, by kind."""
    import dataset

    from tickets.models import Ticket

    active = Ticket.objects.filter(status__in=Ticket.ACTIVE).order_by("pk").values_list("pk", flat=True)
    n = active.count()
    return {
        "rare word": dataset.VOCABULARY[3995:4000],
        "common word": ["backup", "restore", "agent", "login", "quota"],  # bench/dataset.SUBJECTS
        "organisation": [f"Bench organisation {i:04d}" for i in (12, 345, 678, 901, 234)],
        "ticket number": [f"#{active[n * k // 5]}" for k in range(5)],
    }


def timed(fn, runs: int = RUNS) -> tuple[float, int]:
    fn()
    _, _, queries = counted(fn)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3, queries


def ours(terms: dict[str, list[str]], *, before_too: bool = True) -> list[dict]:
    import dataset
    from django.db.models import Q
    from pages import client_for

    from portal.core.paging import CappedPaginator
    from tickets import search
    from tickets.admin.queue import QUEUE_ORDER
    from tickets.models import Ticket

    staff = client_for(dataset.STAFF_EMAIL)
    queue = Ticket.objects.filter(status__in=Ticket.ACTIVE).exclude(kind=Ticket.Kind.SECURITY)

    def alone(q):  # what the changelist asks of the search: the capped count, then a page of rows
        found = search.tickets_search(queue, search.parse(q), staff=True)
        ordered, count = search.best_first(found, *QUEUE_ORDER, cap=CappedPaginator.CAP)
        return list(ordered[:25]), count

    def before(q):  # the search it replaced: icontains on the subject and the organisation's name (a scan)
        found = queue.filter(Q(subject__icontains=q) | Q(organisation__name__icontains=q)).order_by(*QUEUE_ORDER)
        return list(found[:25]), found[: CappedPaginator.CAP + 1].count()

    ms, queries = timed(lambda: staff.get(QUEUE))
    out = [{"kind": "none (the queue)", "term": "", "page_ms": ms, "page_queries": queries, "query_ms": 0.0,
            "query_queries": 0, "found": 0, "before_ms": 0.0}]  # fmt: skip
    print(f"  the queue without a search: {ms:.1f} ms ({queries} q)", flush=True)
    for kind, qs in terms.items():
        for q in qs:
            response = staff.get(QUEUE, {"q": q})
            assert response.status_code == 200, (q, response.status_code)
            page_ms, page_q = timed(lambda q=q: staff.get(QUEUE, {"q": q}))
            query_ms, query_q = timed(lambda q=q: alone(q))
            before_ms = timed(lambda q=q: before(q))[0] if before_too else None
            found = alone(q)[1]
            out.append({"kind": kind, "term": q, "page_ms": page_ms, "page_queries": page_q, "query_ms": query_ms,
                        "query_queries": query_q, "found": found, "before_ms": before_ms})  # fmt: skip
            was = f", before {before_ms:.1f} ms" if before_too else ""
            print(f"  {kind} {q!r}: page {page_ms:.1f} ms ({page_q} q), search {query_ms:.1f} ms ({query_q} q){was}, "
                  f"{found:,}{'+' if found > CappedPaginator.CAP else ''} found", flush=True)  # fmt: skip
    return out


def customer(terms: dict[str, list[str]]) -> list[dict]:
    """The big organisation's admin searching her ticket list (50,000 tickets of every status)."""
    import dataset
    from pages import client_for

    client = client_for(dataset.customer_email(0))
    out = []
    for kind in ("rare word", "common word"):
        for q in terms[kind][:2]:
            ms, queries = timed(lambda q=q: client.get("/tickets/", {"q": q}))
            out.append({"kind": kind, "term": q, "ms": ms, "queries": queries})
            print(f"  customer {kind} {q!r}: {ms:.1f} ms, {queries} q", flush=True)
    return out


def peer_ready():
    """bench/helpdesk's scripts, its environment and its data ready (made once, then reused); None
    when it is not here."""
    here = Path(__file__).resolve().parent / "helpdesk"
    if not (here / "run.py").exists():
        return None
    sys.path.insert(0, str(here))
    import run as helpdesk

    helpdesk.ensure_venv()
    helpdesk.peer("load.py", "--tickets", "100000", "--open", "10000", result=False)  # reused when there
    return helpdesk


def peer(helpdesk) -> dict | None:
    if helpdesk is None:
        return None
    terms = [t for ts in PEER_TERMS.values() for t in ts]
    found = json.loads(helpdesk.peer("measure.py", "search", *terms, "--search-runs", str(RUNS)))
    kinds = [k for k, ts in PEER_TERMS.items() for _ in ts]
    return {"tickets": 100_000, "open": 10_000, "version": found["helpdesk_version"],
            "searches": [{**s, "kind": k} for s, k in zip(found["searches"], kinds, strict=True)]}  # fmt: skip


def combined(runs: list[dict], keys: tuple[str, ...]) -> dict:
    """One search's figures over the rounds: each of `keys` its median, the rest as the first round had them."""
    return {**runs[0], **{k: statistics.median(r[k] for r in runs) for k in keys}}


def round_ratios(rows: list[dict], theirs: dict) -> dict:
    """One round's ratios of medians: the peer's endpoint, its agent's wait, its search alone, against ours."""
    page = statistics.median(r["page_ms"] for r in rows)
    alone = statistics.median(r["query_ms"] for r in rows)
    found = theirs["searches"]
    return {
        "page_ms": page,
        "peer_ms": statistics.median(s["ms"] for s in found),
        "endpoint": statistics.median(s["ms"] for s in found) / page,
        "agent": statistics.median(s["ms"] + s["page_ms"] for s in found) / page,
        "alone": statistics.median(s["alone_ms"] for s in found) / alone,
    }


def summary(rows: list[dict], key: str) -> dict:
    values = [r[key] for r in rows]
    return {"median": statistics.median(values), "p95": p95(values)}


def main():
    setup()
    from django.db import connection

    from tickets.models import Ticket
    from tickets.search import documents_fill

    if Ticket.objects.filter(search_document__isnull=True).exists():  # a dataset built before dataset.py wrote them
        print("search: writing the tickets' search documents", flush=True)
        documents_fill()
    with connection.cursor() as c:
        c.execute("ANALYZE tickets_ticket")  # the migration that wrote the documents leaves no statistics
    load = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    terms = searches()
    helpdesk = peer_ready()
    rounds = []  # (ours: the queue, its searches; the peer's), a turn each
    for n in range(ROUNDS):
        print(f"search, round {n + 1} of {ROUNDS}: 20 searches of the staff queue (load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)", flush=True)  # fmt: skip
        ours_n = ours(terms, before_too=n == 0)  # icontains is the same scan each time: once
        rounds.append((ours_n, peer(helpdesk)))
    baseline = combined([r[0][0] for r in rounds], ("page_ms",))
    rows = [combined([r[0][i + 1] for r in rounds], ("page_ms", "query_ms")) for i in range(len(rounds[0][0]) - 1)]
    customers = customer(terms)
    theirs = rounds[0][1]
    if theirs:
        theirs["searches"] = [
            combined([r[1]["searches"][i] for r in rounds], ("ms", "page_ms", "alone_ms"))
            for i in range(len(theirs["searches"]))
        ]
    result = {
        "started": started, "load_before": load[0], "load_after": os.getloadavg()[0], "runs": RUNS, "rounds": ROUNDS,
        "queue": baseline, "searches": rows, "page": summary(rows, "page_ms"), "query": summary(rows, "query_ms"), "before": summary(rows, "before_ms"),
        "page_queries": max(r["page_queries"] for r in rows), "customer": customers, "peer": theirs,
        "round_ratios": [round_ratios(ours_n[1:], peer_n) for ours_n, peer_n in rounds if peer_n],
    }  # fmt: skip
    if theirs:
        result["peer_summary"] = summary(theirs["searches"], "ms")
        result["peer_queries"] = max(s["queries"] for s in theirs["searches"])
        for s in theirs["searches"]:  # what its agent waits for: the page, then its table's rows
            s["agent_ms"] = s["page_ms"] + s["ms"]
        result["peer_agent_summary"] = summary(theirs["searches"], "agent_ms")
        result["peer_alone_summary"] = summary(theirs["searches"], "alone_ms")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "search.json").write_text(json.dumps(result, indent=2) + "\n")
    print(report(result))


def report(r: dict) -> str:
    lines = [
        [f"{s['kind']}: {s['term']}", f"{s['page_ms']:.1f} ms, {s['page_queries']} q", f"{s['query_ms']:.1f} ms",
         f"{s['before_ms']:.1f} ms", f"{s['found']:,}"]
        for s in r["searches"]
    ]  # fmt: skip
    out = table(
        [
            "search (staff queue, 100,000 active of 1,000,000)",
            "page",
            "search alone",
            "before: icontains",
            "found (capped)",
        ],
        lines,
    )
    out += (
        f"\n\nthe queue without a search: {r['queue']['page_ms']:.1f} ms, {r['queue']['page_queries']} q"
        f"\npage: median {r['page']['median']:.1f} ms, p95 {r['page']['p95']:.1f} ms, at most {r['page_queries']} "
        f"queries; search alone: median {r['query']['median']:.1f} ms, p95 {r['query']['p95']:.1f} ms; before "
        f"(icontains on subject and organisation): median {r['before']['median']:.1f} ms, p95 {r['before']['p95']:.1f} ms"
    )
    if r.get("peer"):
        p = r["peer_summary"]
        out += (
            f"\npeer (django-helpdesk {r['peer']['version']}, its 100,000 tickets, 10,000 open, same run): "
            f"median {p['median']:.1f} ms, p95 {p['p95']:.1f} ms, at most {r['peer_queries']} queries; "
            f"ratio of medians {p['median'] / r['page']['median']:.1f}x"
        )
        a = r["peer_agent_summary"]
        out += (
            f"\npeer as its agent waits (the list page the search box submits, then the data endpoint its table "
            f"asks): median {a['median']:.1f} ms, p95 {a['p95']:.1f} ms; ratio of medians "
            f"{a['median'] / r['page']['median']:.1f}x"
        )
        q = r["peer_alone_summary"]
        out += (
            f"\npeer's search alone (its count and first 25 rows, as its endpoint asks them; ours: search alone): "
            f"median {q['median']:.1f} ms, p95 {q['p95']:.1f} ms; ratio of medians "
            f"{q['median'] / r['query']['median']:.1f}x"
        )
    for n, x in enumerate(r.get("round_ratios", []), 1):
        out += (
            f"\nround {n}: ours {x['page_ms']:.1f} ms, the peer's endpoint {x['peer_ms']:.1f} ms: {x['endpoint']:.1f}x "
            f"(as its agent waits {x['agent']:.1f}x; search alone {x['alone']:.1f}x)"
        )
    out += f"\nload average {r['load_before']:.1f} before, {r['load_after']:.1f} after"
    return out


if __name__ == "__main__":
    main()
