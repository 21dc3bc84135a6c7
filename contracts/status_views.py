"""The public status page. Anyone may read it, and shared caches may keep it for 30 seconds, so it
is the same for every visitor: it is rendered without the request (no user, no session, no
organisation in the context, no `Vary: Cookie`) from contracts.outages.status.status_page."""

from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_safe

from .outages.status import status_page


@require_safe
def status(request):
    page = status_page(now=timezone.now())
    response = HttpResponse(render_to_string("status/status.html", {"page": page}))
    patch_cache_control(response, public=True, max_age=30)
    return response
