"""Measure django-helpdesk in its own process (run by the peer venv's python from run.py).

    python measure.py escalate [--nothing-due-runs 5]
    python measure.py pages [--list-runs 20] [--view-runs 200]
    python measure.py search TERM... [--search-runs 3]

Prints one JSON object on its last line. Queries are counted with django's
CaptureQueriesContext in this process; times are wall-clock medians (time.perf_counter).

escalate: resets the dataset (load.reset), runs `escalate_tickets` once with every due ticket
due, then again (nothing left due) NOTHING_DUE_RUNS times, then resets again.
pages: the staff ticket list's data endpoint (datatables_ticket_list, as the list page's
DataTable requests its first page: the default query, 25 rows, by created) for a logged-in staff
user, and the customer's ticket view (/view/?ticket=&email=&key=, the link the peer mails to
submitters) for an open ticket, anonymously. Each through django.test.Client, so the middleware
and the session are in the figure. Also prints what wrk needs: the URLs and a session cookie.
search: the same data endpoint with the list's default query and each TERM as its search string
(what the ticket list's search box sends: helpdesk.query.get_search_filter_args, icontains over
the ticket's fields), the median of --search-runs per term after one unmeasured; the search's own
queries alone as the endpoint asks them (the count, then the first 25 rows, unserialised: what
bench/search.py measures of ours as "search alone"); and the list page
the search box submits (/tickets/?status=1&status=2&q=TERM: the page's shell, whose table then asks
the data endpoint for its rows), measured the same way; bench/search.py.
"""

import argparse
import json
import os
import statistics
import sys
import time
from collections import deque
from pathlib import Path
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "project"))
sys.path.insert(0, str(HERE))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peer.settings")

import django  # noqa: E402

django.setup()

import load  # noqa: E402
from django.core import mail  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402


def max_followup_id():
    with connection.cursor() as cursor:
        return load.read_marker(cursor)["max_followup_id"]


def escalations_since(first_id):
    from helpdesk.models import FollowUp

    return FollowUp.objects.filter(id__gt=first_id, title="Ticket Escalated").count()


def uncapped_query_log():
    """CaptureQueriesContext counts the connection's query log, which keeps only the last 9,000
    queries (queries_limit): the escalation run makes more, so the log is made long enough."""
    connection.queries_limit = 10**8
    connection.queries_log = deque(maxlen=connection.queries_limit)


def run_escalate(before):
    mail.outbox = []
    uncapped_query_log()
    with CaptureQueriesContext(connection) as ctx:
        started = time.perf_counter()
        call_command("escalate_tickets")
        seconds = time.perf_counter() - started
    queries = len(ctx.captured_queries)  # read before the log is cleared: it is read lazily
    escalated = escalations_since(before)
    mail.outbox = []
    connection.queries_log.clear()
    return seconds, queries, escalated


def escalate(nothing_due_runs):
    load.reset()
    connection.close()
    base = max_followup_id()
    seconds, queries, escalations = run_escalate(base)
    print(
        f"escalate_tickets, many due: {escalations:,} escalated in {seconds:.1f} s, {queries:,} queries",
        file=sys.stderr,
        flush=True,
    )
    after = max_followup_id_now()
    runs = []
    for _ in range(nothing_due_runs):
        s, q, n = run_escalate(after)
        if n:
            sys.exit(f"escalate_tickets escalated {n} tickets when nothing was due")
        runs.append((s, q))
    load.reset()
    return {
        "escalate_seconds": round(seconds, 2),
        "escalations": escalations,
        "escalate_queries": queries,
        "nothing_due_seconds": round(statistics.median(s for s, _ in runs), 4),
        "nothing_due_queries": int(statistics.median(q for _, q in runs)),
    }


def max_followup_id_now():
    from helpdesk.models import FollowUp

    return FollowUp.objects.order_by("-id").values_list("id", flat=True).first() or 0


def timed_get(client, url, runs, warmup=3):
    for _ in range(warmup):
        response = client.get(url)
        if response.status_code != 200:
            sys.exit(f"GET {url}: {response.status_code}")
    times, counts = [], []
    for _ in range(runs):
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - started)
        if response.status_code != 200:
            sys.exit(f"GET {url}: {response.status_code}")
        counts.append(len(ctx.captured_queries))
    return statistics.median(times) * 1000, int(statistics.median(counts)), response


