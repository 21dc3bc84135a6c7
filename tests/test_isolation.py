"""Isolation between organisations, walked over EVERY URL pattern the resolver knows (the portal's,
the API's and the admin's, through every include), so that a route added later is covered without
editing this file.

Each route's path arguments are filled with organisation B's objects (Globex: its contract, ticket,
reply, attachment, escalation request, claim and its attachment, maintenance window, iCal token,
...) from the FILL table below; a route whose arguments the table cannot fill fails the test with
"teach test_isolation how to fill <route>". Then:

(a) Alice, a customer of organisation A (Acme), gets 404 on every customer route that takes an
    organisation-B object, whatever the method (never 403, never 200, never a 400 that confirms the
    object exists): the answer is byte for byte the one for an id that was never used. A route
    without object arguments answers her without any of B's identifying strings.
(b) Anonymous visitors are sent to the login page (the admin's login for /admin/), get 401/403
    from the API, or 200 from the explicit allow-list of public pages (PUBLIC).
(c) Alice on staff pages (everything under /admin/) is sent to the admin's login.

One public route takes a B object on purpose: the iCal feed, whose URL token IS the authorisation
(CAPABILITIES). Whoever holds B's token reads B's feed; Alice holding it gets exactly what an
anonymous holder gets, and a replaced, revoked or guessed token opens nothing.

Nothing of B changes along the way. Lists, filters, searches and feeds seen by Alice (pages and
API) hold none of B's rows. Clocks are frozen at 2026-11-03 10:00 in Nairobi."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.apps import apps
from django.contrib.admin import site as admin_site
from django.contrib.contenttypes.models import ContentType
from django.core import signing
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.resolvers import RegexPattern, RoutePattern
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from knox.models import AuthToken

from contracts.incidents.services import incident_open, outage_set_impact
from contracts.maintenance.ical import organisation_ical_rotate
from contracts.maintenance.services import window_publish
from contracts.models import Contract, Incident, Invitation, MaintenanceWindow, Organisation, Outage, Service
from contracts.outages.statuspage import DOCUMENTS
from contracts.people.invitations import invitation_create
from credits.models import Claim, ClaimAttachment, MonthlyUptime
from credits.services import claim_submit
from portal.models import User, WebhookEndpoint
from tickets.models import Attachment, EscalationRequest, Ticket, TicketMessage
from tickets.security import security_report_submit
from tickets.services import ticket_open, ticket_reply, ticket_request_escalation

from .factories import ContractFactory, OrganisationFactory, ServiceFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

NBO = ZoneInfo("Africa/Nairobi")
NOW = datetime(2026, 11, 3, 10, 0, tzinfo=NBO)
OCT = date(2026, 10, 1)
MISSING_ID = 987654321


# --- The world: Acme (A) and Globex (B), each with everything a route can name -------------------
@dataclass
class Org:
    organisation: Organisation
    user: User
    contract: Contract
    service: Service
    ticket: Ticket
    reply: TicketMessage
    attachment: Attachment
    escalation: EscalationRequest
    claim: Claim
    claim_attachment: ClaimAttachment
    window: MaintenanceWindow
    outage: Outage
    incident: Incident
    ical_token: str
    api_token: str
    invitation: Invitation
    webhook: WebhookEndpoint
    # Strings that only this organisation's people may ever see.
    secrets: list[str] = field(default_factory=list)
    # B-only maintenance and outages are public on /status/, but never in A's own lists or feed.
    scoped: list[str] = field(default_factory=list)


def _text(name: str, body: str) -> SimpleUploadedFile:
    upload = SimpleUploadedFile(name, body.encode(), content_type="text/plain")
    upload.checked_type = "text/plain"
    return upload


def _organisation(sam, *, slug, org_name, person, email, reference, contract_name, service_name, marker) -> Org:
    """An organisation with one of everything; `marker` makes each of its texts its own."""
    organisation = OrganisationFactory(name=org_name, slug=slug)
    user = UserFactory(email=email, name=person, organisation=organisation, customer_role="admin")
    service = ServiceFactory(name=service_name, slug=f"{slug}-service")
    contract = ContractFactory(
        organisation=organisation, reference=reference, name=contract_name, services=[service], contacts=[user]
    )
    start = datetime(2026, 10, 10, 2, 0, tzinfo=NBO)
    outage = Outage.objects.create(
        title=f"{marker} storage outage", starts_at=start, ends_at=start + timedelta(hours=3)
    )
    outage.services.set([service])
    incident = incident_open(
        outage=outage, title=f"{marker} incident title", status="resolved", body=f"{marker} incident update",
        actor=sam, now=start + timedelta(hours=3),
    )  # fmt: skip
    # A customer-scoped outage of this organisation's contract: never public, never another's.
    private = Outage.objects.create(
        title=f"{marker} private outage", starts_at=start, ends_at=start + timedelta(hours=1)
    )
    private.services.set([service])
    outage_set_impact(outage=private, impacts={}, contracts=[contract], customer_scoped=True, actor=sam, now=start)
    incident_open(outage=private, title=f"{marker} private incident", status="resolved", body=f"{marker} private update",
                  actor=sam, now=start + timedelta(hours=1))  # fmt: skip
    with time_machine.travel(datetime(2026, 10, 20, 9, 0, tzinfo=NBO), tick=False):
        ticket = ticket_open(
            user=user, contract=contract, service=service, priority="P3",
            subject=f"{marker} ledger export fails", description=f"{marker} ticket description",
            files=[_text(f"{marker.lower()}-logs.txt", f"{marker} log lines\n")],
        )  # fmt: skip
        reply = ticket_reply(ticket=ticket, author=sam, body=f"{marker} staff answer")
        ticket_reply(ticket=ticket, author=user, body=f"{marker} customer reply")
        escalation = ticket_request_escalation(ticket=ticket, user=user, reason=f"{marker} escalation reason")
    claim = claim_submit(
        contract=contract, month=OCT, user=user, note=f"{marker} claim note", tickets=[ticket],
        files=[_text(f"{marker.lower()}-evidence.txt", f"{marker} evidence\n")],
    )  # fmt: skip
    window = window_publish(
        title=f"{marker} model rollout", description=f"{marker} window details", services=[service],
        starts_at=NOW + timedelta(days=5), ends_at=NOW + timedelta(days=5, hours=2),
    )  # fmt: skip
    token = organisation_ical_rotate(organisation=organisation)
    _, api_token = AuthToken.objects.create(user=user)
    invitation, _ = invitation_create(
        organisation=organisation, email=f"invitee@{slug}.example", role="member", actor=user
    )
    webhook = WebhookEndpoint.objects.create(
        organisation=organisation, url=f"https://hooks.{slug}.example/{marker}", events=["ticket.filed"],
        secret=f"whsec_{marker}secret", created_at=NOW,
    )  # fmt: skip
    return Org(
        organisation=organisation, user=user, contract=contract, service=service, ticket=ticket, reply=reply,
        attachment=ticket.attachments.get(), escalation=escalation, claim=claim,
        claim_attachment=claim.attachments.get(), window=window, outage=outage, incident=incident, ical_token=token,
        api_token=api_token,
        invitation=invitation, webhook=webhook,
        secrets=[f"invitee@{slug}.example", webhook.url, webhook.secret,
            org_name, reference, contract_name, person, email, ticket.subject, f"{marker} ticket description",
            f"{marker} staff answer", f"{marker} customer reply", f"{marker} escalation reason",
            f"{marker} claim note", f"{marker.lower()}-logs.txt", f"{marker.lower()}-evidence.txt", token, api_token,
            f"{marker} private outage", f"{marker} private incident", f"{marker} private update",
        ],
        scoped=[window.title, f"{marker} window details", outage.title, incident.title, f"{marker} incident update"],
    )  # fmt: skip


@dataclass
class World:
    a: Org
    b: Org
    sam: User
    report: Ticket
    shared_window: MaintenanceWindow


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def world(settings, tmp_path) -> World:
    settings.MEDIA_ROOT = tmp_path
    sam = StaffFactory(email="sam@vendor.example", name="Sam Support")
    a = _organisation(
        sam, slug="acme", org_name="Acme Savings", person="Alice Achieng", email="alice@acme.example",
        reference="KAL-0001", contract_name="Cloud Backup for Acme", service_name="Cloud Backup", marker="Acmeling",
    )  # fmt: skip
    b = _organisation(
        sam, slug="globex", org_name="Globex Retail", person="Charlie Carlsson", email="charlie@globex.example",
        reference="KLA-0001", contract_name="AI Assistant for Globex", service_name="AI Assistant", marker="Globexian",
    )  # fmt: skip
    shared = window_publish(
        title="Network change on both", description="Both services.", services=[a.service, b.service],
        starts_at=NOW + timedelta(days=8), ends_at=NOW + timedelta(days=8, hours=1),
    )  # fmt: skip
    # A vulnerability report belongs to no customer: no customer ever sees it.
    report = security_report_submit(
        email="eve@research.example", name="Eve", summary="Reflected XSS in the ticket search", details="Details."
    )
    b.secrets.append(report.subject)
    return World(a=a, b=b, sam=sam, report=report, shared_window=shared)


# --- Every route of the resolver ------------------------------------------------------------------
@dataclass(frozen=True)
class Route:
    parts: tuple  # the patterns from the root include down to the view's
    name: str | None  # "admin:tickets_ticket_change", "ticket-detail", None for unnamed routes
    callback: object

    @property
    def route(self) -> str:
        return "".join(str(p) for p in self.parts)

    @property
    def label(self) -> str:
        return f"{self.name or '(unnamed)'} [{self.route}]"

    @property
    def arguments(self) -> list[str]:
        names = []
        for p in self.parts:
            if isinstance(p, RoutePattern):
                names += list(p.converters)
            elif isinstance(p, RegexPattern):
                names += list(p.regex.groupindex)
        return names

    @property
    def is_admin(self) -> bool:
        return self.route.startswith("admin/")

    @property
    def is_api(self) -> bool:
        return self.route.startswith("api/")


def every_route() -> list[Route]:
    def walk(patterns, parts, namespace):
        for p in patterns:
            if isinstance(p, URLResolver):
                inner = ":".join(n for n in (namespace, p.namespace) if n) or None
                yield from walk(p.url_patterns, (*parts, p.pattern), inner)
            elif isinstance(p, URLPattern):
                name = f"{namespace}:{p.name}" if namespace and p.name else p.name
                yield Route((*parts, p.pattern), name, p.callback)

    return list(walk(get_resolver().url_patterns, (), None))


def build_path(route: Route, values: dict[str, str]) -> str:
    out = []
    for p in route.parts:
        text = str(p)
        if isinstance(p, RoutePattern):
            text = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m[1]]), text)
        else:  # a regex: its named groups replaced, its anchors dropped
            text = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: str(values[m[1]]), text).lstrip("^").rstrip("$")
        out.append(text)
    return "/" + "".join(out)


# --- How to fill a path argument --------------------------------------------------------------------
# `pk` names the object of the mount point it is under; the other arguments are looked up by
# (url name, argument) first, then by the argument alone. Admin routes may name any object: the
# customer is refused before any lookup; B's object is used where B has one.
PK_BY_MOUNT = {
    "contracts/": lambda w: w.b.contract.pk,
    "tickets/": lambda w: w.b.ticket.pk,
    "claims/": lambda w: w.b.claim.pk,
    "webhooks/": lambda w: w.b.webhook.pk,
    "api/v1/contracts/": lambda w: w.b.contract.pk,
    "api/v1/tickets/": lambda w: w.b.ticket.pk,
    "api/v1/claims/": lambda w: w.b.claim.pk,
    "people/": lambda w: w.b.user.pk,
    "people/invitations/": lambda w: w.b.invitation.pk,
    "api/v1/services/": lambda w: w.b.service.pk,
    "api/v1/maintenance-windows/": lambda w: w.b.window.pk,
    "api/v1/outages/": lambda w: w.b.outage.pk,
    "incidents/": lambda w: w.b.incident.pk,
    "api/v1/incidents/": lambda w: w.b.incident.pk,
    # Public: an incident's page on the status page (B's incident is public; a scoped one is a 404).
    "status/incidents/": lambda w: w.b.incident.pk,
    # django-otp's device admin: a TOTP device's setup page and QR code (B's user's: any device will do).
    "admin/otp_totp/totpdevice/": lambda w: _totp_device(w).pk,
}
FILL = {
    ("attachment-download", "attachment_id"): lambda w, r: w.b.attachment.pk,
    ("claim-attachment", "attachment_id"): lambda w, r: w.b.claim_attachment.pk,
    ("api-ticket-attachment-download", "attachment_id"): lambda w, r: w.b.attachment.pk,
    ("api-claim-attachment-download", "attachment_id"): lambda w, r: w.b.claim_attachment.pk,
    ("maintenance-ical", "token"): lambda w, r: w.b.ical_token,
    # Public: an invitation link whose signature does not hold (the real one is a secret).
    ("invitation-accept", "token"): lambda w, r: "eyJpIjoxLCJuIjoiMCJ9:1xO8Uy:forgedsignature",
    # The SLA statement of B's contract for a month it ran in (October, closed and claimed).
    ("contract-statement", "month"): lambda w, r: "2026-10",
    ("contract-statement-pdf", "month"): lambda w, r: "2026-10",
    # Public: a reset link for B's user, with a token that is not valid (the real one is a secret).
    ("password_reset_confirm", "uidb64"): lambda w, r: urlsafe_base64_encode(force_bytes(w.b.user.pk)),
    ("password_reset_confirm", "token"): lambda w, r: "cr5a3x-0123456789abcdef0123456789abcdef",
    # Public: an unsubscribe link for B's user, forged (a real one is a secret sent to B only).
    ("unsubscribe", "token"): lambda w, r: signing.dumps({"u": w.b.user.pk, "c": "maintenance"}, salt="forged"),
    # Public: a rating link of B's ticket, forged (a real one is a secret sent to its filer only).
    ("ticket-rate", "token"): lambda w, r: signing.dumps({"t": w.b.ticket.pk, "u": w.b.user.pk}, salt="forged"),
    # A forged link to B's attachment (the real ones are made only for a report's reporter).
    ("security-report-file", "token"): lambda w, r: signing.dumps([w.b.ticket.pk, w.b.attachment.pk], salt="forged"),
    # Public: a status page subscriber's links, forged (the real ones are secrets sent to the address).
    ("status-subscription-confirm", "token"): lambda w, r: signing.dumps({"s": 1, "r": 1}, salt="forged"),
    ("status-subscription-manage", "token"): lambda w, r: signing.dumps({"s": 1}, salt="forged"),
    ("admin:tickets_ticket_attachment", "attachment_id"): lambda w, r: w.b.attachment.pk,
    ("admin:credits_claim_attachment", "attachment_id"): lambda w, r: w.b.claim_attachment.pk,
    ("admin:tickets_ticket_acknowledge", "request_id"): lambda w, r: w.b.escalation.pk,
    ("admin:view_on_site", "content_type_id"): lambda w, r: ContentType.objects.get_for_model(Ticket).pk,
    ("admin:view_on_site", "object_id"): lambda w, r: w.b.ticket.pk,
    ("admin:auth_user_password_change", "id"): lambda w, r: w.b.user.pk,
    ("admin:app_list", "app_label"): lambda w, r: "tickets",
    ("admin:compliance_contract", "contract_id"): lambda w, r: w.b.contract.pk,  # the compliance report's detail
    "object_id": lambda w, r: _admin_object(w, r),
    "url": lambda w, r: "no-such-page/",
}
# What a missing object looks like, per argument (for "the same answer as an id never used").
MISSING = {
    "token": "x" * 43, "uidb64": "MTIzNDU2Nzg5", "app_label": "tickets", "url": "no-such-page/", "month": "2026-10",
}  # fmt: skip


def _totp_device(w: World):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    return TOTPDevice.objects.get_or_create(user=w.b.user, defaults={"name": "B's phone"})[0]


def _admin_object(w: World, route: Route):
    """`admin/<app>/<model>/<object_id>/...`: B's object of that model where B has one, else any."""
    found = re.match(r"admin/(\w+)/(\w+)/", route.route)
    if not found:
        raise LookupError
    model = apps.get_model(found[1], found[2])
    assert model in admin_site._registry, route.label
    mine = {
        Organisation: w.b.organisation, Contract: w.b.contract, Service: w.b.service, User: w.b.user,
        Ticket: w.b.ticket, Claim: w.b.claim, MaintenanceWindow: w.b.window, Outage: w.b.outage,
        EscalationRequest: w.b.escalation, MonthlyUptime: w.b.claim.monthly_uptime, Incident: w.b.incident,
    }  # fmt: skip
    obj = mine.get(model) or model.objects.order_by("pk").first()
    return obj.pk if obj is not None else MISSING_ID


