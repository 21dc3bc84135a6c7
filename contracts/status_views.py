"""The public status page, its history and one page per incident. Anyone may read them, and shared
caches may keep them for 30 seconds, so they are the same for every visitor: rendered without the
request (no user, no session, no organisation in the context, no `Vary: Cookie`) from the public
record (contracts.outages.status and contracts.outages.public)."""

from django.http import Http404, HttpResponse
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_safe

from .outages.public import RECENT, incident_public, incidents_history, incidents_public
from .outages.status import status_page


def _page(template: str, context: dict) -> HttpResponse:
    response = HttpResponse(render_to_string(template, context))
    patch_cache_control(response, public=True, max_age=30)
    return response


@require_safe
def status(request):
    """Now, the last 90 days, the incidents still open and those resolved in the last 90 days."""
    now = timezone.now()
    incidents = incidents_public(now=now, since=now - RECENT)
    return _page(
        "status/status.html",
        {
            "page": status_page(now=now),
            "active": [i for i in incidents if not i.resolved],
            "recent": [i for i in incidents if i.resolved],
        },
    )


@require_safe
def history(request):
    """Every public incident, newest first, 20 a page."""
    page, incidents = incidents_history(now=timezone.now(), page=request.GET.get("page"))
    return _page("status/history.html", {"page_obj": page, "incidents": incidents})


@require_safe
def incident(request, pk: int):
    found = incident_public(pk=pk, now=timezone.now())
    if found is None:
        raise Http404("No such incident.")
    return _page("status/incident.html", {"incident": found})
