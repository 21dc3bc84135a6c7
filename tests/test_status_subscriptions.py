"""Public subscriptions to the status page (issue 20, item 6): anyone subscribes by email with no
account, per service or to all; double opt-in (the link shows a page, only a POST confirms);
one-click unsubscribe (RFC 8058) on every subscriber email; the form cannot flood a mailbox;
subscribers get maintenance notices of the services they follow, and a member who also subscribed
gets one copy. Frozen clocks; emails asserted as sent, headers included."""

import re
from datetime import datetime, timedelta
from email import message_from_bytes
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail, signing

from contracts.maintenance.services import window_cancel, window_publish, window_update
from contracts.maintenance.sweep import maintenance_notices_send_due
from contracts.models import StatusSubscriber
from contracts.subscribers.services import PER_ADDRESS, PER_SOURCE, RESEND_AFTER, manage_token_read, manage_url
from portal.models import OutboxMessage

pytestmark = pytest.mark.django_db
NBO = ZoneInfo("Africa/Nairobi")
NOW = datetime(2026, 10, 1, 9, 0, tzinfo=NBO)
START = datetime(2026, 10, 11, 23, 0, tzinfo=NBO)
H = timedelta(hours=1)
BASE = "https://portal.example"


@pytest.fixture(autouse=True)
def _https(settings):
    settings.PORTAL_BASE_URL = BASE  # List-Unsubscribe-Post is for an https link only (RFC 8058)


@pytest.fixture
def sent(django_capture_on_commit_callbacks):
    """The emails `run` sends (the outbox's workers run on commit), parsed as received, at `at`."""

    def run(at, action):
        mail.outbox.clear()
        with time_machine.travel(at, tick=False), django_capture_on_commit_callbacks(execute=True):
            result = action()
        return result, [message_from_bytes(m.message().as_bytes()) for m in mail.outbox]

    return run