class Unfillable(Exception):
    pass


def fill(route: Route, world: World) -> dict[str, str]:
    values = {}
    for arg in route.arguments:
        rule = FILL.get((route.name, arg)) or FILL.get(arg)
        if arg == "pk":
            mount = next((m for m in sorted(PK_BY_MOUNT, key=len, reverse=True) if route.route.startswith(m)), None)
            rule = (lambda w, r, m=mount: PK_BY_MOUNT[m](w)) if mount else None
        try:
            if rule is None:
                raise LookupError
            values[arg] = str(rule(world, route))
        except LookupError:
            raise Unfillable(
                f"teach test_isolation how to fill {route.label}: no rule for its argument `{arg}` "
                "(add it to FILL or PK_BY_MOUNT)"
            ) from None
    return values


def missing_values(route: Route) -> dict[str, str]:
    return {arg: MISSING.get(arg, str(MISSING_ID)) for arg in route.arguments}


def walk(world: World) -> tuple[list[tuple[Route, str, dict]], list[str]]:
    """Every route with its path filled with B's objects; the routes that cannot be filled."""
    out, unfillable, seen = [], [], set()
    for route in every_route():
        try:
            values = fill(route, world)
        except Unfillable as exc:
            unfillable.append(str(exc))
            continue
        path = build_path(route, values)
        match = resolve(path)
        if path in seen:  # shadowed by an earlier route with the same path (accounts/login/)
            continue
        assert match.func == route.callback, f"{route.label}: {path} resolves to {match.url_name or match.func}"
        seen.add(path)
        out.append((route, path, values))
    return out, unfillable


