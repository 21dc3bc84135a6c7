"""/status/api/v2/*.json: the status page as Statuspage's public API v2 (contracts.outages.statuspage).

Plain Django views, not DRF: they are not our API (drf-spectacular lists only DRF views, so our
OpenAPI schema never names them), they need no login, and they carry no cookie. Any origin may read
them (`Access-Control-Allow-Origin: *`, GET only), shared caches may keep them a minute (less when a
maintenance window starts or ends sooner: the document changes then), and a client that sends back
the ETag gets a 304 until something changes."""

import hashlib
import json

from django.http import HttpResponse
from django.utils import timezone
from django.utils.cache import get_conditional_response, patch_cache_control
from django.views.decorators.http import require_http_methods

from .outages.statuspage import document, snapshot

MAX_AGE = 60
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Expose-Headers": "ETag",
    "Access-Control-Max-Age": "86400",
}


def public_response(request, body: bytes, content_type: str, *, max_age: int = MAX_AGE) -> HttpResponse:
    """The answer with a strong ETag of its bytes, a public cache of `max_age` seconds and the CORS
    headers; a 304 (with the same headers) when the client's If-None-Match holds that ETag."""
    response = HttpResponse(body, content_type=content_type)
    response["ETag"] = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    patch_cache_control(response, public=True, max_age=max_age)
    conditional = get_conditional_response(request, etag=response["ETag"], response=response)
    for name, value in CORS.items():
        conditional[name] = value
    return conditional


def _preflight() -> HttpResponse:
    response = HttpResponse(status=204)
    for name, value in CORS.items():
        response[name] = value
    response["Access-Control-Allow-Headers"] = "If-None-Match"
    return response


def document_view(name: str):
    @require_http_methods(["GET", "HEAD", "OPTIONS"])
    def view(request):
        if request.method == "OPTIONS":
            return _preflight()
        snap = snapshot(now=timezone.now())
        body = json.dumps(document(snap, name), ensure_ascii=False, separators=(",", ":")).encode()
        # Kept no longer than until the next window starts or ends: the document changes then.
        until = snap.next_move
        max_age = MAX_AGE if until is None else min(MAX_AGE, int((until - snap.now).total_seconds()))
        return public_response(request, body, "application/json", max_age=max_age)

    view.__name__ = view.__qualname__ = "statuspage_" + name.replace("/", "_").replace("-", "_")
    view.__doc__ = f"{name}.json in Statuspage's v2 shape."
    return view