def text_of(msg) -> str:
    return next(p for p in msg.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()


def subject(msg) -> str:
    return msg["Subject"].replace("\n", "")


def link(msg, path: str) -> str:
    return re.search(rf"{re.escape(BASE)}({re.escape(path)}[^\s\"<>]+/)", text_of(msg)).group(1)


def subscribe(client, email="eve@example.org", services=(), ip="198.51.100.7"):
    return client.post("/status/subscribe/", {"email": email, "services": [s.pk for s in services]}, REMOTE_ADDR=ip)


def subscribed(client, sent, email="eve@example.org", services=(), at=NOW):
    """Subscribe and confirm; the confirmation email's link."""
    _, [msg] = sent(at, lambda: subscribe(client, email, services))
    path = link(msg, "/status/subscriptions/confirm/")
    with time_machine.travel(at, tick=False):
        assert client.post(path).status_code == 200
    return StatusSubscriber.objects.get(email=email)


# --- Double opt-in --------------------------------------------------------------------------------
def test_the_form_sends_a_confirmation_and_only_a_post_on_its_link_confirms(client, sent, backup, assistant):
    response, [msg] = sent(NOW, lambda: subscribe(client, "Eve@Example.org", [backup]))
    assert response.status_code == 302 and response["Location"] == "/status/subscribe/sent/"
    assert "Check your inbox" in client.get(response["Location"]).content.decode()
    assert msg["To"] == "Eve@Example.org"
    assert subject(msg) == "Confirm your subscription to the SLA Portal status page"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["List-Unsubscribe"] is None  # nothing to unsubscribe from yet
    assert "status updates for Cloud Backup at Eve@Example.org" in text_of(msg)
    sub = StatusSubscriber.objects.get()
    assert (sub.address_key, sub.all_services, list(sub.services.all()), sub.confirmed_at) == (
        "eve@example.org", False, [backup], None,
    )  # fmt: skip

    path = link(msg, "/status/subscriptions/confirm/")
    with time_machine.travel(NOW + H, tick=False):
        page = client.get(path)  # a mail scanner following the link
        assert page.status_code == 200 and "Confirm my subscription" in page.content.decode()
        sub.refresh_from_db()
        assert sub.confirmed_at is None
        done = client.post(path)
    assert done.status_code == 200 and "now gets status updates for" in done.content.decode()
    sub.refresh_from_db()
    assert sub.confirmed_at == NOW + H and sub.active

    # Confirming twice is fine, says so, and changes nothing.
    with time_machine.travel(NOW + 2 * H, tick=False):
        again = client.post(path)
    assert again.status_code == 200 and "already confirmed" in again.content.decode()
    sub.refresh_from_db()
    assert sub.confirmed_at == NOW + H


def test_forged_altered_and_misused_links_are_a_clear_400(client, sent, backup):
    sub = subscribed(client, sent)
    forged = signing.dumps({"s": sub.pk, "r": sub.round}, salt="not-ours")
    for path in (
        f"/status/subscriptions/confirm/{forged}/",
        f"/status/subscriptions/{forged}/",
        "/status/subscriptions/confirm/garbage/",
        manage_url(sub).removeprefix(BASE)[:-3] + "xx/",  # altered
    ):
        for method in (client.get, client.post):
            response = method(path)
            assert response.status_code == 400, path
            assert "This link cannot be used" in response.content.decode()
    # A confirmation link is not a manage link, nor the reverse (salts of their own).
    token = manage_url(sub).rstrip("/").rsplit("/", 1)[1]
    assert client.post(f"/status/subscriptions/confirm/{token}/").status_code == 400
    # An expired confirmation link.
    _, [msg] = sent(NOW, lambda: subscribe(client, "late@example.org"))
    with time_machine.travel(NOW + timedelta(days=8), tick=False):
        response = client.post(link(msg, "/status/subscriptions/confirm/"))
    assert response.status_code == 400 and "expired" in response.content.decode()
    assert not StatusSubscriber.objects.get(address_key="late@example.org").confirmed_at


def test_an_old_confirmation_link_does_not_subscribe_again_after_an_unsubscribe(client, sent):
    _, [first] = sent(NOW, lambda: subscribe(client))
    old = link(first, "/status/subscriptions/confirm/")
    with time_machine.travel(NOW, tick=False):
        client.post(old)
    sub = StatusSubscriber.objects.get()
    client.post(manage_url(sub).removeprefix(BASE), {"action": "unsubscribe"})
    # Someone sends the form for the address again: a new round, a new link; the old one is void.
    _, [second] = sent(NOW + 2 * H, lambda: subscribe(client))
    with time_machine.travel(NOW + 3 * H, tick=False):
        response = client.post(old)
        assert response.status_code == 400 and "replaced by a newer one" in response.content.decode()
        sub.refresh_from_db()
        assert sub.round == 2 and sub.confirmed_at is None and sub.unsubscribed_at is None
        assert client.post(link(second, "/status/subscriptions/confirm/")).status_code == 200
    sub.refresh_from_db()
    assert sub.active


def page_text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", response.content.decode())).strip()


def test_the_confirmation_link_of_an_unsubscribed_address_says_so_and_how_to_subscribe_again(client, sent):
    """Unsubscribed is a state of its own: the link (still within its 7 days) neither claims the
    address gets updates nor that a newer link replaced it; it names the day and points to the form."""
    _, [msg] = sent(NOW, lambda: subscribe(client))
    path = link(msg, "/status/subscriptions/confirm/")
    with time_machine.travel(NOW + H, tick=False):
        assert client.post(path).status_code == 200
    sub = StatusSubscriber.objects.get()
    with time_machine.travel(NOW + 2 * H, tick=False):
        client.post(manage_url(sub).removeprefix(BASE), {"action": "unsubscribe"})

    # NOW + 2 h is 1 Oct 2026 11:00 Nairobi, 08:00 UTC.
    told = "eve@example.org was unsubscribed on 1 Oct 2026, 08:00 UTC: we send it no status updates."
    again = "To get status updates again, subscribe on the status page"
    page, _ = sent(NOW + 48 * H, lambda: client.get(path))
    assert page.status_code == 200 and told in page_text(page) and again in page_text(page)
    assert "gets status updates for" not in page_text(page) and "Confirm my subscription" not in page_text(page)
    assert 'href="/status/subscribe/"' in page.content.decode()
    pressed, emails = sent(NOW + 48 * H, lambda: client.post(path))
    assert pressed.status_code == 200 and f"{told} Nothing changed." in page_text(pressed)
    assert again in page_text(pressed)
    assert "replaced by a newer one" not in page_text(pressed) and "gets status updates for" not in page_text(pressed)
    assert emails == []
    sub.refresh_from_db()
    assert (sub.round, sub.confirmed_at, sub.unsubscribed_at, sub.active) == (1, NOW + H, NOW + 2 * H, False)


# --- The form cannot flood a mailbox -------------------------------------------------------------
def test_a_pending_address_gets_one_confirmation_per_interval(client, sent, backup, assistant):
    _, first = sent(NOW, lambda: subscribe(client, services=[backup]))
    _, second = sent(NOW + 10 * 60 * timedelta(seconds=1), lambda: subscribe(client, "EVE+x@example.org", [assistant]))
    assert len(first) == 1 and second == []  # the same mailbox (+tag, case): held
    sub = StatusSubscriber.objects.get()
    assert list(sub.services.all()) == [assistant]  # the latest choice is what the link confirms
    _, third = sent(NOW + RESEND_AFTER, lambda: subscribe(client, services=[assistant]))
    assert len(third) == 1
    # Both links name the same round: either confirms it.
    with time_machine.travel(NOW + RESEND_AFTER, tick=False):
        assert client.post(link(first[0], "/status/subscriptions/confirm/")).status_code == 200
    assert OutboxMessage.objects.filter(key__startswith=f"status-subscriber:{sub.pk}:r1:confirm:").count() == 2


def test_the_form_is_limited_per_address_and_per_network_address(client, sent):
    limit, window = PER_ADDRESS
    for i in range(limit):
        with time_machine.travel(NOW + i * RESEND_AFTER, tick=False):
            assert subscribe(client).status_code == 302
    with time_machine.travel(NOW + limit * RESEND_AFTER, tick=False):
        refused = subscribe(client)
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) == (window - limit * RESEND_AFTER).total_seconds()
    assert "subscription requests for this email address" in refused.content.decode()
    assert OutboxMessage.objects.count() == limit  # one confirmation per interval, none for the refused

    limit, _ = PER_SOURCE
    for i in range(limit):
        with time_machine.travel(NOW, tick=False):
            assert subscribe(client, f"victim{i}@example.org", ip="203.0.113.9").status_code == 302
    with time_machine.travel(NOW, tick=False):
        refused = subscribe(client, "one-more@example.org", ip="203.0.113.9")
        assert refused.status_code == 429 and "your network address" in refused.content.decode()
        assert subscribe(client, "one-more@example.org", ip="203.0.113.10").status_code == 302


