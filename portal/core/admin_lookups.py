"""What a staff list takes from its query string, and how it refuses the rest.

Django's admin filters a list by any lookup on the model's own fields that a URL names, and its date
hierarchy by any year. Each of these reached the database or `datetime` and failed there, a 500:
`?id__regex=[`, `?pk__in=` with 25 digits, `?at__year=9999` (the next year does not exist) or
`?at__year=` with 25 digits. Lookups nobody offers were also a way to read what a list does not
show (`?password__startswith=`, a token's `digest__startswith=`, one character at a time).

So every list of the staff site (ours and the installed apps': portal.site.admin_site wraps each
ModelAdmin it registers in CheckedListAdmin) takes only:
- the parameters of the filters it shows, and its date hierarchy's year, month and day as dates
  that exist with the next one after them;
- the lookups its admin names in `linked_lookups` (the links of our own pages to it), and those a
  raw-id popup sends from a field's limit_choices_to;
and answers anything else, or a value a filter refuses (IncorrectLookupParameters, which Django
answers by a silent redirect to the unfiltered list), with a 400 page that says which and why.
Every admin form's many-to-many field refuses an id beyond the integer range (portal.core.ids)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from functools import cache
from urllib.parse import parse_qsl, urlencode

from django.contrib.admin import RelatedFieldListFilter
from django.contrib.admin.exceptions import DisallowedModelAdminLookup
from django.contrib.admin.options import IncorrectLookupParameters, ShowFacets
from django.contrib.admin.views.main import IS_POPUP_VAR, ChangeList
from django.contrib.admin.widgets import url_params_from_lookup_dict
from django.core.exceptions import BadRequest, ValidationError
from django.template.response import TemplateResponse
from django.utils.text import capfirst

from .ids import IdMultipleChoiceField

_NUMBER = re.compile(r"[0-9]{1,4}")


class RefusedLookup(BadRequest):
    """A list's query string it does not take: a 400 with this message."""


def date_hierarchy_bounds(field: str, params: dict) -> None:
    """Refuse a date hierarchy's year, month or day that is no date with a next one (Django's own
    check lets 9999, whose next year does not exist, and 25 digits, which overflow, through)."""
    parts = [params.get(f"{field}__{part}") for part in ("year", "month", "day")]
    given = [values[-1] for values in parts if values is not None]
    if parts[0] is None:
        if given:
            raise RefusedLookup(f"A month or day of “{field}” needs its year ({field}__year).")
        return
    if not all(_NUMBER.fullmatch(v) for v in given):
        raise RefusedLookup(f"“{field}” is filtered by a year, month and day in digits: {'-'.join(given)} is not.")
    numbers = [int(v) for v in given] + [1] * (3 - len(given))
    try:
        datetime(*numbers) + timedelta(days=366)  # noqa: DTZ001 (a date's existence, no moment)
    except (ValueError, OverflowError):
        raise RefusedLookup(f"{'-'.join(given)} is no date this list can be filtered by (years 1 to 9998).") from None


def popup_lookups(model) -> set[tuple[str, str]]:
    """The (lookup, value) pairs a raw-id popup for `model` sends: its relations' limit_choices_to."""
    pairs = set()
    for lookup in model._meta.related_fkey_lookups:
        pairs |= set(url_params_from_lookup_dict(lookup() if callable(lookup) else lookup).items())
    return pairs


class EveryRowHasOneFilter(RelatedFieldListFilter):
    """A many-to-many filter for a relation every row has (a window's or an outage's services: the
    services refuse none). Django's offers rows with none as a choice named "-", which finds
    nothing; here there is no such choice, and its parameter is refused like any other."""

    include_empty_choice = False

    def expected_parameters(self):
        return [self.lookup_kwarg]


