"""The user's own account: who they are (name, phone, timezone: portal.site.organisation_views
saves them), their password, and their API tokens (create, revoke).

A token is shown in full once, right after it is made (only its digest is stored: django-rest-knox,
portal.core.api_tokens); afterwards by its prefix. Staff hold no API tokens."""

from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET, require_POST

from portal.core import api_tokens
from portal.core.api_tokens import TokenRefused, holds_no_tokens, tokens_of
from portal.site.forms import TokenRevokingPasswordChangeForm
from portal.site.people_forms import ProfileForm

PROFILE = ("name", "phone", "timezone")

NEVER = "never"


def expiry_choices() -> list[tuple[str, str]]:
    default = settings.API_TOKEN_TTL_DAYS
    days = sorted({30, 90, 365} | ({default} if default else set()))
    choices = [(str(d), f"in {d} days" + (" (default)" if d == default else "")) for d in days]
    return [*choices, (NEVER, "never" + (" (default)" if not default else ""))]


class TokenCreateForm(forms.Form):
    expires = forms.ChoiceField(label="Expires", choices=expiry_choices)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["expires"].initial = str(settings.API_TOKEN_TTL_DAYS or NEVER)

    def ttl(self) -> timedelta | None:
        value = self.cleaned_data["expires"]
        return None if value == NEVER else timedelta(days=int(value))


@login_required
@require_GET
def account(request):
    return account_page(request)


def account_page(request, *, profile_form=None, status: int = 200):
    """The page; with a profile form that did not validate, its errors (a 400)."""
    new_token = request.session.pop("new_api_token", None)
    tokens = list(tokens_of(request.user))
    now = timezone.now()
    for token in tokens:
        token.expired = token.expiry is not None and token.expiry <= now  # refused, deleted when next used
    context = {
        "staff": holds_no_tokens(request.user),
        "tokens": tokens,
        "new_token": new_token,
        "form": TokenCreateForm(),
        "limit": settings.API_TOKENS_PER_USER,  # expired tokens do not count (api_tokens.token_create)
        "live_tokens": sum(not token.expired for token in tokens),
        "profile_form": profile_form or ProfileForm(initial={k: getattr(request.user, k) for k in PROFILE}),
    }
    response = render(request, "portal/account.html", context, status=status)
    if new_token:
        add_never_cache_headers(response)  # the secret must not stay in a cache
    return response


@login_required
@require_POST
def token_create(request):
    form = TokenCreateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose when the token expires.")
        return redirect("account")
    try:
        _, secret = api_tokens.token_create(user=request.user, ttl=form.ttl())
    except TokenRefused as exc:
        messages.error(request, str(exc))
        return redirect("account")
    request.session["new_api_token"] = secret  # shown once on the next page, then gone from the session
    messages.success(request, "Your new API token is below. Copy it now: it will not be shown again.")
    return redirect("account")


@login_required
@require_POST
def token_revoke(request):
    prefix = request.POST.get("prefix", "")
    revoked = (
        api_tokens.token_revoke(actor=request.user, tokens=tokens_of(request.user).filter(token_key=prefix))
        if prefix
        else 0
    )
    if revoked:
        messages.success(request, f"The token {prefix}… is revoked: requests that use it are refused from now on.")
    return redirect("account")


def _revoke_all(request, user, reason: str) -> None:
    revoked = api_tokens.token_revoke(actor=user, tokens=tokens_of(user), reason=reason)
    if revoked:
        messages.info(
            request, f"Your API tokens ({revoked}) are revoked: make new ones on your Account page where you need them."
        )


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Django's reset link, for active accounts only (a link mailed before the account was
    deactivated then says it is not valid). A completed reset revokes the person's API tokens: whoever
    knew the old password may have made one."""

    def get_user(self, uidb64):
        user = super().get_user(uidb64)
        return user if user is not None and user.is_active else None

    def form_valid(self, form):
        response = super().form_valid(form)
        _revoke_all(self.request, form.user, "password reset")
        return response


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's password change, offering to revoke the person's API tokens as well."""

    form_class = TokenRevokingPasswordChangeForm

    def form_valid(self, form):
        response = super().form_valid(form)
        if form.cleaned_data.get("revoke_tokens"):
            _revoke_all(self.request, form.user, "password changed")
        return response
