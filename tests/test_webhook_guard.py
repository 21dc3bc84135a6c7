"""The SSRF guard of webhook deliveries (portal.core.safe_http): https only, every resolved address
public, the connection made to the checked address (no second resolution), redirects not followed,
and time and size bounded. The refusals are tested with a mocked resolver and never open a
connection to such an address; the bounds against the real local TLS receiver."""

from __future__ import annotations

import socket
import ssl
import time
from unittest import mock

import pytest

from portal.core import safe_http
from portal.core.safe_http import Refused, address_refusal, check_destination, parse_url, post
from portal.core.webhook_delivery import webhooks_send_due
from portal.core.webhooks import HookEvent, webhooks_emit
from portal.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db
PUBLIC_V4, PUBLIC_V6 = "93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"


def answers(*addresses):
    """A getaddrinfo that answers `addresses` for any host, counting its calls."""

    def getaddrinfo(host, port, *args, **kwargs):
        getaddrinfo.calls.append(host)
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses
        ]

    getaddrinfo.calls = []
    return mock.patch.object(safe_http.socket, "getaddrinfo", getaddrinfo), getaddrinfo


def no_connection():
    return mock.patch.object(
        safe_http.socket, "create_connection", side_effect=AssertionError("no connection may be opened")
    )


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"),
        ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"), ("fc00::1", "private"),
        ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"), ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"), ("0.0.0.0", "unspecified"), ("::", "unspecified"),
        ("100.64.0.1", "not public"), ("192.0.2.10", "private"),
        ("::ffff:127.0.0.1", "loopback"), ("::ffff:10.0.0.1", "private"),
        # 6to4 carries an IPv4 address a tunnel sends to (Python before 3.11.10 calls these global)
        ("2002:7f00:1::1", "loopback"), ("2002:a00:1::1", "private"), ("2002:a9fe:a9fe::1", "link-local"),
        ("2002:808:808::1", None),
        (PUBLIC_V4, None), (PUBLIC_V6, None), ("8.8.8.8", None),
    ],
)  # fmt: skip
def test_every_non_public_address_is_refused(address, why):
    assert address_refusal(address) == why


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://hooks.example.com/x", "The URL must start with https://"),
        ("ftp://hooks.example.com/x", "The URL must start with https://"),
        ("https:///path", "The URL has no host."),
        ("https://user:pw@hooks.example.com/", "must not carry a user name or password"),
        ("https://hooks.example.com:99999/", "This is not a valid URL"),
        ("hooks.example.com", "The URL must start with https://"),
    ],
)
def test_urls_that_are_not_plain_https_are_refused(url, message):
    with pytest.raises(Refused, match=message.replace("(", r"\(").replace(".", r"\.")):
        parse_url(url)


@pytest.mark.parametrize(
    "url", ["https://127.0.0.1/hook", "https://10.0.0.8/hook", "https://[::1]/hook", "https://169.254.169.254/latest"]
)
def test_an_address_literal_that_is_not_public_is_refused(url):
    with no_connection(), pytest.raises(Refused, match="deliveries go to public addresses only"):
        post(url, b"{}", {})


def test_one_private_address_among_the_answers_refuses_the_host(settings):
    patched, resolver = answers(PUBLIC_V4, "10.0.0.7")
    with patched, no_connection(), pytest.raises(Refused) as refused:
        post("https://hooks.example.com/sla", b"{}", {})
    assert str(refused.value) == (
        "hooks.example.com resolves to 10.0.0.7, which is a private address: deliveries go to public addresses only."
    )
    settings.WEBHOOK_ALLOWED_HOSTS = ["hooks.example.com"]  # the tests' allow-list skips the check
    with patched:
        assert check_destination("https://hooks.example.com/sla").host == "hooks.example.com"


def test_an_unresolvable_host_is_refused():
    def fail(*args, **kwargs):
        raise socket.gaierror("Name or service not known")

    with (
        mock.patch.object(safe_http.socket, "getaddrinfo", fail),
        pytest.raises(Refused, match="could not be resolved"),
    ):
        check_destination("https://nowhere.invalid/")


