"""Hostile input, generated with hypothesis, against the forms and APIs that take it: the ticket form
and API, the claim form and API, the Alertmanager webhook, the vulnerability-report form and the
login form. Malformed JSON, wrong types, control characters, very long strings, huge bodies,
SQL- and HTML-looking text: the answer is a 400 with messages (401, 413 or 415 where that is the
documented answer; the login form answers 200 with its error, or 429 once django-axes locks; the
webhook answers a notification of bad alerts with a 200 that lists each as refused, and why),
never a 5xx; nothing is stored; and an HTML-looking value echoed back in a page is escaped.

Each generated request is broken on purpose (one to three fields from each endpoint's BREAKERS,
the other fields valid but hostile-looking), so a 400 is always the right answer; the first tests
check that the unbroken bodies are indeed accepted. Clocks frozen at 2026-11-03 10:00 in Nairobi:
October 2026 has ended and its claims are open."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.test import Client
from django.utils.html import escape
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from knox.models import AuthToken

from contracts.models import Contract, Organisation, Outage, OutageUpdate
from contracts.outages.alerts import service_rotate_webhook_token
from contracts.webhooks import EXAMPLE, MAX_BODY
from credits.closing import close_month
from credits.models import Claim, ClaimAttachment, ClaimEvent, MonthlyUptime
from portal.models import AuditEntry, OutboxMessage, User
from tickets.models import Attachment, EscalationRequest, Ticket, TicketEvent, TicketMessage
from tickets.services import ticket_open

from .factories import PASSWORD, ServiceFactory

pytestmark = pytest.mark.django_db

NBO = ZoneInfo("Africa/Nairobi")
NOW = datetime(2026, 11, 3, 10, 0, tzinfo=NBO)
OCT = date(2026, 10, 1)
HUGE = 3 * 1024 * 1024  # over DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB)

HOSTILE = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # the world is built once per test; each example checks its own rows
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

# --- Hostile-looking text ------------------------------------------------------------------------
HTML = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(document.cookie)>',
    "</textarea><svg onload=alert(1)>",
    "<a href=\"javascript:alert('x')\">click</a>",
    "<iframe srcdoc='&lt;script&gt;alert(1)&lt;/script&gt;'></iframe>",
    "{{ request.user.password }}{% debug %}",
]
SQL = [
    "' OR '1'='1",
    "1; DROP TABLE tickets_ticket; --",
    '" OR 1=1 --',
    "' UNION SELECT password, email FROM portal_user --",
    "%' AND 1=0 --",
    "'; SELECT pg_sleep(5); --",
]
looks_hostile = st.sampled_from(HTML + SQL)
# Hostile but well-formed single-line text (also valid where a line break is not allowed).
one_line = st.one_of(looks_hostile, st.builds("{} {}".format, looks_hostile, looks_hostile))
any_text = st.one_of(one_line, st.text(max_size=300))  # any unicode: controls, RTL marks, emoji, NUL
control = st.characters(categories=["Cc"], exclude_characters="\t\n\r")


def control_inside(alphabet="abc"):
    """A C0/C1 control character inside text (a form strips them only at the ends)."""
    return st.builds(
        "{}{}{}".format, st.text(alphabet, min_size=1, max_size=5), control, st.text(alphabet, min_size=1, max_size=5)
    )


def longer_than(limit: int):
    return st.integers(limit + 1, limit + 2000).map(lambda n: "A" * n)


WRONG_TYPES = st.sampled_from([None, True, [], {}, ["a", "b"], {"$gt": ""}])  # numbers are taken as their text
BIG = 10**30


class Ref:
    """A placeholder for an object of the world, replaced when the request is built."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self):
        return f"<{self.name}>"


FOREIGN_CONTRACT, FOREIGN_TICKET, FOREIGN_SERVICE = Ref("globex contract"), Ref("globex ticket"), Ref("ai-assistant")


def resolve(value, world: dict):
    if isinstance(value, Ref):
        return world[value.name]
    if isinstance(value, list):
        return [resolve(v, world) for v in value]
    if isinstance(value, dict):
        return {k: resolve(v, world) for k, v in value.items()}
    return value


def breaking(breakers: dict):
    """One to three fields of a body, each replaced by a value that makes the request invalid."""
    pairs = st.one_of(*(st.tuples(st.just(k), s) for k, s in breakers.items()))
    return st.lists(pairs, min_size=1, max_size=3, unique_by=lambda kv: kv[0]).map(dict)


