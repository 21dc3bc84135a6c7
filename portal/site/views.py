from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views import defaults
from django.views.decorators.http import require_GET

from portal.site.dashboard import customer_dashboard


@login_required
@require_GET
def dashboard(request):
    if not request.user.is_customer:
        # Staff work in the admin; the customer portal shows one organisation's data.
        return redirect("admin:index")
    board = customer_dashboard(user=request.user, now=timezone.now())
    return render(request, "portal/dashboard.html", {"board": board, "now": board.now})


@require_GET
def healthz(request):
    """The database answers, and every beat sweep ran within its period plus three minutes."""
    from portal.core.heartbeat import health

    report = health()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)


def page_not_found(request, exception):
    """handler404. The API answers in JSON even for a path it does not have (`/api/v1/tickets/abc/`
    never reaches a view: `<int:pk>` does not match), as its schema documents; pages get Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)