# --- Who may see what ----------------------------------------------------------------------------------
# Pages anyone may open: route name → the statuses an anonymous visitor (or any customer) may get
# (after GET; after a POST with an empty body where GET is 405).
PUBLIC = {
    "login": {200},
    "logout": {302},  # POST only (Django 5); back to the login page
    "password_reset": {200},
    "password_reset_done": {200},
    "password_reset_confirm": {200},  # "this link is invalid"
    "password_reset_complete": {200},
    "unsubscribe": {400},  # a forged link: "this link is not valid", nothing changed
    "ticket-rate": {400},  # a forged rating link: "this rating link is not valid", nothing recorded
    "status": {200},
    "status-subscribe": {200},  # the form; its POST changes nothing until the address confirms
    "status-subscribe-sent": {200},
    "status-subscription-confirm": {400},  # a forged link: "this link is not valid", nothing changed
    "status-subscription-manage": {400},
    "status-history": {200},
    "status-incident": {200},
    "status-feed": {200},
    **{f"statuspage-{name.replace('/', '-')}": {200} for name in DOCUMENTS},
    "security-txt": {200},
    "security-policy": {200},
    "security-report": {200},
    "security-report-done": {200},
    "security-report-file": {404},  # a forged link: no file
    "invitation-accept": {400},  # "this invitation link is not valid"
    "maintenance-ical": {200},  # a valid token: the feed's URL is its secret (see CAPABILITIES)
    "api-schema": {200},
    "api-docs": {200},
    "healthz": {200, 503},  # 503: a beat sweep is late (none ran in a test database)
    "alertmanager-webhook": {401},  # POST only; its own bearer token, not a login
    "inbound-postmark": {401, 404},  # POST only; basic auth (ANYMAIL_WEBHOOK_SECRET); 404 while unset
    "admin:login": {200},
    "admin:logout": {200, 302},  # POST only (Django 5)
}
# Public routes whose argument IS the authorisation: whoever holds B's feed token reads B's feed,
# logged in as anyone or not at all (so Alice's answer must be the anonymous one, byte for byte).
CAPABILITIES = {"maintenance-ical"}
LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"