# --- The world -----------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def world(settings, tmp_path, acme_contract, alice, globex_contract, charlie) -> dict:
    settings.MEDIA_ROOT = tmp_path
    service = acme_contract.services.get()
    assistant = ServiceFactory(name="AI Assistant", slug="ai-assistant")
    globex_contract.services.set([assistant])
    with time_machine.travel(datetime(2026, 10, 20, 9, 0, tzinfo=NBO), tick=False):
        ticket = ticket_open(
            user=alice,
            contract=acme_contract,
            service=service,
            priority="P3",
            subject="Backups fail",
            description="Nothing backs up.",
        )
        theirs = ticket_open(
            user=charlie,
            contract=globex_contract,
            service=assistant,
            priority="P1",
            subject="Globex only",
            description="Not Alice's.",
        )
    close_month(month=OCT, now=NOW)  # the claim form's preview finds the month closed: it stores nothing
    return {
        "alice": alice,
        "contract": acme_contract,
        "service": service,
        "ticket": ticket,
        "token": AuthToken.objects.create(user=alice)[1],
        "webhook_token": service_rotate_webhook_token(service=service),
        FOREIGN_CONTRACT.name: globex_contract.pk,
        FOREIGN_TICKET.name: theirs.pk,
        FOREIGN_SERVICE.name: assistant.pk,
    }


MODELS = (
    Ticket, TicketMessage, Attachment, TicketEvent, EscalationRequest, Claim, ClaimAttachment, ClaimEvent,
    MonthlyUptime, OutboxMessage, Outage, OutageUpdate, User, Organisation, Contract, AuditEntry,
)  # fmt: skip


def rows() -> dict:
    """Every table a request could write to."""
    return {m.__name__: m.objects.count() for m in MODELS}


def body_text(response) -> str:
    return response.content.decode("utf-8", errors="replace")


def looks_like_markup(value) -> bool:
    return isinstance(value, str) and re.search(r"<[a-zA-Z/!]", value) is not None


def assert_escaped(response, values, echoed=()) -> None:
    """No HTML-looking value comes back as markup; those the page echoes (the form's fields
    `echoed`) come back escaped."""
    page = body_text(response)
    for value in values:
        if looks_like_markup(value):
            assert value not in page, f"echoed unescaped: {value!r}"
    for value in echoed:
        if looks_like_markup(value) and value.isprintable():
            assert escape(value) in page, f"not echoed (escaped): {value!r}"


def assert_form_refused(response, before: dict, sent: dict, echoed=(), status: int = 400) -> None:
    assert response.status_code == status, (response.status_code, sent)
    form = response.context["form"]
    assert form.errors, "a refusal without a message"
    assert_escaped(response, sent.values(), [sent[k] for k in echoed])
    assert rows() == before, f"stored something for {sent!r}"


def assert_api_refused(response, before: dict, sent, statuses=(400,)) -> None:
    assert response.status_code in statuses, (response.status_code, response.content[:500], sent)
    assert response["Content-Type"].startswith("application/json")  # never rendered as a page
    assert response.json(), "a refusal without a message"
    assert rows() == before, f"stored something for {sent!r}"


def api(world: dict, token_key: str = "token", scheme: str = "Token") -> Client:
    cache.clear()  # fresh write-throttle counters (120 a minute per user): every example is a new client
    return Client(headers={"Authorization": f"{scheme} {world[token_key]}"})


def post_json(client: Client, path: str, payload, content_type="application/json"):
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.generic("POST", path, data, content_type=content_type)


# --- The bodies that are accepted: the breakers below are what makes each request fail ------------
def ticket_form_body(world, **extra):
    return {
        "contract": world["contract"].pk,
        "service": world["service"].pk,
        "priority": "P3",
        "subject": "Restore is slow",
        "description": "Restores take hours.",
        "steps_to_reproduce": "",
        **extra,
    }


def ticket_api_body(world, **extra):
    return {**ticket_form_body(world), **extra}


def claim_body(world, **extra):
    return {"contract": world["contract"].pk, "month": "2026-10", "note": "Down on the 10th.", **extra}


