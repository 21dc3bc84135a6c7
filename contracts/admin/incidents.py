"""Incidents in the admin. Thin: an incident is opened, published, retitled and updated only through
contracts.incidents.services (audited; every update published goes out by
contracts.incidents.publishing.update_publish). A published update never changes: the timeline is
read-only here, and a correction is posted as a new update."""

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from portal.core.staff_time import ZonedSplitDateTime

from ..incidents.services import (
    ENDED_FIELD,
    MAX_BODY,
    IncidentError,
    incident_open,
    incident_post_update,
    incident_publish,
    incident_set_title,
    outage_end_problem,
)
from ..models import Incident, IncidentStatus, IncidentUpdate


def ended_at_field() -> forms.SplitDateTimeField:
    """ "The outage ended at": typed in the staff member's own zone, as every moment of the staff site
    (portal.core.staff_time); read only by an update that resolves the incident while its outage is
    open (contracts.incidents.services._end_outage)."""
    return forms.SplitDateTimeField(
        required=False, widget=ZonedSplitDateTime, label="The outage ended at",
        help_text="Only for a Resolved update while the outage has no end yet: the outage ends then. "
                  "Empty: when this update is posted.",
    )  # fmt: skip


def check_ended_at(form: forms.Form, outage, status: str | None) -> None:
    """The field's error for an end the service would refuse (before the outage's start, or in the
    future), so it comes back on the field with what was typed."""
    ended_at = form.cleaned_data.get(ENDED_FIELD)
    if outage is None or status != IncidentStatus.RESOLVED or outage.ends_at is not None:
        return
    problem = outage_end_problem(outage, ended_at or timezone.now(), timezone.now())
    if problem:
        form.add_error(ENDED_FIELD, problem)


class IncidentUpdateInline(admin.TabularInline):
    model = IncidentUpdate
    fields = ["number", "status", "body", "created_at", "published_at", "author"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "timeline (a published update never changes: post a correction as a new update)"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("author")


class IncidentAddForm(forms.ModelForm):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 4, "cols": 80}), label="First update",
                           max_length=MAX_BODY, help_text="What customers are told first.")  # fmt: skip
    publish_now = forms.BooleanField(required=False, initial=True,
                                     help_text="Emails every affected contract's contacts now. Unticked: a draft.")  # fmt: skip
    outage_ended_at = ended_at_field()

    class Meta:
        model = Incident
        fields = ["outage", "title", "status"]

    def clean(self):
        data = super().clean()
        check_ended_at(self, data.get("outage"), data.get("status"))
        return data

    def clean_outage(self):
        outage = self.cleaned_data["outage"]
        if Incident.objects.filter(outage=outage).exists():
            raise forms.ValidationError("This outage is an incident already: post an update to it instead.")
        return outage