def body_of(response) -> str:
    if getattr(response, "streaming", False):
        content = b"".join(response.streaming_content)
        response.close()
    else:
        content = response.content
    return content.decode("utf-8", errors="replace")


def call(client: Client, method: str, path: str):
    if method == "GET":
        return client.get(path)
    if method == "POST":
        return client.post(path)  # an empty form body
    return client.generic(method, path, b"", content_type="application/json")


def get_or_post(client: Client, path: str, login=None):
    """GET; where the route answers GET with 405 and allows POST, a POST with an empty body."""
    if login:
        client.force_login(login)
    response = client.get(path)
    if response.status_code == 405 and "POST" in response.get("Allow", ""):
        if login:
            client.force_login(login)
        response = client.post(path)
    return response


def leaked(body: str, secrets: list[str]) -> list[str]:
    return [s for s in secrets if s in body]


def b_state(w: World) -> dict:
    """Everything of B that a request of Alice or of an anonymous visitor could change."""
    b = w.b
    return {
        "organisation": list(Organisation.objects.filter(pk=b.organisation.pk).values()),
        "user": list(User.objects.filter(pk=b.user.pk).values("password", "is_active", "email", "name")),
        "token": list(AuthToken.objects.filter(user=b.user).values_list("digest", flat=True)),
        "contract": list(Contract.objects.filter(pk=b.contract.pk).values()),
        "tickets": list(Ticket.objects.filter(organisation=b.organisation).order_by("pk").values()),
        "messages": list(TicketMessage.objects.filter(ticket__organisation=b.organisation).order_by("pk").values()),
        "attachments": list(Attachment.objects.filter(ticket__organisation=b.organisation).order_by("pk").values()),
        "escalations": list(EscalationRequest.objects.filter(ticket=b.ticket).order_by("pk").values()),
        "claims": list(Claim.objects.filter(contract=b.contract).order_by("pk").values()),
        "claim_files": list(ClaimAttachment.objects.filter(claim=b.claim).values()),
        "window": list(MaintenanceWindow.objects.filter(pk=b.window.pk).values()),
        "outages": list(Outage.objects.order_by("pk").values()),
        "services": list(Service.objects.order_by("pk").values()),
        "uptime": list(MonthlyUptime.objects.filter(contract=b.contract).values()),
        "people": list(
            User.objects.filter(organisation=b.organisation).order_by("pk").values("customer_role", "is_active")
        ),
        "invitations": list(Invitation.objects.filter(organisation=b.organisation).values()),
    }