def alert_notification(**alert):
    body = json.loads(json.dumps(EXAMPLE))
    body["alerts"][0]["labels"]["service"] = "cloud-backup"
    body["alerts"][0].update(alert)
    return body


def report_body(**extra):
    return {"name": "Eve", "email": "eve@research.example", "summary": "XSS in search", "details": "Steps.", **extra}


def test_the_unbroken_bodies_are_accepted(world, client):
    """The control: without a breaker each endpoint accepts the hostile-looking text as text."""
    client.force_login(world["alice"])
    html = HTML[0]
    assert client.post("/tickets/new/", ticket_form_body(world, subject=html, description=SQL[1])).status_code == 302
    ticket = Ticket.objects.get(subject=html)
    assert escape(html) in body_text(client.get(f"/tickets/{ticket.pk}/")) and html not in body_text(
        client.get("/tickets/")
    )
    assert post_json(api(world), "/api/v1/tickets/", ticket_api_body(world, subject=SQL[0])).status_code == 201
    assert (
        post_json(api(world), "/api/v1/claims/", claim_body(world, note=html, tickets=[world["ticket"].pk])).status_code
        == 201
    )
    assert (
        post_json(
            api(world, "webhook_token", "Bearer"), "/api/v1/hooks/alertmanager/", alert_notification()
        ).status_code
        == 200
    )
    assert Client().post("/security/report/", report_body(summary=html)).status_code == 302
    assert (
        Client().post("/accounts/login/", {"username": world["alice"].email, "password": PASSWORD}).status_code == 302
    )


# --- The ticket form -----------------------------------------------------------------------------
TICKET_FORM_BREAKERS = {
    "contract": st.sampled_from(["", "abc", "-1", str(BIG), "1.5", SQL[0], FOREIGN_CONTRACT]),
    "service": st.sampled_from(["", "abc", str(BIG), SQL[2], FOREIGN_SERVICE]),
    "priority": st.sampled_from(["", "P9", HTML[0], SQL[0]]),
    "subject": st.one_of(st.just(""), st.just("   "), longer_than(200), control_inside(), st.just("a\x00b")),
    "description": st.one_of(st.just(""), longer_than(20000), st.just("a\x00b")),
    "steps_to_reproduce": st.one_of(longer_than(20000), st.just("\x00")),
}


@HOSTILE
@given(subject=one_line, description=any_text, steps=any_text, broken=breaking(TICKET_FORM_BREAKERS))
def test_the_ticket_form_refuses_hostile_input(world, subject, description, steps, broken):
    client = Client()
    client.force_login(world["alice"])
    sent = {
        **ticket_form_body(world, subject=subject, description=description, steps_to_reproduce=steps),
        **resolve(broken, world),
    }
    before = rows()
    assert_form_refused(client.post("/tickets/new/", sent), before, sent, echoed=["subject", "description"])


@HOSTILE
@given(
    values=st.fixed_dictionaries(
        {
            "contract": st.one_of(st.sampled_from(["", str(BIG), FOREIGN_CONTRACT]), any_text),
            "subject": any_text,
            "description": any_text,
        }
    )
)
def test_the_ticket_forms_refresh_echoes_what_was_typed_escaped_and_stores_nothing(world, values):
    client = Client()
    client.force_login(world["alice"])
    sent = {"action": "refresh", **resolve(values, world)}
    before = rows()
    response = client.post("/tickets/new/", sent)
    assert response.status_code == 200
    assert_escaped(response, sent.values(), [sent["subject"], sent["description"]])
    assert rows() == before


# --- The ticket API ------------------------------------------------------------------------------
TICKET_API_BREAKERS = {
    "contract": st.one_of(WRONG_TYPES, st.sampled_from(["abc", BIG, -1, 0, FOREIGN_CONTRACT])),
    "service": st.one_of(WRONG_TYPES, st.sampled_from(["abc", BIG, -1, FOREIGN_SERVICE])),
    "priority": st.one_of(st.sampled_from([True, [], {}, "P9", "", HTML[0]])),
    "subject": st.one_of(WRONG_TYPES, st.just(""), longer_than(200), control_inside(), st.just("two\nlines")),
    "description": st.one_of(WRONG_TYPES, st.just(" "), longer_than(20000), control_inside(), st.just("\x00")),
    "steps_to_reproduce": st.one_of(st.sampled_from([None, True, [], {}]), longer_than(20000), control_inside()),
    "organisation": st.just(2),  # unknown fields are refused, not ignored
    "kind": st.just("security"),
}


