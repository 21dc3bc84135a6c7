from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from contracts.selectors import contracts_for_user


@login_required
@require_GET
def dashboard(request):
    if not request.user.is_customer:
        # Staff work in the admin; the customer portal shows one organisation's data.
        return redirect("admin:index")
    contracts = contracts_for_user(user=request.user).select_related("sla").prefetch_related("services")
    return render(request, "portal/dashboard.html", {"contracts": contracts})


@require_GET
def healthz(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
