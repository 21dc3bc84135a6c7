"""A mail provider's inbound webhook (django-anymail; Postmark at /anymail/postmark/inbound/): the
message it posts is handed to the one ingest service (tickets.inbound.service), like the pipe's and
the mailbox's.

- Protected by HTTP basic auth (ANYMAIL["WEBHOOK_SECRET"], "user:password", set in the webhook's
  URL at the provider). A wrong or missing secret is a 401, never a signal or a row: Postmark
  retries a 401 for hours (it stops only on a 403), so a secret changed on one side first loses
  nothing once both agree again. Without a secret the webhook is off: 404.
- The message is the provider's raw MIME when it sends it (Postmark's "Include raw email content
  in JSON payload", which should be on), else the one anymail builds from the payload's fields,
  with multipart boundaries derived from the payload so that a retry gives the same bytes; the
  envelope sender the provider puts first in Headers comes back as the Return-Path an MTA adds.
- The received time is the provider's: the date its own server wrote in the topmost Received
  header when it took the message (a retry hours later carries the same header); without one, the
  time the webhook first reached us (a retry is a duplicate then and keeps the first row's time).
- A retry of the same payload is a duplicate (the ingest service's unique keys). A message that
  could not be stored (the database is down) is a 503, which the provider retries.
"""

from __future__ import annotations

import hashlib
import json
import logging

from anymail.exceptions import AnymailConfigurationError, AnymailWebhookValidationFailure
from anymail.webhooks.postmark import PostmarkInboundWebhookView
from django.db import DatabaseError
from django.http import Http404, HttpResponse
from django.utils import timezone

from .inbound import parse
from .inbound.service import ingest

log = logging.getLogger(__name__)

SOURCE = "webhook"


class PostmarkInbound(PostmarkInboundWebhookView):
    warn_if_no_basic_auth = False  # without a secret the webhook is off (404), never open

    def head(self, request, *args, **kwargs):
        self._enabled()
        return super().head(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        self._enabled()
        try:
            self.run_validators(request)
        except AnymailWebhookValidationFailure:
            response = HttpResponse("Unauthorized: wrong or missing webhook credentials.\n", status=401)
            response["WWW-Authenticate"] = 'Basic realm="inbound email", charset="UTF-8"'
            return response
        try:
            esp_event = json.loads(request.body)
            if not isinstance(esp_event, dict):
                raise ValueError("not a JSON object")
            event = self.esp_to_anymail_event(esp_event)
        except AnymailConfigurationError as exc:  # a tracking webhook pointed here
            return HttpResponse(f"{exc}\n", status=400)
        except (ValueError, TypeError, KeyError, AttributeError):
            return HttpResponse("Not a Postmark inbound payload.\n", status=400)
        raw = message_bytes(esp_event, event.message)
        received_at = provider_received_at(parse.parse(raw))
        try:
            outcome = ingest(
                raw, received_at=received_at, source=SOURCE, source_ref=f"postmark:{esp_event.get('MessageID', '')}"
            )
        except DatabaseError:
            log.exception("inbound webhook: not stored; the provider will retry")
            return HttpResponse("Not stored; try again later.\n", status=503, headers={"Retry-After": "60"})
        return HttpResponse(f"{outcome.kind}\n")

    def _enabled(self) -> None:
        if not self.basic_auth:
            raise Http404("The inbound webhook is off (ANYMAIL_WEBHOOK_SECRET is not set).")


def message_bytes(esp_event: dict, message) -> bytes:
    """The message as the provider received it, with the envelope sender as Return-Path."""
    if isinstance(esp_event.get("RawEmail"), str):
        raw = esp_event["RawEmail"].encode("utf-8", "replace")
    else:
        # anymail's message built from the fields: its boundaries would be random on each retry.
        seed = hashlib.sha256(json.dumps(esp_event, sort_keys=True).encode()).hexdigest()[:24]
        for n, part in enumerate(message.walk()):
            if part.is_multipart():
                part.set_boundary(f"=_{seed}_{n}")
        raw = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))  # RFC 5322 line ends
    headers = esp_event.get("Headers") or []
    first = headers[0] if headers and isinstance(headers[0], dict) else {}
    if str(first.get("Name", "")).lower() == "return-path":
        newline = b"\r\n" if b"\r\n" in raw[:2000] else b"\n"
        value = " ".join(str(first.get("Value", "")).split())  # no line break smuggled into the header
        raw = b"Return-Path: " + value.encode("utf-8", "replace") + newline + raw
    return raw


def provider_received_at(msg):
    """When the provider's server took the message (its topmost Received header), never later than
    now; now when there is none."""
    now = timezone.now()
    at = parse.received_at(msg)
    return min(at, now) if at is not None else now