# --- The walks ---------------------------------------------------------------------------------------
def test_every_route_can_be_filled_with_organisation_b_objects(world):
    routes, unfillable = walk(world)
    assert not unfillable, "\n".join(unfillable)
    assert len(routes) > 150  # the admin's, the API's and the portal's


def test_a_customer_of_another_organisation_gets_404_or_nothing_of_b_on_every_route(world):
    routes, unfillable = walk(world)
    assert not unfillable, "\n".join(unfillable)
    alice, b = world.a.user, world.b
    client, anonymous = Client(), Client()
    before = b_state(world)
    failures = []
    for route, path, _values in routes:
        if route.is_admin and route.name not in PUBLIC:
            # (c) Staff pages: refused with a redirect to the admin's login, whatever the object.
            response = get_or_post(client, path, login=alice)
            if response.status_code != 302 or not response["Location"].startswith(ADMIN_LOGIN):
                failures.append(f"{route.label} {path}: {response.status_code}, not a redirect to {ADMIN_LOGIN}")
        elif route.name in CAPABILITIES:
            # Holding the secret is the authorisation: Alice reads exactly what anyone with it reads.
            mine = body_of(get_or_post(client, path, login=alice))
            theirs = body_of(anonymous.get(path))
            if mine != theirs:
                failures.append(f"{route.label}: the answer depends on who asks")
        elif route.name in PUBLIC:
            response = get_or_post(client, path, login=alice)
            if response.status_code not in PUBLIC[route.name]:
                failures.append(f"{route.label} {path}: {response.status_code}")
            elif found := leaked(body_of(response), b.secrets):
                failures.append(f"{route.label} {path}: shows {found}")
        elif route.arguments:
            # (a) Customer routes naming B's objects: 404 for every method, the same answer as for
            # an id that was never used, and nothing of B in it.
            missing = build_path(route, missing_values(route))
            methods = ["GET", "POST"] + (["PUT", "PATCH", "DELETE"] if route.is_api else [])
            saw_404 = False
            for method in methods:
                client.force_login(alice)
                response = call(client, method, path)
                status, body = response.status_code, body_of(response)
                client.force_login(alice)
                reference = call(client, method, missing)
                if status == 405:
                    continue
                saw_404 |= status == 404
                if status != 404:
                    failures.append(f"{route.label} {method} {path}: {status} for B's object, not 404")
                elif (status, body) != (reference.status_code, body_of(reference)):
                    failures.append(f"{route.label} {method} {path}: B's object answers unlike a missing one")
                elif found := leaked(body, b.secrets + b.scoped):
                    failures.append(f"{route.label} {method} {path}: shows {found}")
            if not saw_404:
                failures.append(f"{route.label} {path}: no method answered 404 (is the route scoped?)")
        else:
            # A customer route without object arguments: whatever it shows, nothing of B.
            response = get_or_post(client, path, login=alice)
            if response.status_code >= 500 or response.status_code == 403:
                failures.append(f"{route.label} {path}: {response.status_code}")
            elif found := leaked(body_of(response), b.secrets + b.scoped):
                failures.append(f"{route.label} {path}: shows {found}")
    assert not failures, "\n".join(failures)
    assert b_state(world) == before, "a request of a customer of A changed B's data"


