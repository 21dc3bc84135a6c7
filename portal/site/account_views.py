"""The user's own account: who they are, their password, and their API token (create, replace,
revoke). The token is shown in full once, right after it is made."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST
from rest_framework.authtoken.models import Token

from portal.core.audit import audit


@login_required
@require_GET
def account(request):
    token = Token.objects.filter(user=request.user).first()
    new_key = request.session.pop("new_api_token", None)
    return render(request, "portal/account.html", {"token": token, "new_key": new_key})


@login_required
@require_POST
@transaction.atomic
def token_create(request):
    replaced = Token.objects.filter(user=request.user).delete()[0] > 0
    token = Token.objects.create(user=request.user)
    audit(
        actor=request.user,
        action="token.created",
        target=request.user,
        after={"replaced_previous": replaced, "prefix": token.key[:6]},
    )
    request.session["new_api_token"] = token.key  # shown once on the next page
    messages.success(request, "Your new API token is below. Copy it now: it will not be shown again in full.")
    return redirect("account")


@login_required
@require_POST
@transaction.atomic
def token_revoke(request):
    deleted = Token.objects.filter(user=request.user).delete()[0]
    if deleted:
        audit(actor=request.user, action="token.revoked", target=request.user)
        messages.success(request, "Your API token is revoked: requests that use it are refused from now on.")
    return redirect("account")