def test_the_form_answers_bad_input_with_400_and_field_messages(client, backup):
    for body, field in (
        ({"email": "not an address"}, "email"),
        ({"email": "x" * 250 + "@example.org"}, "email"),
        ({"email": "eve@example.org", "services": ["999999"]}, "services"),
        ({"email": "eve@example.org", "services": ["abc"]}, "services"),
        ({"email": "eve@example.org", "services": ["9" * 25]}, "services"),  # no database integer
        ({}, "email"),
    ):
        response = client.post("/status/subscribe/", body)
        assert response.status_code == 400, body
        assert f'id="id_{field}_error"' in response.content.decode() or field in response.context["form"].errors
    assert not StatusSubscriber.objects.exists() and not OutboxMessage.objects.exists()
    assert client.get("/status/subscribe/").status_code == 200
    assert client.put("/status/subscribe/").status_code == 405


def test_a_subscribed_address_is_sent_its_manage_link_and_its_services_do_not_change(client, sent, backup, assistant):
    sub = subscribed(client, sent, services=[backup])
    response, [msg] = sent(NOW + RESEND_AFTER, lambda: subscribe(client, services=[assistant]))
    assert response["Location"] == "/status/subscribe/sent/"  # the same answer: it tells a stranger nothing
    assert subject(msg) == "Your subscription to the SLA Portal status page"
    assert "already subscribed, so nothing changed" in text_of(msg)
    with time_machine.travel(NOW + RESEND_AFTER, tick=False):
        manage = client.get(link(msg, "/status/subscriptions/"))
    assert manage.status_code == 200 and "Save my services" in manage.content.decode()
    assert manage.context["subscriber"] == sub
    assert list(sub.services.all()) == [backup]
    assert sent(NOW + RESEND_AFTER + H / 2, lambda: subscribe(client))[1] == []  # held