class CheckedChangeList(ChangeList):
    """Mixed in before the admin's own ChangeList (see `checked`). Its title is the list's name
    ("Outages"), not the admin's instruction ("Select outage to change"); a page that names its
    list otherwise ("Ticket queue") still does, through its context."""

    def __init__(self, request, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        if not self.is_popup:  # a popup is a choice: "Select service" says what to do there
            self.title = capfirst(self.opts.verbose_name_plural)

    def get_queryset(self, request, exclude_parameters=None):
        qs = super().get_queryset(request, exclude_parameters)
        if self.date_hierarchy and self.clear_all_filters_qs:
            # Django's "Clear all filters" keeps the bounds it made of a date link's year (__gte,
            # __lt, in no address), which this list then refused: the link drops them.
            made = {f"{self.date_hierarchy}__gte", f"{self.date_hierarchy}__lt"} - set(self.params)
            kept = [(k, v) for k, v in parse_qsl(self.clear_all_filters_qs.lstrip("?")) if k not in made]
            self.clear_all_filters_qs = f"?{urlencode(kept)}"
        return qs

    def get_filters(self, request):
        if self.date_hierarchy:
            date_hierarchy_bounds(self.date_hierarchy, self.filter_params)
        try:
            specs, has_filters, remaining, duplicates, active = super().get_filters(request)
        except DisallowedModelAdminLookup as exc:  # a relation's field no filter offers
            raise RefusedLookup(f"{exc}: this list has no such filter.") from exc
        allowed = set(getattr(self.model_admin, "linked_lookups", ()))
        if self.date_hierarchy and f"{self.date_hierarchy}__year" in self.filter_params:
            allowed |= {f"{self.date_hierarchy}__gte", f"{self.date_hierarchy}__lt"}  # the hierarchy's own
        popup = popup_lookups(self.model) if IS_POPUP_VAR in request.GET else set()
        for key in remaining:
            values = self.filter_params.get(key, ())
            if key not in allowed and not (values and all((key, v) in popup for v in values)):
                raise RefusedLookup(f"This list has no filter “{key}”.")
        return specs, has_filters, remaining, duplicates, active


@cache
def checked(changelist_class: type[ChangeList]) -> type[ChangeList]:
    if issubclass(changelist_class, CheckedChangeList):
        return changelist_class
    return type(f"Checked{changelist_class.__name__}", (CheckedChangeList, changelist_class), {})


def refused_page(model_admin, request, refused: RefusedLookup) -> TemplateResponse:
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"{model_admin.opts.verbose_name_plural.capitalize()}: not with these filters",
        "opts": model_admin.opts,
        "message": str(refused),
        "list_url": request.path,
    }
    return TemplateResponse(request, "admin/refused_lookup.html", context, status=400)


class CheckedListAdmin:
    """Mixed into every ModelAdmin the staff site registers (first in its bases). An admin names the
    lookups beyond its filters that our pages link to it with in `linked_lookups` (not defaulted
    here, where it would hide the admin's own).

    No list offers Django's filter counts ("Show counts", `?_facets=`): they count the whole list
    once per choice of every filter on every page while shown, and the lists that matter grow without
    end (the queue at a million tickets: 6-9 s a page for the active ones, minutes for all of them).
    The staff dashboard counts the day's work, each number a link to the filtered queue."""

    show_facets = ShowFacets.NEVER

    def get_changelist(self, request, **kwargs):
        return checked(super().get_changelist(request, **kwargs))

    def get_changelist_instance(self, request):
        try:
            return super().get_changelist_instance(request)
        except IncorrectLookupParameters as exc:
            cause = exc.args[0] if exc.args else exc  # Django wraps the error it met
            detail = "; ".join(cause.messages) if isinstance(cause, ValidationError) else str(cause)
            raise RefusedLookup(f"This list cannot be shown with these filters: {detail}") from exc

    def changelist_view(self, request, extra_context=None):
        try:
            return super().changelist_view(request, extra_context)
        except RefusedLookup as refused:
            return refused_page(self, request, refused)

    def get_object(self, request, object_id, from_field=None):
        """No object has an id with a NUL in it, and PostgreSQL refuses one in a text key (an API
        token's digest): the admin's "no such object" answer, not the database's error."""
        if "\x00" in str(object_id):
            return None
        return super().get_object(request, object_id, from_field)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        kwargs.setdefault("form_class", IdMultipleChoiceField)
        return super().formfield_for_manytomany(db_field, request, **kwargs)
