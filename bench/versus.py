"""Our pages and the peer's under wrk in alternation, so that both meet the same machine.

    .venv/bin/python bench/versus.py          # after bench/dataset.py and bench/helpdesk/run.py

The machine's speed moves within a run (up to a third of the CPU stolen by its host): measured
ten minutes apart, as pages.py and helpdesk/run.py do, a page's requests per second change by
more than the ratios the goals ask for. Here both projects are served at once (gunicorn, 2 sync
workers each; the server not being measured sits idle, and each wrk run is followed by a pause
while the requests it left in flight finish) and wrk runs on our page and on the peer's, each
going first in turn, BENCH_VERSUS_ROUNDS times (7) for BENCH_VERSUS_SECONDS (8): the customer
ticket page against the peer's customer view, the staff queue against its staff list endpoint.
Each round gives a ratio; the figure is their median, printed with the rounds. Short runs in many
rounds: with 15-second runs in 3 rounds, our page served 174, 255 and 173 req/s a minute apart, so
that a round's ratio depended on which of the two runs met the faster minute. Writes
var/bench/versus.json for bench/run.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import pages  # noqa: E402  (sets the bench's SECRET_KEY before Django starts)
from common import RESULTS, setup, table  # noqa: E402

# bench/helpdesk/run.py (standard library only): the peer's venv, its server and its wrk.
_spec = importlib.util.spec_from_file_location("helpdesk_run", HERE / "helpdesk" / "run.py")
peer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(peer)

ROUNDS = int(os.environ.get("BENCH_VERSUS_ROUNDS", 7))
SECONDS = int(os.environ.get("BENCH_VERSUS_SECONDS", 8))
SETTLE = float(os.environ.get("BENCH_VERSUS_SETTLE", 6))
# (our page's label in pages.pages(), the peer's URL key in measure.py's output, the goal, the
# pause after a run: the ticket pages' requests take milliseconds, the peer's list about a second)
PAIRS = [
    ("customer ticket page", "view_url", 1.5, 1.0),
    ("staff queue (admin changelist)", "list_url", 10.0, SETTLE),
]


def settle(seconds: float = SETTLE) -> None:
    """When wrk stops, the requests it had sent are still being served (8 of the peer's list at
    about a second each): wait until they are done, so that they do not run during the next."""
    time.sleep(seconds)


def main():
    import dataset

    dataset.ensure()
    setup()
    ours = {label: (who, path) for label, who, path in pages.pages()}
    cookies = {}
    for who, _ in ours.values():
        if who not in cookies:
            cookies[who] = f"sessionid={pages.client_for(who).cookies['sessionid'].value}"
    peer.ensure_venv()
    theirs = json.loads(peer.peer("measure.py", "pages", "--list-runs", "1", "--view-runs", "1"))
    rounds = {label: [] for label, _, _, _ in PAIRS}
    peer_server, peer_port = peer.serve(pages.WORKERS)
    try:
        with pages.gunicorn() as port:
            urls = {}
            for label, key, _, _ in PAIRS:
                who, path = ours[label]
                urls[label] = (
                    f"http://127.0.0.1:{port}{path}",
                    cookies[who],
                    f"http://127.0.0.1:{peer_port}{theirs[key]}",
                )
                pages.warm(urls[label][0], urls[label][1])
                pages.warm(urls[label][2], theirs["session_cookie"])
            settle()
            print(f"wrk -t2 -c8 -d{SECONDS}s, ours and the peer's in turn, {ROUNDS} rounds:", flush=True)
            for n in range(1, ROUNDS + 1):
                for label, key, _, pause in PAIRS:
                    url, cookie, peer_url = urls[label]
                    peer_cookie = theirs["session_cookie"] if key == "list_url" else None
                    runs = {
                        "ours": lambda url=url, cookie=cookie: pages.wrk(url, cookie, SECONDS)["rps"],
                        "peer": lambda peer_url=peer_url, peer_cookie=peer_cookie: peer.wrk(
                            peer_url, SECONDS, peer_cookie
                        ),
                    }
                    measured = {}
                    for who in ("ours", "peer") if n % 2 else ("peer", "ours"):  # each goes first in turn
                        measured[who] = runs[who]()
                        settle(pause)
                    a, b = measured["ours"], measured["peer"]
                    rounds[label].append({"ours": a, "peer": b, "ratio": a / b})
                    print(f"  round {n}, {label}: {a:.1f} req/s against {b:.1f}: {a / b:.2f}x", flush=True)
    finally:
        peer_server.terminate()
        peer_server.wait(timeout=30)
    out = {
        label: {
            "rounds": rounds[label],
            "ratio": statistics.median(r["ratio"] for r in rounds[label]),
            "ours_rps": statistics.median(r["ours"] for r in rounds[label]),
            "peer_rps": statistics.median(r["peer"] for r in rounds[label]),
            "goal": goal,
        }
        for label, _, goal, _ in PAIRS
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "versus.json").write_text(json.dumps(out, indent=1))
    print()
    print(report(out))


def report(out: dict) -> str:
    rows = [
        [label, f"{r['ours_rps']:.1f}", f"{r['peer_rps']:.1f}", f"{r['ratio']:.2f}x",
         ", ".join(f"{x['ratio']:.2f}x" for x in r["rounds"]), f">= {r['goal']:g}x", "yes" if r["ratio"] >= r["goal"] else "**no**"]
        for label, r in out.items()
    ]  # fmt: skip
    head = ["page (against the peer's)", "ours, req/s", "peer, req/s", "median ratio", "each round", "goal", "met"]
    return table(head, rows)


if __name__ == "__main__":
    main()