@HOSTILE
@given(subject=one_line, description=one_line, broken=breaking(TICKET_API_BREAKERS))
def test_the_ticket_api_refuses_bad_fields(world, subject, description, broken):
    sent = {**ticket_api_body(world, subject=subject, description=description), **resolve(broken, world)}
    before = rows()
    assert_api_refused(post_json(api(world), "/api/v1/tickets/", sent), before, sent)


not_json_object = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda c: st.lists(c, max_size=4),
        max_leaves=10,
    ).map(lambda v: json.dumps(v).encode()),
    st.sampled_from(
        [
            b"{",
            b'{"contract": 1,}',
            b"NaN",
            b'{"a": Infinity}',
            b"\xff\xfe{}",
            b"[" * 50000 + b"]" * 50000,
            b'{"subject": "\\ud800"}',
            b"{}" * 3,
            b"null",
        ]
    ),
)


@HOSTILE
@given(
    raw=not_json_object,
    path=st.sampled_from(["/api/v1/tickets/", "/api/v1/claims/", "TICKET/replies/", "TICKET/escalate/"]),
)
def test_the_customer_api_refuses_malformed_json(world, raw, path):
    path = path.replace("TICKET/", f"/api/v1/tickets/{world['ticket'].pk}/")
    before = rows()
    assert_api_refused(post_json(api(world), path, raw), before, raw)


@pytest.mark.parametrize("path", ["/api/v1/tickets/", "/api/v1/claims/", "/api/v1/tickets/{id}/replies/"])
def test_the_customer_api_documents_its_answers_to_huge_bodies_and_other_media_types(world, path):
    path = path.format(id=world["ticket"].pk)
    before = rows()
    huge = post_json(api(world), path, {"note": "x" * HUGE, "description": "x", "body": "x"})
    assert_api_refused(huge, before, "huge", statuses=(413,))
    assert huge.json() == {"detail": "The request body is larger than 2621440 bytes."}
    for content_type in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
        "multipart/form-data; boundary=x",
    ):
        response = post_json(api(world), path, b"contract=1&subject=x", content_type=content_type)
        assert_api_refused(response, before, content_type, statuses=(415,))


def test_an_enormous_page_size_is_cut_not_a_500(world):
    """A `limit` beyond 2**63 - 1 overflowed the database's LIMIT (a 500 on SQLite and PostgreSQL)."""
    client = api(world)
    for path in ("/api/v1/tickets/", "/api/v1/claims/", f"/api/v1/tickets/{world['ticket'].pk}/replies/"):
        for query in (f"limit={2**63}", f"limit={BIG}&offset=-5", f"limit=-1&offset={BIG}", "limit=%00&offset=%00"):
            response = client.get(f"{path}?{query}")
            assert response.status_code == 200, (path, query, response.status_code)


# --- The claim form and API ----------------------------------------------------------------------
CLAIM_FORM_BREAKERS = {
    "contract": st.sampled_from(["", "abc", str(BIG), SQL[0], FOREIGN_CONTRACT]),
    "month": st.one_of(
        st.sampled_from(["", "2026-13", "October", "0000-01", "9999-12", "2026-11", "2025-12", "2026-10-01"]),
        looks_hostile,
    ),
    "note": st.one_of(longer_than(10000), st.just("a\x00b")),
    "tickets": st.sampled_from([FOREIGN_TICKET, "abc", str(BIG), SQL[0]]),
}


@HOSTILE
@given(note=any_text, action=st.sampled_from(["preview", "submit"]), broken=breaking(CLAIM_FORM_BREAKERS))
def test_the_claim_form_refuses_hostile_input(world, note, action, broken):
    if action == "preview":  # the first step has only the contract and the month
        assume(set(broken) & {"contract", "month"})
    client = Client()
    client.force_login(world["alice"])
    sent = {**claim_body(world, note=note), "action": action, "tickets": world["ticket"].pk, **resolve(broken, world)}
    before = rows()
    # The note is on the second step, shown again only when the contract and month are fine.
    echoed = ["note"] if action == "submit" and not set(broken) & {"contract", "month"} else []
    assert_form_refused(client.post("/claims/new/", sent), before, sent, echoed=echoed)