def test_the_connection_goes_to_the_checked_address_without_resolving_again():
    patched, resolver = answers(PUBLIC_V4, PUBLIC_V6)
    connect = mock.Mock(side_effect=ConnectionRefusedError("refused"))
    with patched, mock.patch.object(safe_http.socket, "create_connection", connect), pytest.raises(OSError):
        post("https://hooks.example.com:8443/sla", b"{}", {})
    assert resolver.calls == ["hooks.example.com"]  # once
    assert [c.args[0] for c in connect.call_args_list] == [(PUBLIC_V4, 8443), (PUBLIC_V6, 8443)]
    assert {c.kwargs["timeout"] for c in connect.call_args_list} == {5.0}


def test_a_delivery_to_a_host_that_now_resolves_privately_is_refused_and_retried(alice):
    endpoint = WebhookEndpoint.objects.create(
        organisation=alice.organisation, url="https://hooks.example.com/sla", events=["ticket.updated"],
        secret="whsec_x", created_at="2026-12-01T00:00:00Z",
    )  # fmt: skip
    webhooks_emit(events=[HookEvent(alice.organisation_id, "ticket.updated", "k", {})])
    patched, _ = answers("127.0.0.1")  # DNS changed since registration
    with patched, no_connection():
        assert webhooks_send_due() == 0
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.status == "pending" and delivery.attempts == 1
    assert "resolves to 127.0.0.1, which is a loopback address" in delivery.last_error


# --- Bounded, against the real receiver ------------------------------------------------------------
def test_a_10_mb_response_is_read_only_to_its_bound(receiver, settings):
    receiver.default = "huge"
    started = time.monotonic()
    response = post(receiver.url, b"{}", {"Content-Type": "application/json"})
    assert time.monotonic() - started < 5
    assert (response.status, len(response.body), response.truncated) == (200, 64 * 1024, True)


def test_a_huge_answer_still_acknowledges_and_the_page_shows_it_cut(receiver, alice):
    endpoint = WebhookEndpoint.objects.create(
        organisation=alice.organisation, url=receiver.url, events=["ticket.updated"], secret="whsec_x",
        created_at="2026-12-01T00:00:00Z",
    )  # fmt: skip
    webhooks_emit(events=[HookEvent(alice.organisation_id, "ticket.updated", "k", {})])
    receiver.default = "huge"
    assert webhooks_send_due() == 1
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.last_response.endswith("[response cut at 64 KB]") and len(delivery.last_response) < 1100


def test_a_silent_endpoint_times_out(receiver, settings):
    settings.WEBHOOK_READ_TIMEOUT = 0.5
    receiver.default = "slow"
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        post(receiver.url, b"{}", {})
    assert time.monotonic() - started < 3


def test_an_endpoint_that_drips_its_answer_is_cut_off_at_the_total_deadline(receiver, settings):
    settings.WEBHOOK_READ_TIMEOUT = 5.0  # every byte comes in time ...
    settings.WEBHOOK_TOTAL_TIMEOUT = 1.0  # ... but the whole answer does not
    receiver.default = "drip"
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="longer than 1 s in all; cut off"):
        post(receiver.url, b"{}", {})
    assert time.monotonic() - started < 3


def test_a_certificate_we_do_not_trust_is_refused(receiver, settings):
    settings.WEBHOOK_CA_FILE = None  # the system's CAs do not know the receiver's self-signed certificate
    with pytest.raises(ssl.SSLCertVerificationError):
        post(receiver.url, b"{}", {})
    assert receiver.received == []


@pytest.mark.parametrize(
    "exc, words",
    [
        (
            ConnectionRefusedError(111, "Connection refused"),
            "The connection was refused: nothing answers on that port.",
        ),
        (TimeoutError("timed out"), "No answer in time (at most 5 s to connect, 10 s of silence)."),
        (ConnectionResetError(104, "Connection reset by peer"), "The connection was closed before an answer came."),
        (OSError(101, "Network is unreachable"), "The connection failed (Network is unreachable)."),
    ],
)
def test_a_failed_delivery_says_why_in_words_not_as_a_python_exception(alice, exc, words):
    endpoint = WebhookEndpoint.objects.create(
        organisation=alice.organisation, url="https://hooks.example.com/sla", events=["ticket.updated"],
        secret="whsec_x", created_at="2026-12-01T00:00:00Z",
    )  # fmt: skip
    webhooks_emit(events=[HookEvent(alice.organisation_id, "ticket.updated", "k", {})])
    patched, _ = answers(PUBLIC_V4)
    with patched, mock.patch.object(safe_http.socket, "create_connection", side_effect=exc):
        assert webhooks_send_due() == 0
    assert WebhookDelivery.objects.get(endpoint=endpoint).last_error == words
