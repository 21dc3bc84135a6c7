"""The organisation's people, run by its customer admins: the list (members read it without the
controls, the invitations and the last logins), invitations, roles, deactivation; and accepting an
invitation (public: its signed link is the authorisation). Another organisation's person or
invitation is a 404; a member's attempt to change anything is a 403."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from contracts.people import PeopleError, members
from contracts.people import invitations as inv
from contracts.people.selectors import invitation_of, member_of, open_invitations, people_of
from contracts.people.support import contract_contacts_set, default_contract_set
from contracts.selectors import contracts_for_user
from portal.core.roles import CustomerRole

from .people_forms import AcceptForm, ContactsForm, InviteForm, RoleForm


def is_customer_admin(user) -> bool:
    return bool(user.is_authenticated and user.organisation_id and user.customer_role == CustomerRole.ADMIN)


def _admin_only(request) -> int:
    """The organisation a customer admin runs; a member is refused (403)."""
    if not is_customer_admin(request.user):
        raise PermissionDenied("Only your organisation's admins manage its people.")
    return request.user.organisation_id


def _render(request, *, invite_form=None, error: str | None = None, status: int = 200):
    org_id = request.user.organisation_id
    admin = is_customer_admin(request.user)
    context = {
        "people": list(people_of(organisation_id=org_id)),
        "admin": admin,
        "invitations": list(open_invitations(organisation_id=org_id, now=timezone.now())) if admin else [],
        "invite_form": invite_form or InviteForm(organisation_id=org_id),
        "error": error,
    }
    return render(request, "portal/people.html", context, status=status)


@login_required
@require_GET
def people(request):
    if not request.user.is_customer:
        return redirect("admin:index")
    return _render(request)


@login_required
@require_POST
def invite(request):
    _admin_only(request)
    form = InviteForm(request.POST, organisation_id=request.user.organisation_id)
    if form.is_valid():
        try:
            inv.invitation_create(
                organisation=request.user.organisation, email=form.cleaned_data["email"],
                role=form.cleaned_data["role"], actor=request.user,
                support_contracts=form.cleaned_data["support_contracts"],
            )  # fmt: skip
        except PeopleError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            messages.success(request, f"Invitation sent to {form.cleaned_data['email']}. The link works for 7 days.")
            return redirect("people")
    return _render(request, invite_form=form, status=400)


def _change(request, pk: int, change, done: str):
    org_id = _admin_only(request)
    member = member_of(organisation_id=org_id, pk=pk)
    try:
        change(member)
    except PeopleError as exc:
        return _render(request, error=str(exc), status=400)
    messages.success(request, done.format(name=member.get_full_name()))
    return redirect("people")


@login_required
@require_POST
def member_role(request, pk: int):
    org_id = _admin_only(request)
    member = member_of(organisation_id=org_id, pk=pk)
    form = RoleForm(request.POST)
    if not form.is_valid():
        return _render(request, error=f"{member.get_full_name()}: {form.errors['role'][0]}", status=400)
    role = form.cleaned_data["role"]
    return _change(
        request, pk, lambda m: members.member_set_role(member=m, role=role, actor=request.user),
        f"{{name}} is now {'an admin' if role == CustomerRole.ADMIN else 'a member'}.",
    )  # fmt: skip


def _activation(active: bool, done: str):
    @login_required
    @require_POST
    def view(request, pk: int):
        return _change(
            request, pk, lambda m: members.member_set_active(member=m, active=active, actor=request.user), done
        )

    return view


member_deactivate = _activation(False, "{name} is deactivated: they can no longer log in. Their tickets stay.")
member_reactivate = _activation(True, "{name} can log in again.")


@login_required
@require_POST
def invitation_revoke(request, pk: int):
    org_id = _admin_only(request)
    invitation = invitation_of(organisation_id=org_id, pk=pk)
    if inv.invitation_revoke(invitation=invitation, actor=request.user):
        messages.success(request, f"The invitation to {invitation.email} is withdrawn: its link no longer works.")
    return redirect("people")


@require_http_methods(["GET", "POST"])
def invitation_accept(request, token: str):
    try:
        invitation = inv.invitation_check(token=token)
    except inv.InvitationRefused as exc:
        return render(request, "portal/invitation_refused.html", {"reason": str(exc)}, status=400)
    form = AcceptForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            user = inv.invitation_accept(
                token=token, name=form.cleaned_data["name"], password=form.cleaned_data["password1"]
            )
        except inv.InvitationRefused as exc:
            return render(request, "portal/invitation_refused.html", {"reason": str(exc)}, status=400)
        except PeopleError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            login(request, user, backend="portal.core.backends.PortalBackend")
            messages.success(request, f"Welcome to {invitation.organisation.name} on the SLA Portal.")
            return redirect("dashboard")
    status = 400 if request.method == "POST" else 200
    return render(request, "portal/invitation_accept.html", {"invitation": invitation, "form": form}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def contract_contacts(request, pk: int):
    """Who may open tickets on a contract (its support contacts) and who receives its notifications:
    customer admins edit both; members read them."""
    contract = get_object_or_404(contracts_for_user(user=request.user), pk=pk)
    active = people_of(organisation_id=contract.organisation_id).filter(is_active=True)
    admin = is_customer_admin(request.user)
    status, error = 200, None
    if request.method == "POST":
        _admin_only(request)
        form = ContactsForm(request.POST, people=active)
        if form.is_valid():
            try:
                contract_contacts_set(
                    contract=contract, support_contacts=form.cleaned_data["support"],
                    notification_contacts=form.cleaned_data["notified"], actor=request.user,
                )  # fmt: skip
            except PeopleError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc))
            else:
                messages.success(request, f"The contacts of {contract.reference} are saved.")
                return redirect("contract-contacts", pk=contract.pk)
        status = 400
        error = " ".join(e for errors in form.errors.values() for e in errors)
        chosen = {"support": request.POST.getlist("support"), "notified": request.POST.getlist("notified")}
    else:
        chosen = {
            "support": [str(pk) for pk in contract.support_contacts.values_list("pk", flat=True)],
            "notified": [str(pk) for pk in contract.contacts.values_list("pk", flat=True)],
        }
    rows = [
        {"person": p, "support": str(p.pk) in chosen["support"], "notified": str(p.pk) in chosen["notified"]}
        for p in active
    ]
    context = {
        "contract": contract, "rows": rows, "admin": admin, "error": error,
        "is_default": request.user.organisation.default_contract_id == contract.pk,
    }  # fmt: skip
    return render(request, "portal/contract_contacts.html", context, status=status)


@login_required
@require_POST
def contract_make_default(request, pk: int):
    """A customer admin makes the contract the organisation's default: where an email to a support
    address several of its contracts share files a ticket, and what the ticket form proposes."""
    contract = get_object_or_404(contracts_for_user(user=request.user), pk=pk)
    _admin_only(request)
    default_contract_set(organisation=request.user.organisation, contract=contract, actor=request.user)
    messages.success(request, f"{contract.reference} is now your organisation's default contract.")
    return redirect("contract-contacts", pk=contract.pk)