# --- Manage and unsubscribe -----------------------------------------------------------------------
def test_the_manage_page_changes_services_and_unsubscribes_clearly_twice(client, sent, backup, assistant):
    sub = subscribed(client, sent)
    path = manage_url(sub).removeprefix(BASE)
    page = client.get(path)
    assert page.status_code == 200 and "every service (and any we add later)" in page.content.decode()
    assert client.post(path, {"action": "save", "services": ["999999"]}).status_code == 400
    saved = client.post(path, {"action": "save", "services": [assistant.pk]})
    assert saved.status_code == 200 and "Saved" in saved.content.decode()
    sub.refresh_from_db()
    assert (sub.all_services, list(sub.services.all())) == (False, [assistant])
    assert client.post(path, {"action": "nonsense"}).status_code == 400
    with time_machine.travel(NOW + H, tick=False):
        done = client.post(path, {"action": "unsubscribe"})
    assert "we no longer send status updates" in done.content.decode()
    again = client.post(path, {"action": "unsubscribe"})  # a reused link
    assert again.status_code == 200 and "was already unsubscribed. Nothing changed." in again.content.decode()
    sub.refresh_from_db()
    assert sub.unsubscribed_at == NOW + H
    client.post(path, {"action": "resume"})
    sub.refresh_from_db()
    assert sub.active


# --- What subscribers get ------------------------------------------------------------------------
def publish(at, services, **kwargs):
    with time_machine.travel(at, tick=False):
        return window_publish(
            title=kwargs.pop("title", "Backup storage upgrade"), description="Backups are unavailable while we swap disks.",
            services=services, starts_at=START, ends_at=START + 2 * H, **kwargs,
        )  # fmt: skip


