"""Organisations in the admin, with their People page: staff with `contracts.manage_people`
(account and cloud solutions managers) invite, change roles, deactivate and reactivate a
customer's people through the same services as the customer's admins, under the same rules (an
organisation keeps an active admin), audited with the staff member as the actor."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from portal.core.admin_audit import AuditedAdmin
from portal.core.roles import CustomerRole

from ..models import Contract, Organisation
from ..people import PeopleError, invitations, members
from ..people.selectors import member_of, open_invitations, people_of


class StaffInviteForm(forms.Form):
    email = forms.EmailField(max_length=254)
    role = forms.ChoiceField(choices=CustomerRole.choices, initial=CustomerRole.MEMBER)


@admin.register(Organisation)
class OrganisationAdmin(AuditedAdmin, admin.ModelAdmin):
    audit_action = "organisation"  # its account and solutions managers: escalation levels 3 and 4
    list_display = ["name", "slug", "account_manager", "solutions_manager", "contacts_reviewed_at", "created_at"]
    list_select_related = ["account_manager", "solutions_manager"]  # nullable: Django would join neither
    readonly_fields = ["contacts_reviewed_at", "contacts_reviewed_by"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    autocomplete_fields = ["account_manager", "solutions_manager"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        if "default_contract" in form.base_fields:  # offered among its own contracts only
            contracts = Contract.objects.filter(organisation=obj) if obj else Contract.objects.none()
            form.base_fields["default_contract"].queryset = contracts.order_by("reference")
        return form

    def get_urls(self):
        people = self.admin_site.admin_view(self.people_view)
        return [path("<path:object_id>/people/", people, name="contracts_organisation_people"), *super().get_urls()]

    def has_manage_people_permission(self, request) -> bool:
        return request.user.has_perm("contracts.manage_people")

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["may_manage_people"] = obj is not None and self.has_manage_people_permission(request)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def people_view(self, request, object_id):
        if not self.has_manage_people_permission(request):
            raise PermissionDenied
        try:
            organisation = get_object_or_404(Organisation, pk=int(object_id))
        except ValueError:
            raise Http404 from None
        form, status = StaffInviteForm(), 200
        if request.method == "POST":
            form, status = self._people_post(request, organisation)
            if status == 302:
                return HttpResponseRedirect(request.path)
        context = {
            **self.admin_site.each_context(request),
            "title": f"People of {organisation.name}",
            "opts": self.opts,
            "original": organisation,
            "people": list(people_of(organisation_id=organisation.pk)),
            "invitations": list(open_invitations(organisation_id=organisation.pk, now=timezone.now())),
            "form": form,
            "change_url": reverse("admin:contracts_organisation_change", args=[organisation.pk]),
        }
        return TemplateResponse(request, "admin/contracts/organisation/people.html", context, status=status)

    def _people_post(self, request, organisation) -> tuple[StaffInviteForm, int]:
        """One operation per POST (`op`): invite, role, deactivate, reactivate. 302 when it is done."""
        op, actor, form = request.POST.get("op"), request.user, StaffInviteForm()
        try:
            if op == "invite":
                form = StaffInviteForm(request.POST)
                if not form.is_valid():
                    return form, 400
                invitations.invitation_create(
                    organisation=organisation, email=form.cleaned_data["email"], role=form.cleaned_data["role"],
                    actor=actor,
                )  # fmt: skip
                self.message_user(request, f"Invitation sent to {form.cleaned_data['email']}.")
                return form, 302
            if op in ("role", "deactivate", "reactivate"):
                try:
                    member = member_of(organisation_id=organisation.pk, pk=int(request.POST.get("member", "")))
                except ValueError:
                    raise Http404 from None
                if op == "role":
                    members.member_set_role(member=member, role=request.POST.get("role", ""), actor=actor)
                else:
                    members.member_set_active(member=member, active=op == "reactivate", actor=actor)
                done = {"role": "role changed", "deactivate": "deactivated", "reactivate": "reactivated"}[op]
                self.message_user(request, f"{member.get_full_name()}: {done}.")
                return form, 302
        except PeopleError as exc:
            if op == "invite" and exc.field in form.fields:  # the invitation's own form, filled in
                form.add_error(exc.field, str(exc))
            else:
                self.message_user(request, str(exc), messages.ERROR)
            return form, 400
        self.message_user(request, "Unknown operation.", messages.ERROR)
        return form, 400
