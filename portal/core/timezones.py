"""The IANA timezones people choose from: the names offered as they type (TimezoneInput, a datalist
beside a text field), and the one a city they typed alone is (suggestion, for the validator's error)."""

from __future__ import annotations

import zoneinfo
from functools import cache

from django import forms
from django.utils.html import escape
from django.utils.safestring import mark_safe

# The areas of the IANA database whose zones are places (not its legacy aliases: US/Eastern, Etc/GMT+3).
AREAS = ("Africa", "America", "Antarctica", "Asia", "Atlantic", "Australia", "Europe", "Indian", "Pacific")


@cache
def names() -> tuple[str, ...]:
    """Every place's zone zoneinfo knows, sorted, and UTC."""
    return ("UTC", *sorted(n for n in zoneinfo.available_timezones() if n.split("/", 1)[0] in AREAS))


def suggestion(typed: str) -> str | None:
    """The zone a city names ("nairobi", "New York" -> Africa/Nairobi, America/New_York), if one does."""
    city = typed.strip().replace(" ", "_").casefold()
    found = [n for n in names() if n.rsplit("/", 1)[-1].casefold() == city]
    return found[0] if len(found) == 1 else None


@cache
def _options() -> str:
    return "".join(f'<option value="{escape(n)}">' for n in names())


class TimezoneInput(forms.TextInput):
    """A text field for an IANA timezone with the names offered as one types (a <datalist>)."""

    def render(self, name, value, attrs=None, renderer=None):
        attrs = dict(attrs or {})
        listed = f"{attrs.get('id') or name}_zones"
        field = super().render(name, value, {**attrs, "list": listed, "autocomplete": "off"}, renderer)
        return mark_safe(f'{field}<datalist id="{escape(listed)}">{_options()}</datalist>')  # noqa: S308 - escaped


class AdminTimezoneInput(TimezoneInput):
    """The same, styled as the admin's text fields (every timezone the staff type: a person's, an
    SLA version's, a working calendar's)."""

    def __init__(self, attrs=None):
        super().__init__({"class": "vTextField", **(attrs or {})})
