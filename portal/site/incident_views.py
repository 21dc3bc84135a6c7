"""Incidents for customers: the list of their organisation's incidents and one incident's page
(its timeline, the services and contracts of theirs it affects, their uptime so far, and their
tickets linked to it). Scoped to the user's organisation: another's incident, or one not
published, is a 404."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from contracts.incidents.selectors import incident_for_user, recent_incidents_for_user
from tickets.selectors import tickets_for_user


@login_required
@require_GET
def incident_list(request):
    if not request.user.is_customer:
        return redirect("admin:contracts_incident_changelist")
    return render(request, "portal/incident_list.html", {"views": recent_incidents_for_user(user=request.user)})


@login_required
@require_GET
def incident_detail(request, pk: int):
    view = incident_for_user(user=request.user, pk=pk)
    if view is None:
        raise Http404("No such incident.")
    tickets = tickets_for_user(user=request.user).filter(incident_id=pk).order_by("-filed_at", "-pk")
    return render(request, "portal/incident_detail.html", {"view": view, "tickets": list(tickets)})