CLAIM_API_BREAKERS = {
    "contract": st.one_of(WRONG_TYPES, st.sampled_from(["abc", BIG, -1, FOREIGN_CONTRACT])),
    "month": st.one_of(
        WRONG_TYPES, st.sampled_from(["", "2026-13", "October", "0000-01", "2026-11", "2025-12", 202610]), looks_hostile
    ),
    "note": st.one_of(st.sampled_from([None, True, [], {}]), longer_than(10000), control_inside()),
    "tickets": st.one_of(st.sampled_from([None, "1", 1, {}, {"1": 1}, [None], [[]], ["abc"], [BIG], [FOREIGN_TICKET]])),
    "amount": st.just("1000000.00"),  # unknown fields are refused: the customer does not set the amount
}


@HOSTILE
@given(note=one_line, broken=breaking(CLAIM_API_BREAKERS))
def test_the_claim_api_refuses_bad_fields(world, note, broken):
    sent = {**claim_body(world, note=note, tickets=[world["ticket"].pk]), **resolve(broken, world)}
    before = rows()
    assert_api_refused(post_json(api(world), "/api/v1/claims/", sent), before, sent)


@pytest.mark.parametrize(
    "pk",
    ["²", "+" + "1" * 25, "1" * 25, "-" + "1" * 25, "١" * 25, "1²", "⁹⁹"],
    ids=[
        "superscript-2",
        "plus-25-digits",
        "25-digits",
        "minus-25-digits",
        "25-arabic-indic-digits",
        "1-squared",
        "superscript-99",
    ],
)
def test_the_claim_forms_ticket_ids_that_are_no_id_are_a_400_with_the_fields_message(world, pk):
    """`str.isdigit()` then `int()`: "²" is a digit to the one and no number to the other (a 500), and
    "+" with 25 digits passed the range check and overflowed SQLite's integer (a 500)."""
    client = Client()
    client.force_login(world["alice"])
    sent = {**claim_body(world, note="x"), "action": "submit", "tickets": [world["ticket"].pk, pk]}
    before = rows()
    response = client.post("/claims/new/", sent)
    assert_form_refused(response, before, sent)
    assert response.context["form"].errors["tickets"] == ["Link only your organisation's tickets."]


# --- The Alertmanager webhook ---------------------------------------------------------------------
ALERT_BREAKERS = {
    "status": st.sampled_from(["pending", "", None, 1, HTML[0]]),
    "labels": st.sampled_from(
        [
            None,
            "cloud-backup",
            [],
            {},
            {"service": ""},
            {"service": "no-such-service"},
            {"service": ["cloud-backup"]},
            {"service": "cloud-backup", "x": {"y": 1}},
            {"service": SQL[0]},
        ]
    ),
    "annotations": st.sampled_from(["x", [], {"summary": None}, {"summary": ["x"]}]),
    "startsAt": st.sampled_from(
        [
            "",
            "yesterday",
            "2026-11-02T09:00:00",
            "2026-13-02T09:00:00Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59-23:59",
            None,
            0,
            SQL[0],
        ]
    ),
    "endsAt": st.sampled_from(["nope", None, 1, "2026-11-02 25:00"]),
    "fingerprint": st.one_of(st.sampled_from([None, "", [], "a\x00b"]), longer_than(100)),
}
NOTIFICATION_BREAKERS = {
    "version": st.sampled_from(["3", "", None, 3, [], "4\x00"]),  # a number is taken as its text: 4 is "4"
    "status": st.sampled_from(["pending", None, 0]),
    "alerts": st.sampled_from([[], None, "x", {}, [1], [None], [{}]]),
    "truncatedAlerts": st.sampled_from([-1, "many", None]),
}


