"""Email in through IMAP, ours beside django-helpdesk 2.6.1's `get_email`, on the same mailbox.

    .venv/bin/python bench/mail_ingest.py [--profile]

1,000 messages: 800 new tickets from 100 customers (10 organisations of 10 support contacts, one
Kaluari contract each: support@kaluari.com is its level-1 email contact), then 200 replies to
them. Two throwaway Dovecot servers (tests/dovecot.py), one for each product, get the same 800
messages byte for byte (APPEND, with the same INTERNALDATE). Each product reads its mailbox:
ours with the beat task `tickets.tasks.poll_mailbox` (tickets.mailbox_poll and the ingest service,
200 messages a run, until the inbox is empty), the peer with `manage.py get_email` in its own venv
and database (bench/helpdesk/mail.py; it deletes what it files). Then each product's receipts are
answered the way a customer's mail client answers them, for the same 200 tickets (every 4th
message), with the same text quoting the receipt and a signature:
- to ours: To the receipt's Reply-To (the ticket's address), Subject "Re: " + the receipt's,
  In-Reply-To the receipt's Message-ID, References the receipt's References + its Message-ID.
  Our receipts are what our outbox worker sends (outbox_send_due into an in-memory backend, timed
  apart: the peer renders and sends its emails inside get_email, we do it in the worker).
- to the peer: To the queue's address, Subject "Re: " + its receipt's (which carries its
  "[support-N]" tag, how it threads), In-Reply-To a Message-ID of the receipt and References the
  customer's message + it. The peer keeps no Message-ID of what it sends (Django makes one at each
  send), so its receipt's id is one made the same way; it threads by the subject's tag.
Both products are measured in their own process: seconds (perf_counter), the process's CPU seconds
(process_time: what another program on the 2 cores does not change much) and every query.
Afterwards the outcome is compared: tickets filed, replies threaded onto the right ticket.

The floor, in the same run: a third Dovecot gets the same 1,000 messages (ours, byte for byte),
and our poller reads it with everything but the database and the ticket: the same fetch and move
(tickets.mailbox_poll.poll), each message parsed (tickets.inbound.parse: the envelope, the text,
the files) and its quoted history stripped (route.latest_reply), nothing stored. No design that
reads the mailbox with imap-tools and parses with Python's email package takes less; the peer's
time over the floor's is the most any such design could reach against it.

Databases: ours BENCH_MAIL_DATABASE_URL (default .../sla_bench_mail), the peer's
HELPDESK_MAIL_DATABASE_URL (default .../sla_helpdesk_mail); both dropped and rebuilt every run.
Writes var/bench/mail_ingest.json (bench/run.py's summary reads it); --profile writes a cProfile
of our ingest to var/bench/mail_ingest.prof and prints its top functions.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "helpdesk"))
import common  # noqa: E402
from common import RESULTS, ROOT, table  # noqa: E402

BASE = "postgres://postgres@127.0.0.1:5432"
OURS_DB = os.environ.get("BENCH_MAIL_DATABASE_URL", f"{BASE}/sla_bench_mail")
PEER_DB = os.environ.get("HELPDESK_MAIL_DATABASE_URL", f"{BASE}/sla_helpdesk_mail")
ORGS, PER_ORG, NEW, REPLIES = 10, 10, 800, 200
SUPPORT = "support@kaluari.com"
NOW = datetime.now(UTC).replace(microsecond=0)
FILED_FROM = NOW - timedelta(hours=20)  # the new tickets' INTERNALDATEs, a minute apart
REPLIED_FROM = NOW - timedelta(hours=2)  # the replies', ten seconds apart (after every filing)


def say(message: str) -> None:
    print(f"[mail {datetime.now():%H:%M:%S}] {message}", flush=True)


# --- The messages -----------------------------------------------------------------------------------
def customer(i: int) -> tuple[str, str]:
    c = i % (ORGS * PER_ORG)
    return f"Customer {c:03d}", f"c{c:03d}@org{c // PER_ORG:02d}.example"


def message_id(kind: str, i: int) -> str:
    return f"<{kind}-{i}@{customer(i)[1].split('@')[1]}>"


def from_customer(i: int, *, kind: str, to: str, subject: str, at: datetime, **headers: str) -> EmailMessage:
    name, address = customer(i)
    msg = EmailMessage()
    msg["Return-Path"] = f"<{address}>"
    msg["From"] = f"{name} <{address}>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id(kind, i)
    for header, value in headers.items():
        msg[header.replace("_", "-").title()] = value
    msg["Date"] = format_datetime(at)
    return msg


def new_ticket(i: int) -> bytes:
    subject = f"Restore of job {i} fails with error {1000 + i}"
    msg = from_customer(i, kind="case", to=SUPPORT, subject=subject, at=FILED_FROM + timedelta(minutes=i))
    text = (
        f"Hello support,\n\nthe nightly restore of job {i} fails since yesterday with error {1000 + i}.\n"
        f"The backup itself completes; the restore stops at 40%.\n\nRegards,\n{customer(i)[0]}\n"
    )
    msg.set_content(text)
    if i % 2:  # half of them from a client that sends HTML too
        msg.add_alternative(f"<p>{text.replace(chr(10) * 2, '</p><p>')}</p>", subtype="html")
    return bytes(msg)


def reply(i: int, *, to: str, subject: str, in_reply_to: str, references: str) -> bytes:
    msg = from_customer(i, kind="reply", to=to, subject=f"Re: {subject}", in_reply_to=in_reply_to,
                        references=references, at=REPLIED_FROM + timedelta(seconds=10 * i))  # fmt: skip
    msg.set_content(
        f"Thanks, job {i} restores again after the agent update.\n\n--\n{customer(i)[0]}\nOperations\n\n"
        f"On {format_datetime(FILED_FROM)}, Support wrote:\n> We received your message and opened a ticket.\n"
        f"> Reply to this email to add to it.\n"
    )
    return bytes(msg)


def internaldate(at: datetime) -> str:
    return f'"{at:%d-%b-%Y %H:%M:%S} +0000"'


def append(dovecot, messages: list[tuple[bytes, datetime]]) -> None:
    with dovecot.client() as imap:
        for raw, at in messages:
            typ, data = imap.append("INBOX", None, internaldate(at), raw)
            assert typ == "OK", data


# --- Ours ---------------------------------------------------------------------------------------------
def ours_setup() -> None:
    os.environ["BENCH_DATABASE_URL"] = OURS_DB
    common.create_database(drop=True)
    common.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    say("migrating our database")
    call_command("migrate", verbosity=0, interactive=False)
    from tests.factories import ContractFactory, OrganisationFactory, ServiceFactory, UserFactory

    service = ServiceFactory(name="Cloud Backup", slug="cloud-backup")
    for o in range(ORGS):
        org = OrganisationFactory(name=f"Org {o:02d}", slug=f"org-{o:02d}")
        people = [
            UserFactory(email=customer(o * PER_ORG + p)[1], name=customer(o * PER_ORG + p)[0], organisation=org,
                        password=None)
            for p in range(PER_ORG)
        ]  # fmt: skip
        ContractFactory(organisation=org, reference=f"KAL-{o:04d}", contacts=people[:1], services=[service])


def ours_poll(dovecot, *, profile: cProfile.Profile | None) -> dict:
    """The beat task until the inbox is empty: seconds and queries of it all."""
    from django.conf import settings

    from portal.domain.mail_urls import imap_url
    from tickets import tasks

    settings.INBOUND_IMAP = imap_url(dovecot.url())
    runs, seconds, queries, cpu = [], 0.0, 0, 0.0
    while dovecot.count("INBOX"):
        if profile:
            profile.enable()
        started = time.process_time()
        result, dt, q = common.counted(tasks.poll_mailbox)
        cpu += time.process_time() - started
        if profile:
            profile.disable()
        runs.append(result)
        seconds, queries = seconds + dt, queries + q
        if len(runs) > 20:
            sys.exit(f"the inbox does not empty: {runs}")
    return {"seconds": seconds, "cpu_seconds": cpu, "queries": queries, "runs": runs}


def ours_send() -> tuple[list, float]:
    """The outbox worker's part: render and send every email the ingest wrote (in-memory backend)."""
    from django.core import mail

    from portal.core.delivery import outbox_send_due

    mail.outbox = []
    started = time.perf_counter()
    while outbox_send_due(batch=200):
        pass
    return list(mail.outbox), time.perf_counter() - started