def test_anonymous_visitors_get_the_login_page_or_an_allow_listed_public_page(world):
    routes, unfillable = walk(world)
    assert not unfillable, "\n".join(unfillable)
    client = Client()
    before = b_state(world)
    failures = []
    for route, path, _values in routes:
        response = get_or_post(client, path)
        status, body = response.status_code, body_of(response)
        if route.name in PUBLIC:
            if status not in PUBLIC[route.name]:
                failures.append(f"{route.label} {path}: {status}, expected one of {sorted(PUBLIC[route.name])}")
            elif route.name not in CAPABILITIES and (found := leaked(body, world.b.secrets + world.a.secrets)):
                failures.append(f"{route.label} {path}: shows {found} to anyone")
        elif route.is_admin:
            if status != 302 or not response["Location"].startswith(ADMIN_LOGIN):
                failures.append(f"{route.label} {path}: {status}, not a redirect to {ADMIN_LOGIN}")
        elif route.is_api:
            if status not in (401, 403):
                failures.append(f"{route.label} {path}: {status}, not 401/403")
        elif status != 302 or not response["Location"].startswith(LOGIN):
            failures.append(f"{route.label} {path}: {status}, not a redirect to {LOGIN}")
    assert not failures, "\n".join(failures)
    assert b_state(world) == before, "an anonymous request changed B's data"


