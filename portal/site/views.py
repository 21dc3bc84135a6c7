from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views import defaults
from django.views.decorators.http import require_GET

from portal.core.staff_otp import may_use_staff_site
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
    """200 when the database answers and every beat sweep ran within its period plus three minutes,
    else 503: `{"status": "ok"}` or `{"status": "unhealthy"}` to anyone (a load balancer, a probe),
    with the details (each sweep's last run and result) to staff who may read the sweeps' heartbeats."""
    from portal.core.heartbeat import health, public

    report = health()
    status = 200 if report["status"] == "ok" else 503
    # The user is read only once the database has answered: a probe must get its 503, not a 500.
    user = request.user
    staff = user.is_staff and may_use_staff_site(user) and user.has_perm("portal.view_sweepheartbeat")
    if report["database"] != "ok" or not staff:
        report = public(report)
    response = JsonResponse(report, status=status)
    response["Cache-Control"] = "no-store"  # staff's answer is never a cache's answer to anyone else
    return response


def page_not_found(request, exception):
    """handler404. The API answers in JSON even for a path it does not have (`/api/v1/tickets/abc/`
    never reaches a view: `<int:pk>` does not match), as its schema documents; pages get Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)