@HOSTILE
@given(
    summary=any_text,
    alert=breaking(ALERT_BREAKERS) | st.just({}),
    notification=breaking(NOTIFICATION_BREAKERS) | st.just({}),
)
def test_the_webhook_refuses_bad_notifications(world, summary, alert, notification):
    assume(alert or notification)
    sent = alert_notification(**{"annotations": {"summary": summary}, **alert})
    sent.update(notification)
    before = rows()
    response = post_json(api(world, "webhook_token", "Bearer"), "/api/v1/hooks/alertmanager/", sent)
    if set(notification) - {"alerts"} or notification.get("alerts", [1]) in ([], None, "x", {}):
        assert_api_refused(response, before, sent)  # not a notification: a 400
    else:
        # A notification whose every alert is bad: each is refused on its own, in a 200 (Alertmanager
        # never retries a 4xx, and a bad alert must not lose the good ones beside it).
        assert response.status_code == 200, (response.content[:500], sent)
        assert [r["index"] for r in response.json()["refused"]] == list(range(len(sent["alerts"]))), sent
        assert all(r["reason"] for r in response.json()["refused"])
        assert rows() == before, f"stored something for {sent!r}"


@HOSTILE
@given(raw=not_json_object)
def test_the_webhook_refuses_malformed_json(world, raw):
    before = rows()
    response = post_json(api(world, "webhook_token", "Bearer"), "/api/v1/hooks/alertmanager/", raw)
    assert_api_refused(response, before, raw)


@HOSTILE
@given(
    authorization=st.one_of(
        st.text(max_size=100).filter(lambda v: "\n" not in v and "\r" not in v),
        st.builds("Bearer {}".format, st.text(alphabet="abcXYZ019-_", max_size=60)),
        st.just("Token WEBHOOK"),
    ),
    body=st.one_of(st.just(EXAMPLE), not_json_object),
)
def test_the_webhook_without_its_token_is_a_401_whatever_the_body(world, authorization, body):
    authorization = authorization.replace("WEBHOOK", world["webhook_token"])  # the right token, the wrong scheme
    before = rows()
    client = Client(headers={"Authorization": authorization}) if authorization else Client()
    response = post_json(client, "/api/v1/hooks/alertmanager/", body)
    assert_api_refused(response, before, (authorization, body), statuses=(401,))


def test_the_webhook_documents_its_answers_to_huge_bodies_and_other_media_types(world):
    client = api(world, "webhook_token", "Bearer")
    before = rows()
    body = alert_notification(annotations={"summary": "x" * (MAX_BODY + 1)})
    response = post_json(client, "/api/v1/hooks/alertmanager/", body)
    assert_api_refused(response, before, "huge")
    assert response.json() == {"detail": f"The request body is larger than {MAX_BODY} bytes."}
    assert_api_refused(post_json(client, "/api/v1/hooks/alertmanager/", b"x" * HUGE), before, "huge")
    response = post_json(
        client, "/api/v1/hooks/alertmanager/", b"version=4", content_type="application/x-www-form-urlencoded"
    )
    assert_api_refused(response, before, "form", statuses=(415,))


# --- The vulnerability-report form ------------------------------------------------------------------
REPORT_BREAKERS = {
    "email": st.one_of(
        st.sampled_from(["", "not-an-email", "eve@", "a\x00@b.example", "eve@research.example\nBcc: x@y.z"]),
        looks_hostile,
        longer_than(254).map(lambda s: s + "@x.example"),
    ),
    "summary": st.one_of(st.just(""), longer_than(200), control_inside(), st.just("two\nlines")),
    "details": st.one_of(st.just(" "), longer_than(20000), st.just("a\x00b")),
    "name": st.one_of(longer_than(150), st.just("\x00")),
}


@HOSTILE
@given(summary=one_line, details=any_text, name=one_line, broken=breaking(REPORT_BREAKERS))
def test_the_vulnerability_report_form_refuses_hostile_input(world, summary, details, name, broken):
    sent = {**report_body(summary=summary, details=details, name=name[:150]), **broken}
    before = rows()
    assert_form_refused(Client().post("/security/report/", sent), before, sent, echoed=["name", "summary", "details"])


# --- The login form --------------------------------------------------------------------------------
@HOSTILE
@given(
    username=st.one_of(any_text, looks_hostile, longer_than(254), st.just("alice@acme.example")),
    password=st.one_of(any_text, longer_than(4096), st.just("")),
    extra=st.dictionaries(st.sampled_from(["next", "remember", "is_staff", "username\x00"]), any_text, max_size=2),
    address=st.integers(1, 250),
)
def test_the_login_form_refuses_hostile_input(world, username, password, extra, address):
    assume(password != PASSWORD)
    alice = world["alice"]
    before, sessions = rows(), Session.objects.count()
    sent = {"username": username, "password": password, **extra}
    response = Client().post("/accounts/login/", sent, REMOTE_ADDR=f"198.51.100.{address}")
    # Django's login form answers a failure with 200 and the form's error; django-axes with 429 once locked.
    assert response.status_code in (200, 429), (response.status_code, sent)
    if response.status_code == 200:
        assert response.context["form"].errors
    assert_escaped(response, sent.values(), [username] if response.status_code == 200 else [])
    alice.refresh_from_db()
    assert alice.last_login is None and Session.objects.count() == sessions
    assert rows() == before
    cache.clear()  # throttling state lives in the cache and in axes' tables: start each example afresh
    from axes.models import AccessAttempt

    AccessAttempt.objects.all().delete()


