"""Staff operations on an admin change page (reply, approve, reopen...): each a POST-only URL
whose small form is validated, whose service is called, and whose refusal shows the page again
with the form's input kept and the reason. Shared by the ticket and credit admins."""

from django.contrib import messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse


class OperationsMixin:
    # The service's refusal: an exception with a message for staff and an optional `field`.
    refusal: type[Exception] = Exception

    def ask_for_selected(self, request, *, action: str, title: str, intro: str, selected, form, submit: str = ""):
        """The page a list's action shows to ask what it needs first (a reason, an incident): the
        selected objects and the form; it posts the action again with "apply". What was sent and
        refused answers 400 (templates/admin/action_selected.html, listed by the model's own)."""
        context = {
            **self.admin_site.each_context(request),
            "title": title, "intro": intro, "action": action, "submit": submit or title, "opts": self.opts,
            "selected": selected, "form": form, "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME, "media": self.media,
        }  # fmt: skip
        templates = [
            f"admin/{self.opts.app_label}/{self.opts.model_name}/action_selected.html",
            "admin/action_selected.html",
        ]
        return TemplateResponse(request, templates, context, status=400 if form.is_bound else 200)

    def object_to_change(self, request, object_id, permission=None):
        """The object an operation acts on: a 404 if this user cannot see it, a 403 unless they hold
        the operation's own permission ("app.codename", or a function of the object naming it), or
        by default may change the object."""
        obj = self.get_object(request, str(object_id))  # objects hidden from this user are not found
        if obj is None:
            raise Http404(f"No such {self.opts.verbose_name}.")
        permission = permission(obj) if callable(permission) else permission
        allowed = request.user.has_perm(permission) if permission else self.has_change_permission(request, obj)
        if not allowed:
            raise PermissionDenied
        return obj

    def refused(self, request, obj, name: str, form, error: Exception | None = None, status: int = 400):
        """The page again with the refused form (its input kept) and why, answered with `status`."""
        if error is not None:
            field = getattr(error, "field", None)
            form.add_error(field if field in form.fields else None, str(error))
        text = " ".join(m for errors in form.errors.values() for m in errors)
        self.message_user(request, text, messages.ERROR)
        request.method = "GET"  # render the page; the POST has been handled
        response = self.change_view(request, str(obj.pk), extra_context={"bound_forms": {name: form}})
        response.status_code = status
        return response

    def run(self, request, obj, name: str, form, call, text, anchor: str = ""):
        """Validate the operation's form, call its service with the cleaned data, and say how it
        went (`text` may depend on the data). A refusal is the page again with the form and why,
        answered 400, as the customer's forms and the API answer."""
        if not form.is_valid():
            return self.refused(request, obj, name, form)
        try:
            call(form.cleaned_data)
        except self.refusal as exc:
            return self.refused(request, obj, name, form, exc)
        self.message_user(request, text(form.cleaned_data) if callable(text) else text, messages.SUCCESS)
        change = f"admin:{self.opts.app_label}_{self.opts.model_name}_change"
        return HttpResponseRedirect(reverse(change, args=[obj.pk]) + anchor)
