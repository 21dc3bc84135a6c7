"""The bug bounty's public side: /.well-known/security.txt (RFC 9116), the policy, and a
"report a vulnerability" form that needs no login."""

from datetime import timedelta

from django import forms
from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from tickets.security import security_report_submit
from tickets.services import TicketError


@require_GET
def security_txt(request):
    base = settings.PORTAL_BASE_URL.rstrip("/")
    expires = (timezone.now() + timedelta(days=365)).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [
        f"Contact: {base}{reverse('security-report')}",
        f"Contact: mailto:{settings.SECURITY_CONTACT_EMAIL}",
        f"Expires: {expires}",
        f"Policy: {base}{reverse('security-policy')}",
        "Preferred-Languages: en",
        f"Canonical: {base}/.well-known/security.txt",
    ]
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")


@require_GET
def security_policy(request):
    return render(request, "portal/security_policy.html")


class ReportForm(forms.Form):
    name = forms.CharField(max_length=150, required=False, label="Your name (optional)")
    # The reporter's account keeps it: at most User.email's 254 characters (Django's validator lets
    # up to 320 through, which PostgreSQL refused with a 500).
    email = forms.EmailField(
        max_length=254, label="Your email", help_text="We send the receipt and our follow-up here."
    )
    summary = forms.CharField(max_length=200, label="Summary", help_text="One line: what is vulnerable.")
    details = forms.CharField(
        max_length=20000, widget=forms.Textarea(attrs={"rows": 10}), label="Details",
        help_text="Affected URL or component, steps to reproduce, impact. Please do not include customer data.",
    )  # fmt: skip


@require_http_methods(["GET", "POST"])
def security_report(request):
    form = ReportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            ticket = security_report_submit(
                email=data["email"], name=data["name"], summary=data["summary"], details=data["details"]
            )
        except TicketError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            request.session["security_report"] = ticket.number
            return redirect("security-report-done")
    status = 400 if request.method == "POST" else 200
    return render(request, "portal/security_report.html", {"form": form}, status=status)


@require_GET
def security_report_done(request):
    return render(request, "portal/security_report_done.html", {"number": request.session.get("security_report")})
