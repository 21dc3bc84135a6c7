"""The bug bounty's public side: /.well-known/security.txt (RFC 9116), the policy, and a
"report a vulnerability" form that needs no login."""

from datetime import UTC, datetime

from django import forms
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import Http404, HttpResponse, HttpResponseGone
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_http_methods

from portal.core.client_ip import client_ip
from tickets import security_mail
from tickets.attachments import attachment_response
from tickets.security import ReportLimited, security_report_submit
from tickets.services import TicketError


def expires_at() -> datetime | None:
    """settings.SECURITY_TXT_EXPIRES as an aware datetime in UTC; None when it is not an ISO 8601
    date-time with its offset (portal/site/checks.py says so at start-up)."""
    value = getattr(settings, "SECURITY_TXT_EXPIRES", None)
    try:
        parsed = parse_datetime(value.strip()) if isinstance(value, str) else None
    except ValueError:  # well formed but impossible, e.g. month 13
        return None
    if parsed is None or parsed.tzinfo is None:
        return None
    return parsed.astimezone(UTC)


@require_GET
def security_txt(request):
    """The file is the same whenever it is asked for: its Expires is the configured date (it was a
    year from each request, a promise renewed by nobody)."""
    base = settings.PORTAL_BASE_URL.rstrip("/")
    expires = expires_at()
    if expires is None:
        raise ImproperlyConfigured("SECURITY_TXT_EXPIRES is not an ISO 8601 date-time with its offset.")
    lines = [
        f"Contact: {base}{reverse('security-report')}",
        f"Contact: mailto:{settings.SECURITY_CONTACT_EMAIL}",
        f"Expires: {expires:%Y-%m-%dT%H:%M:%SZ}",
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
    status, retry_after = (400 if request.method == "POST" else 200), None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            ticket = security_report_submit(
                email=data["email"], name=data["name"], summary=data["summary"], details=data["details"],
                source=client_ip(request),
            )  # fmt: skip
        except ReportLimited as exc:  # the form's limit per address and per submitter
            form.add_error(None, str(exc))
            status, retry_after = 429, exc.retry_after
        except TicketError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            request.session["security_report"] = ticket.number
            return redirect("security-report-done")
    response = render(request, "portal/security_report.html", {"form": form}, status=status)
    if retry_after is not None:
        response["Retry-After"] = str(max(1, int(retry_after.total_seconds())))
    return response


@require_GET
def security_report_done(request):
    return render(request, "portal/security_report_done.html", {"number": request.session.get("security_report")})


@require_GET
def security_report_file(request, token: str):
    """A file of our reply to a vulnerability report, by the link in the email to its reporter."""
    try:
        attachment = security_mail.linked_file(token)
    except security_mail.LinkExpired:
        return HttpResponseGone(
            f"This link has expired (links work for {security_mail.FILE_LINK_DAYS} days): reply to our email "
            "about your report to ask for the file again.",
            content_type="text/plain; charset=utf-8",
        )
    if attachment is None:
        raise Http404("No such file.")
    return attachment_response(attachment)
