"""The status page's public subscriptions: the form (also on /status/), the confirmation link's page
and the manage page every subscriber email links to. No account and no session.

- The form is on the status page, which shared caches keep and which carries no session or CSRF
  cookie, so its POST is CSRF-exempt: it changes nothing until the mailbox's owner confirms, and
  its limits (per address, per network address, one confirmation per hour) are what guard it.
- A link in an email only shows a page (mail scanners follow links); only a POST acts. The signed
  token is the proof, so those POSTs need no CSRF token either, and a mail client's one-click POST
  (RFC 8058) on the manage link unsubscribes.
"""

from django import forms
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from portal.core.client_ip import client_ip
from portal.core.ids import IdMultipleChoiceField
from portal.core.unsubscribe import BadToken, is_one_click

from .subscribers.services import (
    RESEND_AFTER,
    SubscriptionLimited,
    confirm_token_read,
    confirmation_state,
    manage_token,
    manage_token_read,
    public_services,
    subscription_change,
    subscription_confirm,
    subscription_end,
    subscription_request,
    subscription_resume,
)


class ServicesForm(forms.Form):
    services = IdMultipleChoiceField(
        queryset=public_services(), required=False, widget=forms.CheckboxSelectMultiple, label="Services",
        help_text="Tick none for every service, including any we add later.",
        error_messages=dict.fromkeys(["invalid_pk_value", "invalid_choice"], "Choose among the services listed."),
    )  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["services"].queryset = public_services()


class SubscribeForm(ServicesForm):
    # At most the 254 characters an address can have (StatusSubscriber.email).
    email = forms.EmailField(max_length=254, label="Your email")
    field_order = ["email", "services"]


def _invalid(request, exc: BadToken):
    return render(request, "status/subscription_invalid.html", {"reason": str(exc)}, status=400)


@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def subscribe(request):
    form = SubscribeForm(request.POST if request.method == "POST" else None)
    status, retry_after = (400 if request.method == "POST" else 200), None
    if request.method == "POST" and form.is_valid():
        services = list(form.cleaned_data["services"])
        try:
            subscription_request(
                email=form.cleaned_data["email"], services=services, all_services=not services,
                source=client_ip(request),
            )  # fmt: skip
        except SubscriptionLimited as exc:
            form.add_error(None, str(exc))
            status, retry_after = 429, exc.retry_after
        else:
            return redirect("status-subscribe-sent")
    response = render(request, "status/subscribe.html", {"form": form}, status=status)
    if retry_after is not None:
        response["Retry-After"] = str(max(1, int(retry_after.total_seconds())))
    return response


@require_GET
def subscribe_sent(request):
    """The same page whatever the address was (pending, subscribed, new): it tells no stranger."""
    return render(request, "status/subscribe_sent.html", {"resend_minutes": int(RESEND_AFTER.total_seconds() // 60)})


@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def subscription_confirm_view(request, token: str):
    try:
        confirmation = confirm_token_read(token)
        if request.method == "GET":
            state, pressed = confirmation_state(confirmation.subscriber), False
        else:
            state, pressed = subscription_confirm(confirmation=confirmation), True
    except BadToken as exc:
        return _invalid(request, exc)
    context = {"subscriber": confirmation.subscriber, "state": state, "pressed": pressed,
               "manage_token": manage_token(confirmation.subscriber)}  # fmt: skip
    return render(request, "status/subscription_confirm.html", context)


@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def subscription_manage(request, token: str):
    try:
        sub = manage_token_read(token)
    except BadToken as exc:
        return _invalid(request, exc)
    if request.method == "POST" and is_one_click(request.POST):  # RFC 8058: the mail client's POST
        subscription_end(subscriber=sub)
        return HttpResponse("Unsubscribed.\n", content_type="text/plain")
    action, status, done = request.POST.get("action"), 200, None
    initial = {"services": list(sub.services.all())}
    form = ServicesForm(request.POST if action == "save" else None, initial=initial)
    if action == "unsubscribe":
        done = "unsubscribed" if subscription_end(subscriber=sub) else "already"
    elif action == "resume":
        subscription_resume(subscriber=sub)
        done = "resumed"
    elif action == "save":
        if form.is_valid():
            services = list(form.cleaned_data["services"])
            subscription_change(subscriber=sub, services=services, all_services=not services)
            done = "saved"
        else:
            status = 400
    elif request.method == "POST":
        status = 400
    return render(request, "status/subscription_manage.html", {"subscriber": sub, "form": form, "done": done},
                  status=status)  # fmt: skip
