"""Validators the ground's models use (and the layers above reuse)."""

import zoneinfo

from django.core.exceptions import ValidationError

from .timezones import suggestion


def validate_timezone(value: str) -> None:
    """An IANA timezone that zoneinfo knows (Africa/Nairobi), not an abbreviation or an offset."""
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # "Europe" is a folder; a long name, too long
        near = suggestion(value)
        hint = f"did you mean {near}?" if near else "e.g. Africa/Nairobi"
        raise ValidationError(f"“{value}” is not a known IANA timezone ({hint}).") from None
