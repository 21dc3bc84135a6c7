"""The login backend: Django's ModelBackend, reading the user's organisation with the user. Every
customer page shows the organisation (the header, the navigation), so the session's user comes
with it in one query instead of two. And the name django-axes counts login failures under."""

from __future__ import annotations

import unicodedata

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend


class PortalBackend(ModelBackend):
    def get_user(self, user_id):
        model = get_user_model()
        try:
            user = model._default_manager.select_related("organisation").get(pk=user_id)
        except model.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None


def lockout_username(request, credentials=None) -> str:
    """The name django-axes counts failures and locks under (AXES_USERNAME_CALLABLE): the address
    as the login matches it. `User.objects.get_by_natural_key` finds the account by email__iexact,
    so BOB@ACME.EXAMPLE logs in as bob@acme.example; counted per spelling, it walked past bob's
    lock, and its success cleared it. The form strips the field and normalises it (NFKC) before it
    authenticates; the same is done here, then the address is case-folded."""
    field = settings.AXES_USERNAME_FORM_FIELD
    if credentials:
        value = credentials.get(field)
    else:
        data = getattr(request, "data", None) or getattr(request, "POST", {})
        value = data.get(field)
    if not isinstance(value, str):
        return value
    return unicodedata.normalize("NFKC", value).strip().casefold()