def pages(list_runs, view_runs):
    from django.contrib.auth import get_user_model
    from django.test import Client
    from helpdesk.models import Ticket

    # The list page's default query (helpdesk.views.staff.ticket_list, nothing filtered).
    list_url = staff_list_url()
    staff = get_user_model().objects.get(username="bench-staff")
    staff_client = Client(HTTP_HOST="127.0.0.1")
    staff_client.force_login(staff)
    list_ms, list_queries, response = timed_get(staff_client, list_url, list_runs)
    body = json.loads(response.content)
    rows, total = len(body["data"]), body["recordsTotal"]

    # An open ticket in the middle of the open ones, with its follow-ups.
    open_ids = Ticket.objects.filter(status__in=Ticket.OPEN_STATUSES).order_by("id")
    ticket = open_ids[open_ids.count() // 2]
    from urllib.parse import urlencode

    view_url = "/view/?" + urlencode(
        {"ticket": ticket.ticket_for_url, "email": ticket.submitter_email, "key": ticket.secret_key}
    )
    view_ms, view_queries, response = timed_get(Client(HTTP_HOST="127.0.0.1"), view_url, view_runs)
    if ticket.title.encode() not in response.content:
        sys.exit("the customer view did not show the ticket")
    print(
        f"list endpoint: {rows} rows of {total:,}; view: ticket {ticket.id}",
        file=sys.stderr,
        flush=True,
    )
    return {
        "list_ms": round(list_ms, 1),
        "list_queries": list_queries,
        "view_ms": round(view_ms, 2),
        "view_queries": view_queries,
        "list_url": list_url,
        "view_url": view_url,
        "session_cookie": f"sessionid={staff_client.cookies['sessionid'].value}",
    }


def list_query(search_string=""):
    """The staff list's default query (open and reopened tickets, by created) with a search string,
    as helpdesk.query encodes it."""
    from helpdesk.query import query_to_base64

    query = {"filtering": {"status__in": [1, 2]}, "sorting": "created", "search_string": search_string,
             "sortreverse": False}  # fmt: skip
    return query_to_base64(query)


def staff_list_url(search_string=""):
    """The staff list's data endpoint as its DataTable asks for the first page: the default query
    (open and reopened tickets, by created), 25 rows, with the list's search string."""
    return (
        f"/datatables_ticket_list/{list_query(search_string)}"
        "?draw=1&start=0&length=25&order%5B0%5D%5Bcolumn%5D=5&order%5B0%5D%5Bdir%5D=asc"
        "&search%5Bvalue%5D=&search%5Bregex%5D=false"
    )


def search(terms, runs):
    from django.contrib.auth import get_user_model
    from django.test import Client
    from helpdesk.query import get_query_class, last_followup_subquery
    from helpdesk.user import HelpdeskUser

    staff = get_user_model().objects.get(username="bench-staff")
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(staff)

    def alone(term):  # the search's own queries, as the data endpoint asks them: how many, then 25 rows
        found = get_query_class()(HelpdeskUser(staff), base64query=list_query(term)).get()  # as its view
        found = found.annotate(last_followup=last_followup_subquery())
        return found.count(), list(found.order_by("created")[:25])

    out = []
    for term in terms:
        alone(term)
        alone_times = []
        for _ in range(runs):
            started = time.perf_counter()
            alone(term)
            alone_times.append(time.perf_counter() - started)
        alone_ms = statistics.median(alone_times) * 1000
        ms, queries, response = timed_get(client, staff_list_url(term), runs, warmup=1)
        found = json.loads(response.content)["recordsFiltered"]
        # The page the list's search box submits (its filters and the words; the rows come from the
        # data endpoint above, which the page's table asks for once it has loaded).
        page_url = f"/tickets/?{urlencode({'status': [1, 2], 'q': term}, doseq=True)}"
        page_ms, page_queries, _ = timed_get(client, page_url, runs, warmup=1)
        out.append({"term": term, "ms": round(ms, 2), "queries": queries, "found": found, "alone_ms": round(alone_ms, 2),
                    "page_ms": round(page_ms, 2), "page_queries": page_queries})  # fmt: skip
        print(f"  peer search {term!r}: {ms:.1f} ms, {queries} queries, {found:,} found; the search alone "
              f"{alone_ms:.1f} ms; its page {page_ms:.1f} ms, {page_queries} queries", file=sys.stderr, flush=True)  # fmt: skip
    return {"searches": out}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["escalate", "pages", "search"])
    parser.add_argument("terms", nargs="*")
    parser.add_argument("--search-runs", type=int, default=3)
    parser.add_argument("--nothing-due-runs", type=int, default=5)
    parser.add_argument("--list-runs", type=int, default=20)
    parser.add_argument("--view-runs", type=int, default=200)
    args = parser.parse_args()
    if args.what == "search":
        result = search(args.terms, args.search_runs)
    else:
        result = escalate(args.nothing_due_runs) if args.what == "escalate" else pages(args.list_runs, args.view_runs)
    from importlib.metadata import version

    result["helpdesk_version"] = version("django-helpdesk")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
