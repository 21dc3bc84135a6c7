from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from .selectors import contracts_for_user, escalation_ladder, version_in_force, version_with_terms


@login_required
@require_GET
def contract_detail(request, pk: int):
    # Scoped to the user's organisation: another organisation's contract is a 404, never a 403.
    contract = get_object_or_404(
        contracts_for_user(user=request.user).select_related("organisation", "sla").prefetch_related("services"), pk=pk
    )
    version = version_in_force(sla_id=contract.sla_id, at=timezone.now())
    if version is None:
        raise Http404("This contract has no SLA version in force yet.")
    version = version_with_terms(version_id=version.pk)
    return render(
        request,
        "contracts/contract_detail.html",
        {
            "contract": contract,
            "version": version,
            "priorities": version.priorities.all(),
            "ladder": escalation_ladder(version=version, organisation=contract.organisation),
            "tiers": version.credit_tiers.all(),
        },
    )
