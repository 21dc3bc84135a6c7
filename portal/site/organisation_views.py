"""Contact information kept up to date: one's own name, phone and timezone (Account), the
organisation's details (its admins edit, members read), and the quarterly review of its people and
contacts that its admins confirm."""

from __future__ import annotations

import functools

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from contracts.people import PeopleError
from contracts.people.review import contacts_review_confirm, organisation_details_set, review_summary
from portal.core.audit import audit

from .account_views import PROFILE, account_page
from .people_forms import OrganisationForm, ProfileForm
from .people_views import _admin_only, is_customer_admin


@login_required
@require_POST
def profile(request):
    user = request.user
    form = ProfileForm(request.POST)
    if not form.is_valid():
        return account_page(request, profile_form=form, status=400)
    before = {k: getattr(user, k) for k in PROFILE}
    changed = {k: form.cleaned_data[k] for k in PROFILE if before[k] != form.cleaned_data[k]}
    if changed:
        for k, v in changed.items():
            setattr(user, k, v)
        user.save(update_fields=list(changed))
        audit(actor=user, action="user.profile_changed", target=user,
              before={k: before[k] for k in changed}, after=changed)  # fmt: skip
    messages.success(request, "Your details are saved.")
    return redirect("account")


def organisation_page(view):
    """A page of the customer's own organisation (GET, and POST for its admins); staff are sent to the admin."""

    @login_required
    @require_http_methods(["GET", "POST"])
    @functools.wraps(view)
    def page(request):
        if not request.user.is_customer:
            return redirect("admin:index")
        return view(request, request.user.organisation)

    return page


@organisation_page
def organisation(request, org):
    status = 200
    if request.method == "POST":
        _admin_only(request)
        form = OrganisationForm(request.POST)
        if form.is_valid():
            try:
                organisation_details_set(organisation=org, actor=request.user, **form.cleaned_data)
            except PeopleError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc))
            else:
                messages.success(request, "The organisation's details are saved.")
                return redirect("organisation")
        status = 400
    else:
        form = OrganisationForm(initial={"name": org.name, "address": org.address, "phone": org.phone})
    context = {"organisation": org, "form": form, "admin": is_customer_admin(request.user)}
    return render(request, "portal/organisation.html", context, status=status)


@organisation_page
def organisation_review(request, org):
    """The quarterly email's link: the list to review, and "Confirm reviewed" (POST, admins)."""
    if request.method == "POST":
        _admin_only(request)
        contacts_review_confirm(organisation=org, actor=request.user)
        messages.success(request, "Thank you: the review of your people and contacts is recorded.")
        return redirect("organisation-review")
    context = {"organisation": org, "summary": review_summary(org), "admin": is_customer_admin(request.user)}
    return render(request, "portal/organisation_review.html", context)
