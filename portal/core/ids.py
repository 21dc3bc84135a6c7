"""Row ids read from what a person typed (a query string, a search box, a form's choices).

`str.isdigit()` then `int()` was the habit, and both fail: "²" is a digit to the one and no number to
the other (a ValueError, a 500), and 25 digits are a number no database column holds (SQLite raised
OverflowError where Django does not guard the lookup: `__in`, a foreign key's `=`)."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.db import models

ID_RANGE = range(-(2**63), 2**63)  # the database's 64-bit integer


def as_id(text) -> int | None:
    """`text` read as the database's integer field reads it (int(): a sign, spaces, other scripts'
    digits), or None when that is no number or one beyond the integer range."""
    try:
        number = int(text)
    except (TypeError, ValueError):
        return None
    return number if number in ID_RANGE else None


class IdMultipleChoiceField(forms.ModelMultipleChoiceField):
    """A many-to-many choice that refuses an id beyond the integer range as it refuses "abc": with
    the field's message. Django checks each id with `pk=` (guarded) and then queries `pk__in=`
    (not guarded: a 500). The staff site gives it to every admin form's many-to-many field
    (portal.core.admin_lookups)."""

    def clean(self, value):
        key = self.queryset.model._meta.get_field(self.to_field_name) if self.to_field_name else None
        if isinstance(key or self.queryset.model._meta.pk, models.IntegerField):
            for pk in value or ():
                if isinstance(pk, str) and as_id(pk) is None:
                    raise ValidationError(
                        self.error_messages["invalid_pk_value"], code="invalid_pk_value", params={"pk": pk}
                    )
        return super().clean(value)
