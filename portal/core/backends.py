"""The login backend: Django's ModelBackend, reading the user's organisation with the user. Every
customer page shows the organisation (the header, the navigation), so the session's user comes
with it in one query instead of two. A staff member's permissions (their own and their role's
group's) are read in one query, not ModelBackend's two: every staff page asks. And the name
django-axes counts login failures under."""

from __future__ import annotations

import unicodedata

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

from portal.core.roles import held_permissions


class PortalBackend(ModelBackend):
    def get_user(self, user_id):
        model = get_user_model()
        try:
            user = model._default_manager.select_related("organisation").get(pk=user_id)
        except model.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None

    def get_all_permissions(self, user_obj, obj=None):
        """ModelBackend's answer, kept where it keeps it, read in one query (bench/RESULTS.md,
        session 17: 2.7 ms -> 1.9 a staff page). A superuser has every permission: ModelBackend's."""
        if user_obj.is_superuser or not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return super().get_all_permissions(user_obj, obj)
        if not hasattr(user_obj, "_perm_cache"):
            names = held_permissions(user_obj).values_list("content_type__app_label", "codename").distinct()
            user_obj._perm_cache = {f"{app}.{codename}" for app, codename in names}
        return user_obj._perm_cache


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