def ours_replies(sent: list, chosen: list[int]) -> list[bytes]:
    receipts = {m.extra_headers.get("In-Reply-To"): m for m in sent if m.extra_headers.get("In-Reply-To")}
    out = []
    for i in chosen:
        r = receipts[message_id("case", i)]
        h = r.extra_headers
        out.append(reply(i, to=h["Reply-To"], subject=r.subject, in_reply_to=h["Message-ID"],
                         references=f"{h['References']} {h['Message-ID']}"))  # fmt: skip
    return out


def ours_outcome(chosen: list[int]) -> dict:
    from tickets.models import InboundMessage, Ticket

    outcomes = {}
    for row in InboundMessage.objects.values_list("outcome", flat=True):
        outcomes[row] = outcomes.get(row, 0) + 1
    right = 0
    for i in chosen:
        row = InboundMessage.objects.filter(message_id=message_id("reply", i)).first()
        right += bool(row and row.outcome == "replied" and row.ticket.email_origin == message_id("case", i))
    return {"tickets": Ticket.objects.filter(kind=Ticket.Kind.SUPPORT).count(), "outcomes": outcomes,
            "replies_on_their_ticket": right}  # fmt: skip


# --- The floor ---------------------------------------------------------------------------------------
def floor_poll(dovecot) -> dict:
    """The poller's IMAP work and each message's parse, nothing stored: seconds of it all."""
    import contextlib

    from django.conf import settings

    from portal.domain.mail_urls import imap_url
    from tickets.inbound import parse
    from tickets.inbound.route import latest_reply
    from tickets.mailbox_poll import poll

    def read(raw, **_):  # an outcome the poller takes as stored, so that it moves the message
        msg = parse.parse(raw)
        parse.envelope(msg)
        latest_reply(parse.content(msg, max_file_bytes=settings.ATTACHMENT_MAX_BYTES).text)
        return SimpleNamespace(taken=True, kind="read")

    config = imap_url(dovecot.url())
    seconds, cpu = 0.0, 0.0
    while dovecot.count("INBOX"):
        started, started_cpu = time.perf_counter(), time.process_time()
        poll(config=config, processed_folder="Processed", batch=200, ingest=read,
             group=lambda raws, savepoints: contextlib.nullcontext())  # fmt: skip
        seconds += time.perf_counter() - started
        cpu += time.process_time() - started_cpu
    return {"seconds": seconds, "cpu_seconds": cpu}


