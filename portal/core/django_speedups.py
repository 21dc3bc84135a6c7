"""Hand-written replacements of Django internals, kept only because a page falls below its floor
against the peer without them (bench/RESULTS.md, session 6: the staff queue against the peer's
list endpoint). Each is tested against Django's own output (tests/test_django_speedups.py); nothing
else in the project copies Django's code.

- FastRowsChangeList: an admin changelist whose rows are written once per page's column plan.
  Django's items_for_result decides, for every cell of every row, what kind of column it is
  (lookup_field, the field's class, its link, its CSS classes) and builds each cell with two
  format_html calls; here each column's decisions are taken once a page and a row is one string,
  Django's markup exactly. A column it is not told about, a popup or an editable list goes back to
  Django's own rendering. Its template: admin/fast_rows_result_list.html, included in place of
  Django's result_list tag by the changelist's change_list.html. Its action_checkbox writes
  ModelAdmin.action_checkbox's markup as a string (Django renders a CheckboxInput through the form
  templates: two template renders a row).
- ListedModelChoiceField: a ModelChoiceField whose choices are read by one plain query. Django's
  ModelChoiceIterator reads them with QuerySet.iterator(), a server-side cursor on PostgreSQL
  (declared, described, fetched, closed: four round trips, never a prepared statement) for the few
  rows a select offers.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.templatetags.admin_list import (
    ResultList,
    items_for_result,
    result_headers,
    result_hidden_fields,
)
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.utils import display_for_value
from django.contrib.admin.views.main import ChangeList
from django.forms.models import ModelChoiceField, ModelChoiceIterator
from django.utils.html import conditional_escape, escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _


class FastRowsChangeList(ChangeList):
    # The columns rows() writes itself: name -> value(model_admin, obj), as the column shows it
    # (a string, safe or not, or a value display_for_value shows), and the cell's CSS class where it
    # is not Django's "field-<name>".
    fast_values: dict[str, Callable] = {}
    fast_classes: dict[str, str] = {}

    @staticmethod
    def action_checkbox(model_admin, obj):
        """ModelAdmin.action_checkbox's markup (a fast_values entry for a ModelAdmin that keeps Django's)."""
        label = _("Select this object for an action - {}").format(escape(str(obj)))  # as format_html
        return mark_safe(
            f'<input type="checkbox" name="{ACTION_CHECKBOX_NAME}" value="{escape(obj.pk)}" class="action-select" '
            f'aria-label="{label}">'
        )

    def result_list_context(self) -> dict:
        """What Django's result_list tag gives change_list_results.html, with rows()'s rows."""
        headers = list(result_headers(self))
        return {
            "result_hidden_fields": list(result_hidden_fields(self)),
            "result_headers": headers,
            "num_sorted_fields": sum(1 for h in headers if h["sortable"] and h["sorted"]),
            "results": self.rows(),
        }

    def rows(self) -> list[ResultList]:
        """The page's rows for change_list_results.html: each a list of one string, its cells."""
        if self.formset is not None or self.is_popup or self.to_field or not self.fast_columns():
            return [ResultList(None, items_for_result(self, obj, None)) for obj in self.result_list]
        admin_, empty = self.model_admin, self.model_admin.get_empty_value_display()
        link = escape(
            add_preserved_filters(
                {"preserved_filters": self.preserved_filters, "opts": self.opts}, self.url_for_result(self.model(pk=0))
            )
        )
        columns = []  # (opening, closing, value, linked) per column
        first_link = True
        for name in self.list_display:
            css = self.fast_classes.get(name, f"field-{name}")
            if name in self.list_display_links:
                tag = "th" if first_link else "td"  # as Django: the first link is the row's header
                first_link = False
                columns.append(
                    (f'<{tag} class="{css}"><a href="{link}">', f"</a></{tag}>", self.fast_values[name], True)
                )
            else:
                columns.append((f'<td class="{css}">', "</td>", self.fast_values[name], False))
        out = []
        for obj in self.result_list:
            here = f"/{obj.pk}/"
            cells = []
            for opening, closing, value, linked in columns:
                shown = value(admin_, obj)
                if isinstance(shown, str):  # SafeString too: escaped only if it is not safe
                    shown = conditional_escape(shown) if shown.strip() else empty
                else:
                    shown = conditional_escape(display_for_value(shown, empty))
                cells.append((opening.replace("/0/", here, 1) if linked else opening) + shown + closing)
            out.append(ResultList(None, [mark_safe("".join(cells))]))  # every value was escaped above
        return out

    def fast_columns(self) -> bool:
        """Whether every column of the page is one rows() knows (else Django renders the rows).
        With no links named (None or empty) Django links none or the first column: its own path."""
        links = self.list_display_links
        return bool(links) and all(name in self.fast_values for name in (*self.list_display, *links))


class ListedChoices(ModelChoiceIterator):
    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        for obj in self.queryset.all():  # a new query each time, as Django's
            yield self.choice(obj)


class ListedModelChoiceField(ModelChoiceField):
    iterator = ListedChoices
