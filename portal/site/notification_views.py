"""What a person is emailed: the preferences page (account section) and the unsubscribe link of
every optional email (RFC 8058). The rule is portal.core.notify_rules; the token and the writes are
portal.core.unsubscribe.

A link in an email only shows a page: mail scanners follow links, so only a POST acts. The POST of
the page's button and the one-click POST a mail client sends (body `List-Unsubscribe=One-Click`)
need no session and no CSRF token: the signed token is the proof, and it can change only the one
preference it names.
"""

from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from portal.core.notify_rules import EXPLAINED, Choice, Preferences, effective
from portal.core.unsubscribe import BadToken, is_one_click, preference_set, token_read
from portal.models import NotificationPreference

Via = NotificationPreference.Via


def shown_choices(user) -> list[Choice]:
    """The choices a person has: contact reviews go to customer admins only."""
    return [c for c in Choice if c != Choice.CONTACT_REVIEW or user.customer_role == "admin"]


@dataclass(frozen=True)
class ChoiceRow:
    """One choice as a person has it: on or off (their own choice, else the default as it applies to
    them), what it covers and what of it always comes (the page and the API show the same)."""

    choice: Choice
    enabled: bool
    chosen: bool
    covers: str
    always: str


def choice_rows(user) -> list[ChoiceRow]:
    prefs = Preferences()
    prefs.load([user.pk])
    designated = ", ".join(c.reference for c in user.contact_for.order_by("reference"))
    rows = []
    for choice in shown_choices(user):
        covers, always = EXPLAINED[choice]
        on, chosen = effective(user, choice, prefs, designated=bool(designated))
        if choice == Choice.MAINTENANCE and designated:
            always = f"You are a designated contact of {designated}: " + always[0].lower() + always[1:]
        rows.append(ChoiceRow(choice, on, chosen, covers, always))
    return rows


class PreferencesForm(forms.Form):
    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        for row in choice_rows(user):
            self.fields[row.choice.value] = forms.BooleanField(
                label=row.choice.label, required=False, initial=row.enabled, help_text=row.covers
            )
            self.fields[row.choice.value].always = row.always


@login_required
@require_http_methods(["GET", "POST"])
def notification_preferences(request):
    user = request.user
    if not user.is_customer:
        return render(request, "portal/notifications.html", {"staff": True})
    form = PreferencesForm(request.POST or None, user=user)
    if request.method == "POST" and form.is_valid():
        # Only what the person changed is recorded: a default left alone stays a default.
        for name in form.changed_data:
            preference_set(user=user, choice=Choice(name), enabled=form.cleaned_data[name], via=Via.PAGE)
        messages.success(request, "Your email choices are saved." if form.changed_data else "Nothing changed.")
        return redirect("notification-preferences")
    return render(request, "portal/notifications.html", {"form": form})


@csrf_exempt
@never_cache  # it names a person; no shared cache keeps it
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    try:
        target = token_read(token)
    except BadToken as exc:
        return render(request, "portal/unsubscribe_invalid.html", {"reason": str(exc)}, status=400)
    if request.method == "GET":
        return render(request, "portal/unsubscribe.html", {"target": target, "token": token, "always": _always(target)})
    if is_one_click(request.POST):
        # RFC 8058: the mail client's POST; it shows nobody a page.
        preference_set(user=target.user, choice=target.choice, enabled=False, via=Via.ONE_CLICK)
        return HttpResponse("Unsubscribed.\n", content_type="text/plain")
    enabled = request.POST.get("action") == "subscribe"
    preference_set(user=target.user, choice=target.choice, enabled=enabled, via=Via.LINK)
    context = {"target": target, "token": token, "done": True, "on": enabled, "always": _always(target)}
    return render(request, "portal/unsubscribe.html", context)


def _always(target) -> str:
    return EXPLAINED[target.choice][1]
