"""What the claim and month admins share: a read-only change page with one POST-only form per
staff operation (portal.core.admin_operations runs them), and CSV export of the changelist as
filtered (a link beside the list) or of the selected rows (an action)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from portal.core.admin_lookups import RefusedLookup, refused_page
from portal.core.admin_operations import OperationsMixin

from ..services import ClaimError
from .display import AdminMedia


class OperationsAdmin(OperationsMixin, admin.ModelAdmin):
    """A read-only change page with one POST form per operation (`<name>_view`), and CSV export."""

    refusal = ClaimError
    operations: list[str] = []
    # Each operation's permission ("app.codename"); an operation not named needs the change permission.
    permissions: dict[str, str] = {}
    list_title = ""
    Media = AdminMedia

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"title": self.list_title, **(extra_context or {})})

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the audit stays

    def get_readonly_fields(self, request, obj=None):
        return [f for _, opts in self.get_fieldsets(request, obj) for f in opts["fields"]]

    def url_name(self, name: str) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_{name}"

    def op_url(self, name: str, obj, *args) -> str:
        return reverse(f"admin:{self.url_name(name)}", args=[obj.pk, *args])

    def get_urls(self):
        def post(view):
            return self.admin_site.admin_view(require_POST(view))

        ops = [path(f"<int:object_id>/{name}/", post(getattr(self, f"{name}_view")), name=self.url_name(name)) for name in self.operations]  # fmt: skip
        export = path("export/", self.admin_site.admin_view(self.export_view), name=self.url_name("export"))
        return [*ops, export, *self.extra_urls(), *super().get_urls()]

    def extra_urls(self):
        return []

    # --- The page -----------------------------------------------------------------------------
    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "POST":
            return HttpResponseNotAllowed(["GET"])  # no raw editing: every change is an operation
        extra = dict(extra_context or {})
        bound = extra.pop("bound_forms", {})
        obj = self.get_object(request, unquote(object_id))
        if obj is not None:
            extra.update(self.page_context(request, obj, bound))
            extra["can"] = {name: self.may_operate(request, obj, name) for name in self.operations}
            extra["can_operate"] = any(extra["can"].values())
            extra["op_urls"] = {name: self.op_url(name, obj) for name in self.operations}
        return super().change_view(request, object_id, form_url, extra)

    def page_context(self, request, obj, bound: dict) -> dict:
        raise NotImplementedError

    # --- The operations -----------------------------------------------------------------------
    def may_operate(self, request, obj, name: str) -> bool:
        perm = self.permissions.get(name)
        return request.user.has_perm(perm) if perm else self.has_change_permission(request, obj)

    def operation_object(self, request, object_id, name: str):
        """The object of operation `name`: a 404 if hidden, a 403 without the operation's permission."""
        return self.object_to_change(request, object_id, self.permissions.get(name))

    def label(self, obj) -> str:
        return str(obj)

    def each(self, request, objects, done: str, call) -> None:
        ok = 0
        for obj in objects:
            try:
                call(obj)
            except ClaimError as exc:
                self.message_user(request, f"{self.label(obj)}: {exc}", messages.ERROR)
            else:
                ok += 1
        if ok:
            self.message_user(request, f"{ok} {done}.", messages.SUCCESS)

    # --- CSV ----------------------------------------------------------------------------------
    def csv_response(self, queryset):
        raise NotImplementedError

    def export_view(self, request):
        """The changelist as filtered, searched and ordered on screen, as CSV (reads only: GET)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            cl = self.get_changelist_instance(request)
        except RefusedLookup as refused:  # the staff site's lists refuse what they do not offer
            return refused_page(self, request, refused)
        return self.csv_response(cl.queryset)

    @admin.action(description="Export selected as CSV", permissions=["view"])
    def export_csv(self, request, queryset):
        return self.csv_response(queryset)
