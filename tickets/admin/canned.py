"""Canned replies in the admin: each staff member keeps their own (personal: nobody else sees them,
superusers neither) and reads their teams'; support leads and managers keep every team's
(tickets.canned says who sees what). Creation, edits and deletion are audited with before and after.
A reply's placeholders are checked when it is saved: an unknown one is the body's field error."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.auth.models import Group
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from portal.core.admin_audit import AuditedAdmin
from portal.core.roles import StaffRole, role_group_name

from ..canned import MANAGE_TEAM_REPLIES, PLACEHOLDERS, canned_for, canned_listed, may_keep, placeholder_problems
from ..models import CannedReply
from .display import AdminMedia


def placeholder_help():
    items = format_html_join("", "<li><code>{{{{ {} }}}}</code>: {}</li>", PLACEHOLDERS.items())
    return format_html(
        "Placeholders are filled for the ticket when the reply is inserted (you then edit it before "
        "sending):<ul class='canned-placeholders'>{}</ul>",
        items,
    )


class CannedReplyForm(forms.ModelForm):
    user = None  # set per request by CannedReplyAdmin.get_form

    class Meta:
        model = CannedReply
        fields = ["name", "body", "team"]
        widgets = {"body": forms.Textarea(attrs={"rows": 10, "cols": 80})}
        labels = {"team": "Shared with"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "body" in self.fields:  # a reply this user only reads has its fields read-only
            self.fields["body"].help_text = placeholder_help()
        if "team" in self.fields:
            team = self.fields["team"]
            team.queryset = Group.objects.filter(name__in=[role_group_name(r) for r in StaffRole]).order_by("name")
            team.empty_label = "Nobody: a personal reply, only you see it"
            team.help_text = "A team is a staff role: its members use the reply; support leads and managers keep it."

    def clean_body(self):
        body = self.cleaned_data["body"]
        wrong = placeholder_problems(body)
        if wrong:
            raise forms.ValidationError(wrong)
        return body

    def clean(self):
        data = super().clean()
        name, team = data.get("name"), data.get("team")
        if name:
            same = CannedReply.objects.filter(name=name, **({"team": team} if team else {"owner": self.user}))
            if same.exclude(pk=self.instance.pk).exists():
                self.add_error(
                    "name", "There is already a reply of this name " + ("in this team." if team else "of yours.")
                )
        return data


@admin.register(CannedReply)
class CannedReplyAdmin(AuditedAdmin, admin.ModelAdmin):
    audit_action = "canned_reply"
    form = CannedReplyForm
    list_display = ["name", "scope", "updated"]
    search_fields = ["name", "body"]
    list_select_related = ["team"]
    Media = AdminMedia

    def get_queryset(self, request):
        return canned_listed(request.user)

    def get_fields(self, request, obj=None):
        # Only those who keep the teams' replies choose a team; the others keep personal ones (and
        # read which team a team's reply is for).
        team = request.user.has_perm(MANAGE_TEAM_REPLIES) or (obj is not None and obj.team_id is not None)
        return ["name", "body", "team"] if team else ["name", "body"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"user": request.user})

    def has_view_permission(self, request, obj=None):
        if not request.user.has_perm("tickets.view_cannedreply"):
            return False
        return (
            obj is None
            or self.has_change_permission(request, obj)
            or canned_for(request.user).filter(pk=obj.pk).exists()
        )

    def has_change_permission(self, request, obj=None):
        return may_keep(request.user, obj, "change")

    def has_delete_permission(self, request, obj=None):
        return may_keep(request.user, obj, "delete")

    @admin.display(description="Shared with")
    def scope(self, obj):
        return obj.team.name if obj.team_id else "Nobody (personal)"

    @admin.display(description="Last changed", ordering="updated_at")
    def updated(self, obj):
        return obj.updated_at  # in the staff member's own time (portal.core.staff_time)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        response = super().changeform_view(request, object_id, form_url, extra_context)
        form = getattr(response, "context_data", {}).get("adminform")
        if request.method == "POST" and form is not None and form.form.errors:
            response.status_code = 400  # refused: the form again, with its field errors
        return response

    def save_model(self, request, obj, form, change):
        """The owner and times are set here; AuditedAdmin saves it in save_related, audited."""
        obj.owner = None if obj.team_id else request.user
        now = timezone.now()
        if not change:
            obj.created_at = now
        if not change or form.has_changed():
            obj.updated_at = now
        super().save_model(request, obj, form, change)