# --- The peer -----------------------------------------------------------------------------------------
def peer(*args: str) -> dict | None:
    import run as peer_run  # bench/helpdesk/run.py: its venv and environment

    env = {**peer_run.peer_env(), "HELPDESK_DATABASE_URL": PEER_DB}
    done = subprocess.run([str(peer_run.PY), "mail.py", *args], cwd=HERE / "helpdesk", env=env, check=True,
                          stdout=subprocess.PIPE, text=True)  # fmt: skip
    lines = done.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else None


def peer_replies(sent: list[dict], chosen: list[int]) -> list[bytes]:
    out = []
    for i in chosen:
        address = customer(i)[1]
        subject = f"Restore of job {i} fails with error {1000 + i}"
        r = next(m for m in sent if m["to"] == [address] and subject in m["subject"])
        out.append(reply(i, to=SUPPORT, subject=r["subject"], in_reply_to=r["message_id"],
                         references=f"{message_id('case', i)} {r['message_id']}"))  # fmt: skip
    return out


def peer_outcome(result: dict, chosen: list[int], ticket_of: dict[int, int]) -> dict:
    tickets = result["tickets"]
    twice = {int(t) for t, v in tickets.items() if v["followups"] >= 2}
    return {"tickets": len(tickets), "with_a_reply": len(twice),
            "replies_on_their_ticket": sum(ticket_of[i] in twice for i in chosen)}  # fmt: skip