class IncidentChangeForm(forms.ModelForm):
    new_status = forms.ChoiceField(choices=[("", "---------"), *IncidentStatus.choices], required=False,
                                   label="Status of the new update")  # fmt: skip
    new_body = forms.CharField(widget=forms.Textarea(attrs={"rows": 4, "cols": 80}), required=False, max_length=MAX_BODY,
                               label="New update", help_text="Published at once (and emailed) when the incident is.")  # fmt: skip
    seen_last = forms.IntegerField(widget=forms.HiddenInput, required=False)
    publish = forms.BooleanField(required=False, label="Publish the draft now",
                                 help_text="Its updates are emailed to every affected contract's contacts.")  # fmt: skip
    outage_ended_at = ended_at_field()

    class Meta:
        model = Incident
        fields = ["title"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            last = self.instance.updates.order_by("-number").values_list("number", flat=True).first()
            self.fields["seen_last"].initial = last or 0
            self.fields["new_status"].initial = self.instance.status

    def clean(self):
        data = super().clean()
        if data.get("new_body", "").strip() and not data.get("new_status"):
            self.add_error("new_status", "Say what state the incident is in with this update.")
        if data.get("new_body", "").strip() and data.get("seen_last") is not None:
            # Another staff member posted since this page was read: the form comes back with the text
            # typed (the service checks again under its lock, for two posts a second apart).
            last = self.instance.updates.order_by("-number").values_list("number", flat=True).first() or 0
            if last != data["seen_last"]:
                self.add_error("new_body", f"Update #{last} was posted meanwhile (below): read it, then post yours "
                               "if it is still needed.")  # fmt: skip
                self.data = self.data.copy()
                self.data["seen_last"] = last  # posting again means having read it
        if data.get("new_body", "").strip():
            check_ended_at(self, self.instance.outage, data.get("new_status"))
        return data


class IncidentAdmin(admin.ModelAdmin):
    """Registered by tickets.admin.incidents, which adds the incident's linked tickets (a layer up)."""

    list_display = ["title", "status", "impact", "published", "started", "updated_at", "tickets_link"]
    list_filter = ["status", "impact", ("published_at", admin.EmptyFieldListFilter)]
    search_fields = ["title", "outage__title"]
    inlines = [IncidentUpdateInline]
    actions = ["publish_selected"]
    autocomplete_fields = ["outage"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("outage")

    change_form_class = None  # set by the subclass that adds fields of its own

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = (self.change_form_class or IncidentChangeForm) if obj else IncidentAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": ["outage", "title", "status", "body", "outage_ended_at", "publish_now"]})]
        shown = [(None, {"fields": ["title", "outage_link", "status", "impact", "published_at", "publish_due_at",
                                    "resolved_at"]})]  # fmt: skip
        if self.has_change_permission(request, obj):  # a reader is not offered a form
            fields = ["new_status", "new_body", "seen_last"]
            if obj.outage.ends_at is None:  # a Resolved update ends it (contracts.incidents.services)
                fields.insert(2, "outage_ended_at")
            shown.append(("Post an update", {"fields": fields}))
            if obj.published_at is None and request.user.has_perm("contracts.publish_incident"):
                shown.append(("A draft, seen by staff only", {"fields": ["publish"]}))
        return shown

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["outage_link", "status", "impact", "published_at", "publish_due_at", "resolved_at"]

    @admin.display(description="Published", boolean=True, ordering="published_at")
    def published(self, obj):
        return obj.published_at is not None

    @admin.display(description="Started", ordering="outage__starts_at")
    def started(self, obj):
        return obj.outage.starts_at

    @admin.display(description="Outage")
    def outage_link(self, obj):
        url = reverse("admin:contracts_outage_change", args=[obj.outage_id])
        return format_html('<a href="{}">{}</a> (impact per service and scope are set there)', url, obj.outage)

    @admin.display(description="Tickets")
    def tickets_link(self, obj):
        url = reverse("admin:tickets_ticket_changelist") + f"?incident__id__exact={obj.pk}"
        return format_html('<a href="{}">Linked tickets</a>', url)

    def has_publish_permission(self, request):
        return request.user.has_perm("contracts.publish_incident")

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    @admin.action(description="Publish the selected drafts (emails go out)", permissions=["publish"])
    def publish_selected(self, request, queryset):
        done = 0
        for incident in queryset.filter(published_at__isnull=True):
            try:
                incident_publish(incident=incident, actor=request.user, now=timezone.now())
            except IncidentError as exc:
                self.message_user(request, f"{incident}: {exc}", messages.WARNING)
                continue
            done += 1
        self.message_user(request, f"Published {done} incident(s).", messages.SUCCESS)

    def save_model(self, request, obj, form, change):
        data, now = form.cleaned_data, timezone.now()
        try:
            outage, status = (data["outage"], data["status"]) if not change else (obj.outage, data.get("new_status"))
            if (
                (change is False or data.get("new_body", "").strip())
                and status == IncidentStatus.RESOLVED
                and outage.ends_at is None
                and not request.user.has_perm("contracts.change_outage")
            ):
                raise IncidentError(
                    "Resolving it ends its outage, and you may not change outages: post it as Monitoring, or ask "
                    "someone who may."
                )
            if not change:
                if data["publish_now"] and not request.user.has_perm("contracts.publish_incident"):
                    raise IncidentError("You may draft an incident but not publish it.")
                saved = incident_open(outage=data["outage"], title=data["title"], status=data["status"],
                                      body=data["body"], publish=data["publish_now"], actor=request.user,
                                      outage_ended_at=data.get(ENDED_FIELD), now=now)  # fmt: skip
                obj.pk = saved.pk
                obj._state.adding, obj._state.db = False, saved._state.db
                return
            if "title" in form.changed_data:
                incident_set_title(incident=obj, title=data["title"], actor=request.user, now=now)
            if data.get("new_body", "").strip():
                if obj.published_at is not None and not request.user.has_perm("contracts.publish_incident"):
                    raise IncidentError("You may not publish updates.")
                incident_post_update(incident=obj, status=data["new_status"], body=data["new_body"],
                                     after=data.get("seen_last"), outage_ended_at=data.get(ENDED_FIELD),
                                     actor=request.user, now=now)  # fmt: skip
            if data.get("publish") and obj.published_at is None:
                if not request.user.has_perm("contracts.publish_incident"):
                    raise IncidentError("You may not publish incidents.")
                incident_publish(incident=obj, actor=request.user, now=now)
        except IncidentError as exc:
            request.incident_refused = True  # no "changed successfully" after it (response_add, response_change)
            self.message_user(request, str(exc), messages.ERROR)

    def log_addition(self, request, obj, message):
        if not getattr(request, "incident_refused", False):  # the admin's history names what was done
            return super().log_addition(request, obj, message)
        return None

    def log_change(self, request, obj, message):
        if not getattr(request, "incident_refused", False):
            return super().log_change(request, obj, message)
        return None

    def response_add(self, request, obj, post_url_continue=None):
        if getattr(request, "incident_refused", False):
            return HttpResponseRedirect(request.path)
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        if getattr(request, "incident_refused", False):
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)

    def save_related(self, request, form, formsets, change):
        """Nothing is saved by the admin itself: the services did it (the timeline is read-only)."""
        for formset in formsets:  # what the admin's change message reads of a saved formset
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