# --- Lists, filters, feeds -------------------------------------------------------------------------------
def test_lists_filters_and_feeds_hold_none_of_another_organisations_rows(world):
    a, b = world.a, world.b
    client = Client()
    client.force_login(a.user)
    api = Client(headers={"Authorization": f"Token {a.api_token}"})
    pages = {
        "/": client,
        "/tickets/": client,
        "/tickets/?status=open": client,
        "/tickets/?status=waiting": client,
        "/tickets/?priority=P3": client,
        "/tickets/?sla=at_risk": client,
        "/tickets/?status=bogus&page=2": client,
        # Searches: B's words, B's organisation, B's filer, B's ticket number, a word both share.
        "/tickets/?q=Globexian": client,
        "/tickets/?q=Retail": client,  # (the page says what was searched: Alice typed it)
        "/tickets/?q=charlie": client,
        f"/tickets/?q=%23{b.ticket.pk}": client,
        f"/tickets/?q={b.ticket.pk}": client,
        "/tickets/?q=ledger+export": client,
        "/tickets/?q=ledger&status=new&page=2": client,
        "/tickets/new/": client,
        f"/tickets/new/?contract={b.contract.pk}": client,
        "/claims/": client,
        "/claims/new/": client,
        f"/claims/new/?contract={b.contract.pk}&month=2026-10": client,
        "/maintenance/": client,
        "/incidents/": client,
        f"/incidents/{a.incident.pk}/": client,
        f"/contracts/{a.contract.pk}/": client,
        f"/contracts/{a.contract.pk}/uptime/": client,
        f"/contracts/{a.contract.pk}/statement/2026-10/": client,
        f"/contracts/{a.contract.pk}/statement/2026-11/": client,
        f"/tickets/{a.ticket.pk}/": client,
        f"/claims/{a.claim.pk}/": client,
        "/account/": client,
        "/people/": client,
        "/api/v1/tickets/": api,
        "/api/v1/tickets/?status=waiting": api,
        "/api/v1/tickets/?priority=P3&limit=1&offset=0": api,
        "/api/v1/tickets/?limit=1000&offset=0": api,
        # The API's search too: B's words, organisation, filer and number, a word both share.
        "/api/v1/tickets/?q=Globexian": api,
        "/api/v1/tickets/?q=Retail": api,
        "/api/v1/tickets/?q=charlie": api,
        f"/api/v1/tickets/?q=%23{b.ticket.pk}": api,
        f"/api/v1/tickets/?q={b.ticket.pk}": api,
        "/api/v1/tickets/?q=ledger+export&ordering=priority": api,
        f"/api/v1/tickets/{a.ticket.pk}/": api,
        f"/api/v1/tickets/{a.ticket.pk}/replies/": api,
        f"/api/v1/tickets/{a.ticket.pk}/attachments/": api,
        "/api/v1/claims/": api,
        "/api/v1/claims/?limit=1000": api,
        f"/api/v1/claims/{a.claim.pk}/": api,
        f"/api/v1/contracts/{a.contract.pk}/uptime/?month=2026-10": api,
        f"/api/v1/contracts/{a.contract.pk}/uptime/?month=2026-11": api,
        "/api/v1/contracts/": api,
        f"/api/v1/contracts/?service={b.service.pk}": api,
        f"/api/v1/contracts/{a.contract.pk}/": api,
        "/api/v1/services/": api,
        f"/api/v1/services/?contract={b.contract.pk}": api,
        f"/api/v1/services/{a.service.pk}/": api,
        "/api/v1/maintenance-windows/": api,
        f"/api/v1/maintenance-windows/?service={b.service.pk}": api,
        f"/api/v1/maintenance-windows/?contract={b.contract.pk}": api,
        f"/api/v1/maintenance-windows/{world.shared_window.pk}/": api,
        "/api/v1/outages/": api,
        f"/api/v1/outages/?service={b.service.pk}&ongoing=false": api,
        f"/api/v1/outages/{a.outage.pk}/": api,
        "/api/v1/months/": api,
        f"/api/v1/months/?contract={b.contract.pk}": api,
    }
    failures = []
    for path, who in pages.items():
        response = who.get(path)
        body = body_of(response)
        if response.status_code != 200:
            failures.append(f"{path}: {response.status_code}")
        elif found := leaked(body, b.secrets + b.scoped):
            failures.append(f"{path}: shows {found}")
    assert not failures, "\n".join(failures)
    # The lists are not empty: A's own rows are there.
    assert a.ticket.subject in body_of(client.get("/tickets/"))
    # A search finds A's ticket by a word both organisations' tickets share, and counts only it.
    shared = client.get("/tickets/", {"q": "ledger export"})
    assert [row["ticket"].pk for row in shared.context["rows"]] == [a.ticket.pk]
    assert shared.context["page"].paginator.count == 1 and "1 ticket found by" in body_of(shared)
    for q in ("Globexian", "Globexian staff answer", f"#{b.ticket.pk}", "charlie"):
        found = client.get("/tickets/", {"q": q})
        assert found.context["page"].paginator.count == 0, q
    assert a.ticket.subject in body_of(api.get("/api/v1/tickets/"))
    assert "Acmeling claim note" in body_of(api.get("/api/v1/claims/"))
    assert a.window.title in body_of(client.get("/maintenance/"))
    assert [c["reference"] for c in api.get("/api/v1/contracts/").json()["results"]] == [a.contract.reference]
    assert [s["id"] for s in api.get("/api/v1/services/").json()["results"]] == [a.service.pk]
    windows = api.get("/api/v1/maintenance-windows/").json()["results"]
    assert {w["title"]: w["services"] for w in windows} == {
        a.window.title: [a.service.pk],
        world.shared_window.title: [a.service.pk],  # never B's service
    }
    outages = [o["title"] for o in api.get("/api/v1/outages/").json()["results"]]
    assert sorted(outages) == sorted([a.outage.title, "Acmeling private outage"])  # A's scoped one: A's own
    assert [m["contract"] for m in api.get("/api/v1/months/").json()["results"]] == [a.contract.pk]
    uptime = api.get(f"/api/v1/contracts/{a.contract.pk}/uptime/?month=2026-10").json()
    # A's customer-scoped outage counts for A's contract; B's, on B's service, never here.
    assert sorted(line["title"] for line in uptime["breakdown"]) == sorted([a.outage.title, "Acmeling private outage"])