# --- The run ------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    started = time.monotonic()
    load = os.getloadavg()
    say(f"load average at start: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} cores")
    import run as peer_run

    peer_run.ensure_venv()
    ours_setup()
    from tests.dovecot import dovecot_server

    profile = cProfile.Profile() if args.profile else None
    chosen = list(range(0, NEW, NEW // REPLIES))
    with dovecot_server() as mine, dovecot_server() as theirs, dovecot_server() as floor:
        say("the peer's database and queue")
        peer("setup", theirs.host, str(theirs.port), theirs.user, theirs.password)
        new = [(new_ticket(i), FILED_FROM + timedelta(minutes=i)) for i in range(NEW)]
        append(mine, new)
        append(theirs, new)
        append(floor, new)
        say(f"{NEW} new tickets: ours")
        ours_new = ours_poll(mine, profile=profile)
        say(f"{NEW} new tickets: the peer")
        peer_new = peer("poll")
        say(f"{NEW} new tickets: the floor")
        floor_new = floor_poll(floor)
        sent, send_seconds = ours_send()
        ticket_of = peer_ticket_of(peer_new["sent"])
        when = [REPLIED_FROM + timedelta(seconds=10 * i) for i in chosen]
        append(mine, list(zip(ours_replies(sent, chosen), when, strict=True)))
        append(floor, list(zip(ours_replies(sent, chosen), when, strict=True)))
        append(theirs, list(zip(peer_replies(peer_new["sent"], chosen), when, strict=True)))
        say(f"{REPLIES} replies: ours")
        ours_rep = ours_poll(mine, profile=profile)
        say(f"{REPLIES} replies: the peer")
        peer_rep = peer("poll")
        say(f"{REPLIES} replies: the floor")
        floor_rep = floor_poll(floor)
        left = {"ours": mine.count("INBOX"), "peer": theirs.count("INBOX")}
    common.purge_broker()
    result = {
        "when": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "load_at_start": round(load[0], 2),
        "load_at_end": round(os.getloadavg()[0], 2),
        "messages": NEW + REPLIES,
        "ours": {
            "new": {k: ours_new[k] for k in ("seconds", "cpu_seconds", "queries")},
            "replies": {k: ours_rep[k] for k in ("seconds", "cpu_seconds", "queries")},
            "runs": ours_new["runs"] + ours_rep["runs"],
            "send_seconds": send_seconds,
            "emails_sent": len(sent),
            "outcome": ours_outcome(chosen),
            "left_in_inbox": left["ours"],
        },
        "floor": {"new": floor_new, "replies": floor_rep},
        "peer": {
            "new": {k: peer_new[k] for k in ("seconds", "cpu_seconds", "queries")},
            "replies": {k: peer_rep[k] for k in ("seconds", "cpu_seconds", "queries")},
            "emails_sent": len(peer_new["sent"]) + len(peer_rep["sent"]),
            "outcome": peer_outcome(peer_rep, chosen, ticket_of),
            "left_in_inbox": left["peer"],
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "mail_ingest.json").write_text(json.dumps(result, indent=2) + "\n")
    print(report(result))
    if profile:
        path = RESULTS / "mail_ingest.prof"
        profile.dump_stats(path)
        print(f"\ncProfile of our ingest ({path.relative_to(ROOT)}), by cumulative time:")
        pstats.Stats(profile).sort_stats("cumulative").print_stats(40)
    say(f"{time.monotonic() - started:.0f} s in all; load average at the end {os.getloadavg()[0]:.1f}")


def peer_ticket_of(sent: list[dict]) -> dict[int, int]:
    """Message index -> the peer's ticket id, read from its receipts' "[support-N]" subjects."""
    import re

    out = {}
    for m in sent:
        tag, job = re.search(r"\[support-(\d+)\]", m["subject"]), re.search(r"job (\d+) fails", m["subject"])
        if tag and job and m["to"] == [customer(int(job.group(1)))[1]]:
            out[int(job.group(1))] = int(tag.group(1))
    return out


def per_message(side: dict, n: int) -> tuple[float, float]:
    seconds = side["new"]["seconds"] + side["replies"]["seconds"]
    queries = side["new"]["queries"] + side["replies"]["queries"]
    return seconds / n * 1e3, queries / n


def report(r: dict) -> str:
    ours, peer_ = r["ours"], r["peer"]
    rows = []
    for label, key, n in (("800 new tickets", "new", NEW), ("200 replies", "replies", REPLIES)):
        o, p = ours[key], peer_[key]
        rows.append([label, f"{o['seconds']:.2f} s, {o['queries'] / n:.1f} q a message",
                     f"{p['seconds']:.2f} s, {p['queries'] / n:.1f} q a message",
                     f"{p['seconds'] / o['seconds']:.1f}x"])  # fmt: skip
    o_ms, o_q = per_message(ours, r["messages"])
    p_ms, p_q = per_message(peer_, r["messages"])
    rows.append(["per message, all 1,000", f"{o_ms:.1f} ms, {o_q:.1f} q", f"{p_ms:.1f} ms, {p_q:.1f} q",
                 f"{p_ms / o_ms:.1f}x"])  # fmt: skip
    for label, key, n in (
        ("CPU of the process, per message: new tickets", "new", NEW),
        ("replies", "replies", REPLIES),
    ):
        o, p = ours[key]["cpu_seconds"] / n * 1e3, peer_[key]["cpu_seconds"] / n * 1e3
        rows.append([label, f"{o:.2f} ms", f"{p:.2f} ms", f"{p / o:.1f}x"])
    o_cpu = (ours["new"]["cpu_seconds"] + ours["replies"]["cpu_seconds"]) / r["messages"] * 1e3
    p_cpu = (peer_["new"]["cpu_seconds"] + peer_["replies"]["cpu_seconds"]) / r["messages"] * 1e3
    rows.append(["CPU of the process, per message, all 1,000", f"{o_cpu:.2f} ms", f"{p_cpu:.2f} ms",
                 f"{p_cpu / o_cpu:.1f}x"])  # fmt: skip
    with_send = o_ms + ours["send_seconds"] / r["messages"] * 1e3
    rows.append(["per message, ours with the worker rendering and sending our emails",
                 f"{with_send:.1f} ms ({ours['emails_sent']} emails in {ours['send_seconds']:.1f} s)",
                 f"{p_ms:.1f} ms ({peer_['emails_sent']} emails, inside get_email)", f"{p_ms / with_send:.1f}x"])  # fmt: skip
    if "floor" in r:  # files written before session 18 have none
        f = r["floor"]
        f_ms = (f["new"]["seconds"] + f["replies"]["seconds"]) / r["messages"] * 1e3
        f_cpu = (f["new"]["cpu_seconds"] + f["replies"]["cpu_seconds"]) / r["messages"] * 1e3
        rows.append(["the floor: the same fetch, parse and move, nothing stored (per message; CPU)",
                     f"{f_ms:.2f} ms; {f_cpu:.2f} ms", f"the peer over the floor: {p_ms / f_ms:.1f}x; CPU "
                     f"{p_cpu / f_cpu:.1f}x", ""])  # fmt: skip
    oo, po = ours["outcome"], peer_["outcome"]
    rows.append(["tickets", oo["tickets"], po["tickets"], ""])
    rows.append(["replies threaded onto their ticket", f"{oo['replies_on_their_ticket']} of {REPLIES}",
                 f"{po['replies_on_their_ticket']} of {REPLIES}", ""])  # fmt: skip
    rows.append(["left in the inbox", ours["left_in_inbox"], peer_["left_in_inbox"], ""])
    head = ["1,000 messages through IMAP (Dovecot)", "ours (poll_mailbox)", "django-helpdesk 2.6.1 get_email", "ratio"]
    return (f"{r['when']}, load average {r['load_at_start']} at the start, {r['load_at_end']} at the end; "
            f"our outcomes {oo['outcomes']}\n\n" + table(head, rows))  # fmt: skip


if __name__ == "__main__":
    main()