def test_subscribers_get_the_maintenance_notices_of_their_services_once_and_members_one_copy(
    client, sent, acme_contract, alice, bob, backup, assistant
):
    eve = subscribed(client, sent, "eve@example.org", [backup])
    subscribed(client, sent, "ivan@example.org", [assistant])  # another service
    subscribed(client, sent, "all@example.org")  # every service
    subscribed(client, sent, "ALICE+status@acme.example")  # Alice's own mailbox: she gets the member's copy
    _, [pending] = sent(NOW, lambda: subscribe(client, "pending@example.org"))
    gone = subscribed(client, sent, "gone@example.org")
    client.post(manage_url(gone).removeprefix(BASE), {"action": "unsubscribe"})

    w = publish(NOW, [backup])
    _, msgs = sent(w.notice_due_at, maintenance_notices_send_due)
    by_to = {m["To"]: m for m in msgs}
    assert sorted(by_to) == ["alice@acme.example", "all@example.org", "bob@acme.example", "eve@example.org"]
    to_eve = by_to["eve@example.org"]
    url = " ".join(to_eve["List-Unsubscribe"].split()).strip("<>")
    assert manage_token_read(url.rstrip("/").rsplit("/", 1)[1]) == eve  # Eve's own manage link
    assert subject(to_eve) == "Scheduled maintenance on 11 Oct 2026, 20:00 UTC: Backup storage upgrade"
    assert to_eve["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert to_eve["Auto-Submitted"] == "auto-generated"
    body = text_of(to_eve)
    assert "Services:    Cloud Backup" in body and "Starts:      Sun 11 Oct 2026, 20:00 UTC" in body
    assert f"Unsubscribe or choose your services: {url}" in body and "preferences" not in body
    assert "Hello Alice" not in body and "KAL-0001" not in body  # nothing of any customer's contract
    assert OutboxMessage.objects.filter(key=f"maintenance:{w.pk}:r1:announce:subscriber:{eve.pk}").exists()
    # A second sweep sends nothing again.
    assert sent(w.notice_due_at, maintenance_notices_send_due)[1] == []

    # The reminder; then the mail client's one-click POST (RFC 8058) unsubscribes Eve.
    _, msgs = sent(START - H, maintenance_notices_send_due)
    assert sorted(m["To"] for m in msgs) == [
        "alice@acme.example",
        "all@example.org",
        "bob@acme.example",
        "eve@example.org",
    ]
    assert subject(next(m for m in msgs if m["To"] == "eve@example.org")).startswith("Maintenance starts soon")
    one_click = client.post(url.removeprefix(BASE), {"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 200 and one_click.content == b"Unsubscribed.\n"
    eve.refresh_from_db()
    assert not eve.active

    # The cancellation goes to the subscribers who were told and are still subscribed.
    _, msgs = sent(START - H / 2, lambda: window_cancel(window=w))
    assert sorted(m["To"] for m in msgs) == ["alice@acme.example", "all@example.org", "bob@acme.example"]
    cancelled = next(m for m in msgs if m["To"] == "all@example.org")
    assert subject(cancelled) == "Cancelled maintenance: Backup storage upgrade"
    assert "is cancelled: it will not take place" in text_of(cancelled)


def test_subscribers_told_of_a_window_no_contract_was_told_of_hear_at_once_that_it_moved(client, sent, backup):
    """Whether anyone was told of a window counts the subscribers' notices too: a window on a service
    no contract runs (subscribers only) that moves after its announcement is news now, as a change."""
    eve = subscribed(client, sent, "eve@example.org", [backup])  # no contract on Cloud Backup
    w = publish(START - 24 * H, [backup])  # inside the horizon: announced at once
    _, [announced] = sent(START - 24 * H, maintenance_notices_send_due)
    assert announced["To"] == "eve@example.org"
    assert subject(announced) == "Scheduled maintenance on 11 Oct 2026, 20:00 UTC: Backup storage upgrade"

    # Staff move it five days on, far beyond the new start's 48-hour horizon.
    moved = START + 5 * 24 * H
    with time_machine.travel(START - 22 * H, tick=False):
        w = window_update(window=w, title=w.title, description=w.description, services=[backup],
                          starts_at=moved, ends_at=moved + 2 * H, impact=w.impact)  # fmt: skip
    assert w.revision == 2 and w.notice_due_at == START - 22 * H  # due at once, not at the horizon
    _, [changed] = sent(START - 22 * H + timedelta(minutes=1), maintenance_notices_send_due)
    assert changed["To"] == "eve@example.org"
    assert subject(changed) == "Changed maintenance on 16 Oct 2026, 20:00 UTC: Backup storage upgrade"
    assert "The maintenance we told you about has changed. This notice replaces the earlier one." in text_of(changed)
    assert "Starts:      Fri 16 Oct 2026, 20:00 UTC" in text_of(changed)
    assert OutboxMessage.objects.filter(key=f"maintenance:{w.pk}:r2:update:subscriber:{eve.pk}").exists()
    # Nothing more at the new start's horizon.
    assert sent(moved - 48 * H, maintenance_notices_send_due)[1] == []


def test_a_member_who_turned_maintenance_off_still_gets_the_copy_they_subscribed_to(client, sent, acme, alice, backup):
    from portal.core.notify_rules import Choice
    from portal.core.unsubscribe import preference_set

    from .factories import ContractFactory, UserFactory

    dan = UserFactory(email="dan@acme.example", name="Dan", organisation=acme)
    ContractFactory(organisation=acme, reference="KAL-0002", contacts=[alice], services=[backup])
    preference_set(user=dan, choice=Choice.MAINTENANCE, enabled=False, via="page")
    subscribed(client, sent, "dan@acme.example", [backup])
    w = publish(NOW, [backup])
    _, msgs = sent(w.notice_due_at, maintenance_notices_send_due)
    assert sorted(m["To"] for m in msgs) == ["alice@acme.example", "dan@acme.example"]
    assert subject(next(m for m in msgs if m["To"] == "dan@acme.example")).startswith("Scheduled maintenance on 11 Oct")


def test_subscribers_add_queries_per_batch_not_per_window_or_subscriber(client, sent, acme_contract, backup, assistant):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries(n_windows: int) -> int:
        OutboxMessage.objects.filter(key__startswith="maintenance:").delete()
        for i in range(n_windows):
            publish(NOW, [backup], title=f"Window {i}")
        with CaptureQueriesContext(connection) as ctx, time_machine.travel(START - 40 * H, tick=False):
            assert maintenance_notices_send_due(batch=5) == n_windows
        return len([q for q in ctx.captured_queries if "SAVEPOINT" not in q["sql"]])

    without = queries(5), queries(10)  # one batch, two batches; no subscriber
    for i in range(6):
        subscribed(client, sent, f"s{i}@example.org", [backup, assistant][: 1 + i % 2])
    with_them = queries(5), queries(10)
    print("queries per sweep of 5 and 10 windows, without and with 6 subscribers:", without, with_them)
    # Per batch, the followers and their services: one query more than without (the prefetch).
    assert with_them[0] == without[0] + 1 and with_them[1] == without[1] + 2
    assert OutboxMessage.objects.filter(key__contains=":announce:subscriber:").count() == 10 * 6
