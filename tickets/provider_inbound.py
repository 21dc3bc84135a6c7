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
- A payload is read up to three times INBOUND_MAX_BYTES (Django's 2.5 MB limit on a request's body
  is for forms): a larger message than INBOUND_MAX_BYTES reaches the ingest, which refuses it with
  an answer and keeps its header for staff; a payload larger than that is a 413 (a provider sends
  none: Postmark's own limit is 35 MB a message).
- A retry of the same payload is a duplicate (the ingest service's unique keys). A message that
  could not be stored (the database is down) is a 503, which the provider retries.
"""

from __future__ import annotations

import hashlib
import json
import logging
from email import encoders

from anymail.exceptions import AnymailConfigurationError, AnymailWebhookValidationFailure
from anymail.webhooks.postmark import PostmarkInboundWebhookView
from django.conf import settings
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
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return HttpResponse("Content-Length is not a number.\n", status=400)
        if length > payload_limit():  # more than the provider sends (Postmark: 35 MB a message)
            log.error("inbound webhook: a payload of %d bytes refused", length)
            return HttpResponse("The payload is larger than any message we take.\n", status=413)
        try:
            # Read past Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB, what a form may post), which
            # request.body checks: a message with files is larger, and the ingest's own limit,
            # INBOUND_MAX_BYTES, is what refuses a message, with an answer to its sender.
            esp_event = json.loads(request.read())
            if not isinstance(esp_event, dict):
                raise ValueError("not a JSON object")
            esp_event = sane(esp_event)
            if isinstance(esp_event.get("RawEmail"), str):  # the message itself: taken as it is, however odd
                raw = message_bytes(esp_event, None)
            else:
                raw = message_bytes(esp_event, self.esp_to_anymail_event(esp_event).message)
        except AnymailConfigurationError as exc:  # a tracking webhook pointed here
            return HttpResponse(f"{exc}\n", status=400)
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
            return HttpResponse("Not a Postmark inbound payload.\n", status=400)
        try:
            received_at = provider_received_at(parse.parse(raw))
        except RecursionError:  # nested too deep to read here: ingest keeps it for staff
            received_at = timezone.now()
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


# A payload's texts kept as they are; every other string is a header's value or a name, and one line.
TEXTS = frozenset({"TextBody", "HtmlBody", "StrippedTextReply", "RawEmail", "Content"})


def sane(value, key: str = ""):
    """The payload with what no message or column takes made harmless: lone surrogates and control
    characters (parse.safe_text), and line breaks in a header's value (anymail refuses to build a
    message with them; the message would have been lost with a 400)."""
    if isinstance(value, dict):
        return {k: sane(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [sane(v, key) for v in value]
    if isinstance(value, str):
        text = parse.safe_text(value)
        return text if key in TEXTS else " ".join(text.split())
    return value


def payload_limit() -> int:
    """The largest payload read: Postmark's JSON holds a message of INBOUND_MAX_BYTES twice (its
    raw MIME and its attachments again, each in base64), with room for its other fields."""
    return 3 * settings.INBOUND_MAX_BYTES + 1024 * 1024


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
            elif "Content-Transfer-Encoding" not in part and part.get_content_maintype() not in ("text", "message"):
                # A file anymail keeps as its bytes, with no transfer encoding: written as they are,
                # its line ends would be made CRLF below, and a picture or an archive broken.
                encoders.encode_base64(part)
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