def test_huge_form_bodies_are_refused_without_storing_anything(world):
    client = Client()
    client.force_login(world["alice"])
    before = rows()
    big = "x" * HUGE
    for path, data in (
        ("/tickets/new/", ticket_form_body(world, description=big)),
        ("/claims/new/", claim_body(world, note=big)),
        ("/security/report/", report_body(details=big)),
        ("/accounts/login/", {"username": "alice@acme.example", "password": big}),
    ):
        response = (client if path != "/accounts/login/" else Client()).post(path, data)
        assert response.status_code == 400, (path, response.status_code)
    many = {f"f{i}": "x" for i in range(1500)}  # over DATA_UPLOAD_MAX_NUMBER_FIELDS
    assert client.post("/tickets/new/", {**ticket_form_body(world), **many}).status_code == 400
    assert rows() == before


def test_a_malformed_calendar_token_is_a_404_not_a_500(world, client):
    """A NUL in the feed's token reached the query: PostgreSQL refuses it (a 500 there)."""
    for token in ("a" * 40 + "%00", "%00" * 43, "a" * 40 + "%C3%A9", "a" * 40 + "'--", "a" * 5000):
        assert client.get(f"/maintenance/ical/{token}.ics").status_code == 404, token


def test_nul_and_overflow_in_page_queries_are_harmless(world):
    client = Client()
    client.force_login(world["alice"])
    for path in (
        f"/tickets/?status=%00&priority=%00&sla=%00&page={BIG}",
        "/tickets/new/?contract=%00",
        f"/tickets/new/?contract={BIG}",
        f"/claims/new/?contract={BIG}&month=%00",
        f"/claims/new/?contract={world['contract'].pk}&month=9999-12",
        f"/claims/?page=-{BIG}",
    ):
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        assert_escaped(response, [HTML[0]])
    for path in (
        "/api/v1/tickets/?status=%00",
        f"/api/v1/contracts/{world['contract'].pk}/uptime/?month=%00",
        f"/api/v1/contracts/{world['contract'].pk}/uptime/?month=9999-12",
        f"/api/v1/contracts/{world['contract'].pk}/uptime/?month=0001-01",
    ):
        assert api(world).get(path).status_code == 400, path
    assert api(world).get(f"/api/v1/tickets/{BIG}/").status_code == 404
    assert api(world).get("/api/v1/tickets/%00/").json() == {"detail": "Not found."}  # JSON, as documented


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/tickets/", '{"contract": 1e400, "service": 1, "priority": "P3", "subject": "x", "description": "y"}'),
        ("/api/v1/tickets/", '{"contract": CONTRACT, "service": -1e400, "priority": "P3", "subject": "x", "description": "y"}'),
        ("/api/v1/claims/", '{"contract": CONTRACT, "month": "2026-10", "note": "x", "tickets": [1e400]}'),
        ("/api/v1/tickets/", '{"contract": CONTRACT, "service": 1, "priority": "\\ud800", "subject": "x", "description": "y"}'),
        ("/api/v1/notification-preferences/", '{"choice": "\\ud800", "enabled": true}'),
        ("/api/v1/claims/", '{"\\ud800": 1}'),
    ],
)  # fmt: skip
def test_a_number_beyond_a_float_or_a_lone_surrogate_is_a_400_not_a_500(world, path, body):
    """Both are valid JSON: 1e400 reached DRF's id fields as infinity (OverflowError), and the
    refusal of "\\ud800" quoted it in an answer no encoder can write."""
    before = rows()
    raw = body.replace("CONTRACT", str(world["contract"].pk)).encode()
    assert_api_refused(post_json(api(world), path, raw), before, raw)