def test_the_ical_feed_of_one_organisation_holds_none_of_anothers_windows(world, client):
    a, b = world.a, world.b
    feed = body_of(client.get(f"/maintenance/ical/{a.ical_token}.ics"))
    assert a.window.title in feed and world.shared_window.title in feed
    assert not leaked(feed, b.secrets + b.scoped)
    theirs = body_of(client.get(f"/maintenance/ical/{b.ical_token}.ics"))
    assert b.window.title in theirs and a.window.title not in theirs
    # A replaced or revoked secret opens nothing; so does a guess.
    organisation_ical_rotate(organisation=b.organisation)
    assert client.get(f"/maintenance/ical/{b.ical_token}.ics").status_code == 404
    assert client.get(f"/maintenance/ical/{b.ical_token[:8]}.ics").status_code == 404


def test_writes_naming_another_organisations_objects_are_refused_like_unknown_ids(world):
    """Filing a ticket or a claim on B's contract, or linking B's ticket to A's claim, is refused
    with the message of an id that was never used: the answer confirms nothing, and nothing is stored."""
    a, b = world.a, world.b
    api = Client(headers={"Authorization": f"Token {a.api_token}"})
    client = Client()
    client.force_login(a.user)
    before = (b_state(world), Ticket.objects.count(), Claim.objects.count())

    def ticket_body(contract_id):
        return {"contract": contract_id, "service": b.service.pk, "priority": "P1", "subject": "s", "description": "d"}

    theirs = api.post("/api/v1/tickets/", ticket_body(b.contract.pk), content_type="application/json")
    never = api.post("/api/v1/tickets/", ticket_body(MISSING_ID), content_type="application/json")
    assert theirs.status_code == never.status_code == 400
    assert theirs.json()["contract"] == [
        m.replace(str(MISSING_ID), str(b.contract.pk)) for m in never.json()["contract"]
    ]

    def claim_body(contract_id, ticket_id):
        return {"contract": contract_id, "month": "2026-09", "tickets": [ticket_id]}

    theirs = api.post("/api/v1/claims/", claim_body(b.contract.pk, b.ticket.pk), content_type="application/json")
    never = api.post("/api/v1/claims/", claim_body(MISSING_ID, MISSING_ID), content_type="application/json")
    assert theirs.status_code == never.status_code == 400
    assert theirs.json() == never.json()
    linked = api.post("/api/v1/claims/", claim_body(a.contract.pk, b.ticket.pk), content_type="application/json")
    assert linked.status_code == 400 and "tickets" in linked.json()

    form = {"contract": b.contract.pk, "service": b.service.pk, "priority": "P1", "subject": "s", "description": "d"}
    page = client.post("/tickets/new/", form)
    assert page.status_code == 400 and not leaked(body_of(page), b.secrets)
    page = client.post("/claims/new/", {"action": "preview", "contract": b.contract.pk, "month": "2026-10"})
    assert page.status_code == 400 and not leaked(body_of(page), b.secrets)
    assert (b_state(world), Ticket.objects.count(), Claim.objects.count()) == before


def test_an_unfillable_route_fails_with_a_message_naming_it(world):
    """The walk's own guard: a route with an argument the table does not know is reported by name."""
    from django.urls import path

    route = Route((RoutePattern("invoices/"), path("<int:invoice>/", lambda r: None).pattern), "invoice-detail", None)
    with pytest.raises(
        Unfillable, match=r"teach test_isolation how to fill invoice-detail \[invoices/<int:invoice>/\]"
    ):
        fill(route, world)
